/**
 * Offline input for the collector: capture files (pcap/pcapng) whose UDP and TCP payloads on any port are
 * taken as flow export (UDP: one datagram per payload; TCP: per-connection streams framed by the IPFIX header
 * Length, RFC 7011 §10.4.3), and raw export files: IPFIX messages back to back (RFC 5655 layout, split by the
 * Length field), NetFlow v5 datagrams back to back (24 + 48·count), or one NetFlow v9 / sFlow datagram. Several
 * files are one stream, in order. Time is the capture time (monotonic), so template lifetimes and pending ages
 * follow the capture, not the wall clock. IP fragments of export datagrams (large IPFIX/NetFlow v9 messages
 * over UDP often are) are reassembled by the probe's bounded reassembler (decode/ip-reassembly.ts: RFC 791,
 * RFC 8200 §4.5) and the whole datagram is decoded; a datagram that cannot be rebuilt (a fragment missing by
 * the end of its capture file or its 30 s timeout, overlaps, bounds) counts its reason in `skipped`.
 * A TCP connection's direction ends at its FIN (an RST from either side ends both, and a SYN ends what the
 * 4-tuple carried before): its stream state goes, and so does its transport session with its templates (RFC
 * 7011 §8), so a new connection on the same 4-tuple starts without them. At most MAX_TCP_STREAMS streams are
 * kept (the least recently seen goes first, counted as `tcp_stream_evicted`), so a capture of many
 * connections holds stream state for the open ones only.
 */
import { open, readFile } from 'node:fs/promises'
import { detectCaptureFormat, openCaptureFiles } from '../capture/file-source.js'
import { Anomalies } from '../decode/anomalies.js'
import { IpReassembly } from '../decode/ip-reassembly.js'
import { PacketDecoder } from '../decode/packet-decoder.js'
import { DecodeResult, PacketInfo } from '../decode/packet.js'
import {
  IPPROTO_TCP as PROTO_TCP,
  IPPROTO_UDP as PROTO_UDP,
  TH_FIN as TCP_FIN,
  TH_RST as TCP_RST,
  TH_SYN as TCP_SYN,
} from '../decode/protocol-numbers.js'
import { ipv4Text, ipv6Text } from '../ipfix/decoder.js'
import type { DecodeOutput, FlowCollector } from './decode-message.js'
import { FILE_SESSION, sessionId, type SessionKey } from './session.js'
import { TcpFramer } from './tcp-framer.js'
import { addCounts } from '../util/counts.js'

/** Raw export files larger than this are refused (they are read whole). */
const MAX_RAW_FILE = 256 * 1024 * 1024
/** TCP streams kept at most (each holds at most one incomplete message, up to 64 KiB). */
export const MAX_TCP_STREAMS = 4096

/** The TCP stream map's key of the direction from `a`:`ap` to `b`:`bp`. */
const streamId = (a: string, ap: number, b: string, bp: number): string => `${a}:${ap}>${b}:${bp}`

export interface OfflineStats {
  files: number
  packets: number
  datagrams: number
  tcpMessages: number
  /** IP fragments read, and the datagrams rebuilt from them. */
  fragments: number
  reassembled: number
  /** Packets that carried no UDP/TCP payload, datagrams not rebuilt, and other skipped input, by reason. */
  skipped: Record<string, number>
}

export type OutputSink = (out: DecodeOutput) => void

interface TcpStream {
  framer: TcpFramer
  nextSeq: number | undefined
}

export interface OfflineOptions {
  /** Each raw export file is its own transport session (default: all raw files are one session). */
  sessionPerFile?: boolean
}

export class OfflineReader {
  readonly stats: OfflineStats = {
    files: 0,
    packets: 0,
    datagrams: 0,
    tcpMessages: 0,
    fragments: 0,
    reassembled: 0,
    skipped: {},
  }
  private now = 0
  /** Open TCP streams by direction id, least recently seen first. */
  private readonly tcp = new Map<string, TcpStream>()
  private readonly anomalies = new Anomalies()
  private readonly pkt = new PacketDecoder(this.anomalies)
  private readonly info = new PacketInfo()
  /** Fragmented export datagrams being rebuilt; its drops are counted apart, into `skipped`. */
  private readonly fragmentAnomalies = new Anomalies()
  private readonly reassembly = new IpReassembly(this.fragmentAnomalies)

  constructor(
    private readonly collector: FlowCollector,
    private readonly sink: OutputSink,
    private readonly opts: OfflineOptions = {},
  ) {}

  private skip(reason: string): void {
    this.stats.skipped[reason] = (this.stats.skipped[reason] ?? 0) + 1
  }

