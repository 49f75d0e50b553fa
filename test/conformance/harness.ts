// Shared helpers of the conformance suites: synthetic captures written to a temp dir, end-to-end probe runs
// into an in-memory UDP-like transport or a real loopback UDP collector, and an in-order decode of the
// IPFIX stream (RFC 7011) that keeps, per message, its header, Set IDs and decoded records.
import dgram from 'node:dgram'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IpfixDecoder, recordToJson, type DecodedMessage } from '../../src/ipfix/decoder.js'
import { MemoryTransport, headerOf, type HeaderInfo } from '../../src/ipfix/testing.js'
import {
  DEFAULT_PROBE_OPTIONS,
  runProbe,
  type ProbeOptions,
  type ProbeSummary,
} from '../../src/probe/probe.js'
import { buildPcap, type BuilderPacket } from '../helpers/pcap-builder.js'
import { eth, ipv4, ipv6, PROTO, tcp, udp } from '../helpers/packet-builder.js'

/** A whole second of packet time (µs) used as the origin of synthetic captures: 2023-11-14T22:13:20Z. */
export const T0 = 1_700_000_000_000_000
export const S = 1_000_000

export type JsonRecord = Record<string, unknown>

/** A temp dir for capture files; `cleanup` removes it. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'flowtel-conformance-'))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

/** Writes packets (sorted by time, stable) as an Ethernet pcap file and returns its path. */
export async function writeCapture(
  dir: string,
  name: string,
  packets: readonly BuilderPacket[],
): Promise<string> {
  const sorted = packets.map((p, i) => ({ p, i })).sort((a, b) => a.p.tsUs - b.p.tsUs || a.i - b.i)
  const path = join(dir, name)
  await writeFile(path, buildPcap(sorted.map((x) => x.p)))
  return path
}

export interface Endpoint {
  ip: string
  port: number
}

/** One IPv4 (or IPv6, by the address) TCP packet from `a` to `b` over Ethernet. */
export function tcpPacket(a: Endpoint, b: Endpoint, flags: number, tsUs: number, payload = 0): BuilderPacket {
  const seg = tcp({ sport: a.port, dport: b.port, flags, payload: new Uint8Array(payload) })
  const ip = a.ip.includes(':')
    ? ipv6({ src: a.ip, dst: b.ip, proto: PROTO.TCP }, seg)
    : ipv4({ src: a.ip, dst: b.ip, proto: PROTO.TCP }, seg)
  return { data: eth({}, ip), tsUs }
}

/** One UDP packet from `a` to `b` over Ethernet (IPv6 when the address has a colon). */
export function udpPacket(a: Endpoint, b: Endpoint, tsUs: number, payload = 0): BuilderPacket {
  const dg = udp({ sport: a.port, dport: b.port, payload: new Uint8Array(payload) })
  const ip = a.ip.includes(':')
    ? ipv6({ src: a.ip, dst: b.ip, proto: PROTO.UDP }, dg)
    : ipv4({ src: a.ip, dst: b.ip, proto: PROTO.UDP }, dg)
  return { data: eth({}, ip), tsUs }
}

/** IP-level length of a packet built by tcpPacket/udpPacket (frame minus the 14-octet Ethernet header). */
export function ipLength(p: BuilderPacket): number {
  return p.data.byteLength - 14
}

export interface StreamRun {
  summary: ProbeSummary
  /** Every IPFIX message in the order it was sent (one per UDP datagram). */
  messages: Uint8Array[]
}

type Overrides = Partial<Omit<ProbeOptions, 'reads' | 'destinations' | 'extraTransports'>>

/**
 * Runs the probe over `reads` into an in-memory transport that asks for periodic templates like UDP does,
 * so the messages are exactly what a UDP collector would get (without loss or reordering).
 */
export async function runToMemory(reads: string[], overrides: Overrides = {}): Promise<StreamRun> {
  const mem = new MemoryTransport('memory-udp', true)
  const summary = await runProbe({
    ...DEFAULT_PROBE_OPTIONS,
    ...overrides,
    reads,
    destinations: [],
    extraTransports: [mem],
  })
  return { summary, messages: mem.messages }
}

/** A UDP collector on a loopback address and an ephemeral port that keeps every datagram in arrival order. */
export interface UdpCollector {
  readonly host: string
  readonly port: number
  readonly datagrams: Buffer[]
  waitForCount(n: number, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

export async function startUdpCollector(host: '127.0.0.1' | '::1'): Promise<UdpCollector> {
  const sock = dgram.createSocket({
    type: host === '::1' ? 'udp6' : 'udp4',
    recvBufferSize: 16 * 1024 * 1024,
    ipv6Only: host === '::1',
  })
  const datagrams: Buffer[] = []
  let waiter: (() => void) | undefined
  sock.on('message', (msg) => {
    datagrams.push(Buffer.from(msg))
    waiter?.()
  })
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject)
    sock.bind(0, host, () => {
      sock.off('error', reject)
      resolve()
    })
  })
  return {
    host,
    port: sock.address().port,
    datagrams,
    async waitForCount(n: number, timeoutMs = 10_000): Promise<void> {
      if (datagrams.length >= n) return
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiter = undefined
          reject(new Error(`expected ${n} datagrams, got ${datagrams.length}`))
        }, timeoutMs)
        waiter = () => {
          if (datagrams.length >= n) {
            clearTimeout(timer)
            waiter = undefined
            resolve()
          }
        }
      })
    },
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  }
}

