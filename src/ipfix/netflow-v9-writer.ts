/**
 * NetFlow v9 export packets (RFC 3954) from unidirectional flows (netflow-flows.ts): a 20-octet header
 * (version 9, count of all records in the packet incl. template records §5.1, sysUpTime ms, UNIX secs,
 * package sequence = export packets sent before this one §5.1, source id = the IPFIX observation domain),
 * Template FlowSets (id 0) and data FlowSets (id = template id ≥ 256) padded to 4 octets (§5.3).
 *
 * One template per distinct field layout (all fields fixed-length: v9 has no variable-length encoding).
 * Templates go in template-only packets before the first data that uses them, and all of them again every
 * refreshSeconds of export time and/or every refreshPackets packets (§7: both configurable). Packets never
 * exceed maxPacketSize octets; a record is never split.
 *
 * Exporter statistics (writeStats) go as an Options Template FlowSet (id 1, §6.1: scope System = source id;
 * TOTAL_BYTES_EXP, TOTAL_PKTS_EXP, TOTAL_FLOWS_EXP, the octets, packets and flows of this NetFlow stream
 * before the packet) followed by its data record, in one packet: rare, so the template always travels along.
 */
import type { FieldValue } from './decoder.js'
import {
  FIRST_SWITCHED,
  LAST_SWITCHED,
  V9_FIELDS,
  putIpv4,
  putIpv6,
  putMac,
  putUint,
  type UniFlow,
  type V9FieldSpec,
} from './netflow-flows.js'

export const V9_HEADER_LENGTH = 20
const TCP_FLAGS = 6
/** Template ID of the statistics options template; data templates start after it. */
export const V9_STATS_TEMPLATE_ID = 256
const SCOPE_SYSTEM = 1
/** Octets of a record with every carried field and the two times. */
const MAX_RECORD = V9_FIELDS.reduce((n, s) => n + s.length, 8)

/** Export time of a batch and the sysUpTime conversion (see transport-netflow.ts). */
export interface NetflowClock {
  /** UNIX seconds of the export. */
  readonly unixSecs: number
  /** sysUpTime (ms, mod 2^32) at unixSecs. */
  readonly sysUptime: number
  /** sysUpTime (ms, mod 2^32) of an absolute time in unix ms. */
  uptimeOf(unixMs: number): number
}

export interface V9WriterOptions {
  maxPacketSize: number
  refreshSeconds: number
  /** 0 = only by time. */
  refreshPackets: number
  /** Distinct layouts kept at most; flows needing more are counted and skipped. Default 1024. */
  maxTemplates?: number
}

interface V9Template {
  readonly id: number
  readonly fields: readonly V9FieldSpec[]
  readonly times: boolean
  readonly recordLength: number
  /** Template record: id, field count, (type, length) pairs. */
  readonly bytes: Buffer
}

export class V9Writer {
  /** Named counters: `template_limit`, `saturated_<FIELD>` (a value larger than its field). */
  readonly counters: Record<string, number> = {}
  packets = 0
  flows = 0
  /** Octets of all packets sent. */
  octets = 0
  templateSends = 0
  private readonly templates = new Map<string, V9Template>()
  private readonly sent = new Set<V9Template>()
  private sequence = 0
  private lastRefresh = Number.NEGATIVE_INFINITY
  private packetsSinceRefresh = 0
  private readonly maxTemplates: number

  constructor(private readonly opts: V9WriterOptions) {
    // The largest record (every field) and the largest template must fit one packet.
    if (opts.maxPacketSize < V9_HEADER_LENGTH + 4 + MAX_RECORD + 3)
      throw new Error(`NetFlow v9 packet size ${opts.maxPacketSize} too small`)
    this.maxTemplates = opts.maxTemplates ?? 1024
  }

  private count(name: string): void {
    this.counters[name] = (this.counters[name] ?? 0) + 1
  }