  /** Reads the files in order as one stream. Rejects only for unreadable paths. */
  async read(paths: readonly string[]): Promise<void> {
    for (const path of paths) {
      this.stats.files++
      const fh = await open(path, 'r')
      const head = new Uint8Array(12)
      let n: number
      try {
        n = (await fh.read(head, 0, 12, 0)).bytesRead
      } finally {
        await fh.close()
      }
      if (detectCaptureFormat(head.subarray(0, n)) !== null) await this.readCapture(path)
      else await this.readRaw(path)
    }
  }

  private async readCapture(path: string): Promise<void> {
    const src = await openCaptureFiles([path])
    try {
      for await (const b of src.batches()) {
        for (let i = 0; i < b.count; i++) {
          this.stats.packets++
          const tsUs = b.tsUs[i] ?? 0
          if (tsUs / 1000 > this.now) this.now = tsUs / 1000
          const r = this.pkt.decode(
            b.buf,
            b.view,
            b.offset[i] ?? 0,
            b.caplen[i] ?? 0,
            b.origlen[i] ?? 0,
            b.linkType[i] ?? 0,
            tsUs,
            this.info,
          )
          if (r !== DecodeResult.Ip) {
            this.skip('not_ip')
            continue
          }
          this.packet(this.info, tsUs)
        }
      }
    } finally {
      await src.close()
      this.endFragments()
    }
    for (const [name, n] of src.stats.formatErrors)
      this.stats.skipped[`capture_${name}`] = (this.stats.skipped[`capture_${name}`] ?? 0) + n
  }

  private packet(packet: PacketInfo, tsUs: number): void {
    let p = packet
    if (p.protocol !== PROTO_UDP && p.protocol !== PROTO_TCP) {
      this.skip('not_udp_tcp')
      return
    }
    if (p.isFragment) {
      // The datagram goes on whole when this fragment completes it (its buffer valid until the next fragment).
      this.stats.fragments++
      const whole = this.reassembly.add(p, tsUs)
      if (whole === undefined) return
      if (!whole.isFragment) this.stats.reassembled++
      p = whole
    }
    const payload = p.buf.subarray(p.payloadOffset, p.payloadOffset + p.payloadCaptured)
    if (p.protocol === PROTO_UDP) {
      if (p.payloadCaptured === 0) {
        this.skip('empty_payload')
        return
      }
      this.stats.datagrams++
      this.sink(this.collector.decode(payload, this.sessionKey(p), this.now))
      return
    }
    const flags = p.tcpFlags
    if (p.payloadCaptured === 0 && (flags & (TCP_SYN | TCP_FIN | TCP_RST)) === 0) return
    const key = this.sessionKey(p)
    // A SYN opens a connection: whatever its 4-tuple carried before (its FIN or RST not captured) ends.
    if ((flags & TCP_SYN) !== 0) this.tcpEnd(key, false)
    if (p.payloadCaptured > 0) this.tcpSegment(key, p.tcpSeq, payload)
    if ((flags & (TCP_FIN | TCP_RST)) !== 0) this.tcpEnd(key, (flags & TCP_RST) !== 0)
  }

  /**
   * The end of a capture file: datagrams still missing fragments are dropped (`ip_reassembly_timeout`), and
   * the reassembler's drops are added to `skipped` by reason.
   */
  private endFragments(): void {
    this.reassembly.finish()
    addCounts(this.stats.skipped, this.fragmentAnomalies.toObject())
    this.fragmentAnomalies.clear()
  }

  /** The session of packet `p` (its sender is the exporter). */
  private sessionKey(p: PacketInfo): SessionKey {
    return {
      exporterAddress: addrText(p.ipVersion, p.src),
      exporterPort: p.srcPort,
      collectorAddress: addrText(p.ipVersion, p.dst),
      collectorPort: p.dstPort,
      protocol: p.protocol === PROTO_UDP ? 'udp' : 'tcp',
    }
  }

  /** The input's clock: the latest capture time read so far, ms (0 before any, and for raw export files). */
  get time(): number {
    return this.now
  }

  /** Open TCP streams (for tests and the summary). */
  get tcpStreams(): number {
    return this.tcp.size
  }

  /**
   * The direction `key` of a TCP connection ended (a FIN from its sender; `both`: an RST, which ends both
   * directions): its stream goes, and so does the transport session whose sender it is, with its templates
   * and the data waiting for them (RFC 7011 §8: templates are scoped to the transport session; §8.1: its end
   * withdraws them), as the TCP listener does when a connection closes. A message left half-read is counted.
   */
  private tcpEnd(key: SessionKey, both: boolean): void {
    this.endDirection(key.exporterAddress, key.exporterPort, key.collectorAddress, key.collectorPort)
    if (both)
      this.endDirection(key.collectorAddress, key.collectorPort, key.exporterAddress, key.exporterPort)
  }