/** Runs the probe over `reads` exporting over real UDP to a loopback collector; resolves once all arrived. */
export async function runToUdp(
  reads: string[],
  host: '127.0.0.1' | '::1',
  overrides: Overrides = {},
): Promise<StreamRun> {
  const collector = await startUdpCollector(host)
  try {
    const summary = await runProbe({
      ...DEFAULT_PROBE_OPTIONS,
      ...overrides,
      reads,
      destinations: [{ kind: 'udp', host, port: collector.port }],
    })
    // One destination: every data message once, plus every template-only message.
    await collector.waitForCount(summary.export.messages + summary.export.templateSends)
    return { summary, messages: [...collector.datagrams] }
  } finally {
    await collector.close()
  }
}

export interface StreamMessage {
  header: HeaderInfo
  bytes: Uint8Array
  decoded: DecodedMessage
  /** Data records of this message (flows and options), as JSON objects with their template ID. */
  records: { templateId: number; isOptions: boolean; json: JsonRecord }[]
}

/** Decodes a message stream in order with one UDP-session decoder. */
export function decodeStream(messages: readonly Uint8Array[]): {
  msgs: StreamMessage[]
  decoder: IpfixDecoder
} {
  const decoder = new IpfixDecoder({ transport: 'udp' })
  const msgs = messages.map((bytes) => {
    const decoded = decoder.decode(bytes)
    return {
      header: headerOf(bytes),
      bytes,
      decoded,
      records: decoded.records.map((r) => ({
        templateId: r.templateId,
        isOptions: r.isOptions,
        json: recordToJson(r),
      })),
    }
  })
  return { msgs, decoder }
}

/** Flow records (not options records) of a decoded stream, in arrival order. */
export function flowRecords(msgs: readonly StreamMessage[]): JsonRecord[] {
  return msgs.flatMap((m) => m.records.filter((r) => !r.isOptions).map((r) => r.json))
}

/** Milliseconds since the epoch of a dateTimeMilliseconds JSON value (ISO string). */
export function ms(v: unknown): number {
  if (typeof v !== 'string') throw new Error(`not a time: ${String(v)}`)
  return Date.parse(v)
}

/** A number field of a record (throws if absent, so a typo fails loudly). */
export function num(r: JsonRecord, field: string): number {
  const v = r[field]
  if (typeof v !== 'number') throw new Error(`field ${field} is ${String(v)}`)
  return v
}

export interface SetInfo {
  setId: number
  /** Set length including its 4-octet header. */
  length: number
  /** Template Sets (2) and Options Template Sets (3): their records. */
  templates: { id: number; fieldCount: number; recordLength: number }[]
}

/** Walks a message's Sets (RFC 7011 §3.3) and the records of its (Options) Template Sets. */
export function setsOf(m: Uint8Array): SetInfo[] {
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength)
  const end = v.getUint16(2)
  const out: SetInfo[] = []
  for (let p = 16; p + 4 <= end;) {
    const setId = v.getUint16(p)
    const length = v.getUint16(p + 2)
    if (length < 4) throw new Error(`set length ${length}`)
    const templates: SetInfo['templates'] = []
    if (setId === 2 || setId === 3) {
      for (let q = p + 4; q + 4 <= p + length;) {
        const id = v.getUint16(q)
        const fieldCount = v.getUint16(q + 2)
        q += setId === 3 && fieldCount > 0 ? 6 : 4
        let recordLength = 0
        for (let f = 0; f < fieldCount; f++) {
          const ie = v.getUint16(q)
          recordLength += v.getUint16(q + 2)
          q += ie & 0x8000 ? 8 : 4
        }
        templates.push({ id, fieldCount, recordLength })
        if (fieldCount === 0) break
      }
    }
    out.push({ setId, length, templates })
    p += length
  }
  return out
}

/** A message that carries only Template and Options Template Sets. */
export function isTemplateOnly(m: Uint8Array): boolean {
  return setsOf(m).every((s) => s.setId === 2 || s.setId === 3)
}

/**
 * A mixed workload: `flows` short biflows (UDP request/response or a TCP handshake with FIN), their starts
 * spread over `seconds`, every `v6Every`-th one over IPv6, plus a clock flow (one packet every `clockUs`
 * until `clockSeconds`) so packet time moves steadily. Each flow has its own source port (10000 + i) so
 * records can be matched to flows.
 */
export function workload(
  flows: number,
  seconds: number,
  v6Every = 0,
  clockUs = 250_000,
  clockSeconds = seconds,
): BuilderPacket[] {
  const out: BuilderPacket[] = []
  for (let i = 0; i < flows; i++) {
    const t = T0 + Math.floor((i * seconds * S) / flows)
    const v6 = v6Every > 0 && i % v6Every === 0
    const a = {
      ip: v6 ? `2001:db8:1::${(i % 250) + 1}` : `10.${(i >> 8) & 255}.${i & 255}.1`,
      port: 10000 + i,
    }
    const b = { ip: v6 ? '2001:db8:2::53' : '10.200.0.53', port: i % 3 === 0 ? 443 : 53 }
    if (i % 3 === 0) {
      out.push(tcpPacket(a, b, 0x02, t))
      out.push(tcpPacket(b, a, 0x12, t + 1000))
      out.push(tcpPacket(a, b, 0x11, t + 2000))
      out.push(tcpPacket(b, a, 0x11, t + 3000))
    } else {
      out.push(udpPacket(a, b, t, 40 + (i % 50)))
      out.push(udpPacket(b, a, t + 500, 100 + (i % 200)))
    }
  }
  const c1 = { ip: '10.250.0.1', port: 1111 }
  const c2 = { ip: '10.250.0.2', port: 2222 }
  for (let t = 0; t <= clockSeconds * S; t += clockUs) out.push(udpPacket(c1, c2, T0 + t))
  return out
}