  /** Encodes the flows into packets and hands each to `emit`. */
  write(flows: readonly UniFlow[], clock: NetflowClock, sourceId: number, emit: (p: Buffer) => void): void {
    const items: { t: V9Template; f: UniFlow }[] = []
    for (const f of flows) {
      const t = this.templateFor(f)
      if (t === undefined) this.count('template_limit')
      else items.push({ t, f })
    }
    const refresh =
      this.templates.size > 0 &&
      (clock.unixSecs - this.lastRefresh >= this.opts.refreshSeconds ||
        (this.opts.refreshPackets > 0 && this.packetsSinceRefresh >= this.opts.refreshPackets))
    const due = refresh ? [...this.templates.values()] : [...new Set(items.map((i) => i.t))]
    const toSend = due.filter((t) => refresh || !this.sent.has(t))
    if (toSend.length > 0) {
      this.sendTemplates(toSend, clock, sourceId, emit)
      if (refresh) {
        this.lastRefresh = clock.unixSecs
        this.packetsSinceRefresh = 0
      }
    }
    this.sendData(items, clock, sourceId, emit)
  }

  /** One packet with the statistics options template and its record (see the file comment). */
  writeStats(clock: NetflowClock, sourceId: number, emit: (p: Buffer) => void): void {
    const buf = Buffer.alloc(V9_HEADER_LENGTH + 28 + 32)
    let p = V9_HEADER_LENGTH
    // Options Template FlowSet: id 1, length 28 = 4 + 6 + 4 scope + 12 options + 2 padding.
    buf.writeUInt16BE(1, p)
    buf.writeUInt16BE(28, p + 2)
    buf.writeUInt16BE(V9_STATS_TEMPLATE_ID, p + 4)
    buf.writeUInt16BE(4, p + 6) // option scope length (octets)
    buf.writeUInt16BE(12, p + 8) // option length (octets)
    const specs: [number, number][] = [
      [SCOPE_SYSTEM, 4],
      [40, 8],
      [41, 8],
      [42, 8],
    ]
    specs.forEach(([type, len], i) => {
      buf.writeUInt16BE(type, p + 10 + 4 * i)
      buf.writeUInt16BE(len, p + 12 + 4 * i)
    })
    p += 28
    // Data FlowSet: 4 + 28 octets of record = 32 (already a multiple of 4).
    buf.writeUInt16BE(V9_STATS_TEMPLATE_ID, p)
    buf.writeUInt16BE(32, p + 2)
    buf.writeUInt32BE(sourceId >>> 0, p + 4)
    buf.writeBigUInt64BE(BigInt(this.octets), p + 8)
    buf.writeBigUInt64BE(BigInt(this.packets), p + 16)
    buf.writeBigUInt64BE(BigInt(this.flows), p + 24)
    p += 32
    this.header(buf, 2, clock, sourceId)
    this.templateSends++
    this.finish(buf, p, emit)
  }

  private templateFor(f: UniFlow): V9Template | undefined {
    const fields = V9_FIELDS.filter((s) => f.values.has(s.type))
    const times = f.startMs !== undefined && f.endMs !== undefined
    const key = (times ? 't' : '') + fields.map((s) => s.type).join(',')
    const known = this.templates.get(key)
    if (known !== undefined) return known
    if (this.templates.size >= this.maxTemplates) return undefined
    const pairs: [number, number][] = fields.map((s) => [s.type, s.length])
    if (times) pairs.push([FIRST_SWITCHED, 4], [LAST_SWITCHED, 4])
    const bytes = Buffer.alloc(4 + 4 * pairs.length)
    const id = V9_STATS_TEMPLATE_ID + 1 + this.templates.size
    bytes.writeUInt16BE(id, 0)
    bytes.writeUInt16BE(pairs.length, 2)
    pairs.forEach(([type, len], i) => {
      bytes.writeUInt16BE(type, 4 + 4 * i)
      bytes.writeUInt16BE(len, 6 + 4 * i)
    })
    const recordLength = pairs.reduce((n, [, len]) => n + len, 0)
    const t: V9Template = { id, fields, times, recordLength, bytes }
    this.templates.set(key, t)
    return t
  }