  private endDirection(from: string, fromPort: number, to: string, toPort: number): void {
    const id = streamId(from, fromPort, to, toPort)
    const s = this.tcp.get(id)
    if (s !== undefined) {
      if (s.framer.buffered > 0 && s.framer.fault === undefined) this.skip('tcp_partial_message_at_close')
      this.tcp.delete(id)
    }
    this.collector.endSession(
      sessionId({
        exporterAddress: from,
        exporterPort: fromPort,
        collectorAddress: to,
        collectorPort: toPort,
        protocol: 'tcp',
      }),
    )
  }

  private tcpSegment(key: SessionKey, seq: number, payload: Uint8Array): void {
    const id = streamId(key.exporterAddress, key.exporterPort, key.collectorAddress, key.collectorPort)
    let s = this.tcp.get(id)
    if (s === undefined) {
      if (this.tcp.size >= MAX_TCP_STREAMS) {
        const oldest = this.tcp.keys().next()
        if (!oldest.done) this.tcp.delete(oldest.value)
        this.skip('tcp_stream_evicted')
      }
      s = { framer: new TcpFramer(), nextSeq: undefined }
    } else this.tcp.delete(id) // re-inserted below: the map stays in least-recently-seen order
    this.tcp.set(id, s)
    if (s.framer.fault !== undefined) return
    if (s.nextSeq !== undefined) {
      const d = (seq - s.nextSeq + 2 ** 32) % 2 ** 32
      if (d >= 2 ** 31) {
        this.skip('tcp_retransmission') // old data (retransmitted): already consumed
        return
      }
      if (d > 0) {
        this.skip('tcp_gap') // lost bytes in the capture: the stream cannot be framed any more
        s.framer = new TcpFramer()
        s.framer.fault = 'tcp_gap'
        return
      }
    }
    s.nextSeq = (seq + payload.byteLength) % 2 ** 32
    const msgs = s.framer.push(payload)
    for (const m of msgs) {
      this.stats.tcpMessages++
      this.sink(this.collector.decode(m, key, this.now))
    }
    if (s.framer.fault !== undefined) this.skip(s.framer.fault)
  }

  private async readRaw(path: string): Promise<void> {
    const data = await readFile(path)
    if (data.byteLength > MAX_RAW_FILE) {
      this.skip('raw_file_too_large')
      return
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    const key =
      this.opts.sessionPerFile === true ? { ...FILE_SESSION, exporterPort: this.stats.files } : FILE_SESSION
    for (const m of splitRaw(bytes, (r) => this.skip(r))) {
      this.stats.datagrams++
      this.sink(this.collector.decode(m, key, this.now))
    }
  }
}

/** Splits a raw export file into messages (see the file comment); `skip` counts what cannot be used. */
export function splitRaw(bytes: Uint8Array, skip: (reason: string) => void): Uint8Array[] {
  const out: Uint8Array[] = []
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (bytes.byteLength < 4) {
    if (bytes.byteLength > 0) skip('raw_short_file')
    return out
  }
  const version = view.getUint16(0)
  if (version === 10) {
    let p = 0
    while (bytes.byteLength - p >= 4) {
      const len = view.getUint16(p + 2)
      if (view.getUint16(p) !== 10 || len < 16) {
        out.push(bytes.subarray(p)) // let the decoder count what is wrong with it
        return out
      }
      if (len > bytes.byteLength - p) {
        out.push(bytes.subarray(p)) // truncated: decoded as such (counted)
        return out
      }
      out.push(bytes.subarray(p, p + len))
      p += len
    }
    if (p < bytes.byteLength) skip('raw_trailing_bytes')
    return out
  }
  if (version === 5) {
    let p = 0
    while (bytes.byteLength - p >= 24) {
      const count = view.getUint16(p + 2)
      const len = 24 + 48 * count
      if (view.getUint16(p) !== 5 || count === 0 || len > bytes.byteLength - p) {
        out.push(bytes.subarray(p))
        return out
      }
      out.push(bytes.subarray(p, p + len))
      p += len
    }
    if (p < bytes.byteLength) out.push(bytes.subarray(p))
    return out
  }
  out.push(bytes) // NetFlow v9, sFlow, or unknown: the file is one datagram
  return out
}

function addrText(version: number, a: Uint32Array): string {
  if (version === 4) return ipv4Text(a[0] ?? 0)
  const v = new DataView(new ArrayBuffer(16))
  for (let i = 0; i < 4; i++) v.setUint32(i * 4, a[i] ?? 0)
  return ipv6Text(v, 0)
}