  private header(buf: Buffer, count: number, clock: NetflowClock, sourceId: number): void {
    buf.writeUInt16BE(9, 0)
    buf.writeUInt16BE(count, 2)
    buf.writeUInt32BE(clock.sysUptime >>> 0, 4)
    buf.writeUInt32BE(clock.unixSecs >>> 0, 8)
    buf.writeUInt32BE(this.sequence >>> 0, 12)
    buf.writeUInt32BE(sourceId >>> 0, 16)
  }

  private finish(buf: Buffer, len: number, emit: (p: Buffer) => void): void {
    this.sequence = (this.sequence + 1) % 0x1_0000_0000
    this.packets++
    this.octets += len
    this.packetsSinceRefresh++
    emit(buf.subarray(0, len))
  }

  private sendTemplates(
    list: readonly V9Template[],
    clock: NetflowClock,
    sourceId: number,
    emit: (p: Buffer) => void,
  ): void {
    const max = this.opts.maxPacketSize
    let i = 0
    while (i < list.length) {
      const buf = Buffer.alloc(max)
      let p = V9_HEADER_LENGTH + 4
      let n = 0
      for (; i < list.length; i++) {
        const t = list[i]!
        if (p + t.bytes.length > max && n > 0) break
        t.bytes.copy(buf, p)
        p += t.bytes.length
        n++
        this.sent.add(t)
      }
      buf.writeUInt16BE(0, V9_HEADER_LENGTH)
      buf.writeUInt16BE(p - V9_HEADER_LENGTH, V9_HEADER_LENGTH + 2)
      this.header(buf, n, clock, sourceId)
      this.templateSends += n
      this.finish(buf, p, emit)
    }
  }

  private sendData(
    items: readonly { t: V9Template; f: UniFlow }[],
    clock: NetflowClock,
    sourceId: number,
    emit: (p: Buffer) => void,
  ): void {
    const max = this.opts.maxPacketSize
    let buf = Buffer.alloc(max)
    let p = V9_HEADER_LENGTH
    let n = 0
    let setStart = -1
    let setId = -1
    const closeSet = (): void => {
      if (setStart < 0) return
      while ((p - setStart) % 4 !== 0) buf[p++] = 0
      buf.writeUInt16BE(setId, setStart)
      buf.writeUInt16BE(p - setStart, setStart + 2)
      setStart = -1
    }
    const flush = (): void => {
      closeSet()
      if (n === 0) return
      this.header(buf, n, clock, sourceId)
      this.finish(buf, p, emit)
      buf = Buffer.alloc(max)
      p = V9_HEADER_LENGTH
      n = 0
      setId = -1
    }
    for (const { t, f } of items) {
      const newSet = setStart < 0 || setId !== t.id
      // Room for the record, a set header if it opens one, and the worst-case padding (3).
      if (p + t.recordLength + (newSet ? 4 : 0) + 3 > max) flush()
      if (setStart < 0 || setId !== t.id) {
        closeSet()
        setStart = p
        setId = t.id
        p += 4
      }
      p = this.record(buf, p, t, f, clock)
      n++
      this.flows++
    }
    flush()
  }

  private record(buf: Buffer, p: number, t: V9Template, f: UniFlow, clock: NetflowClock): number {
    for (const s of t.fields) {
      const v: FieldValue = f.values.get(s.type) ?? 0
      switch (s.kind) {
        case 'ipv4':
          putIpv4(buf, p, v)
          break
        case 'ipv6':
          putIpv6(buf, p, v)
          break
        case 'mac':
          putMac(buf, p, v)
          break
        case 'uint':
          if (s.type === TCP_FLAGS)
            buf[p] = Number(v) & 0xff // NS (bit 8) has no room in v9's 1 octet
          else if (!putUint(buf, p, s.length, v)) this.count(`saturated_${s.name}`)
          break
      }
      p += s.length
    }
    if (t.times) {
      buf.writeUInt32BE(clock.uptimeOf(f.startMs ?? 0), p)
      buf.writeUInt32BE(clock.uptimeOf(f.endMs ?? 0), p + 4)
      p += 8
    }
    return p
  }
}
