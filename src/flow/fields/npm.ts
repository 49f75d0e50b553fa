/**
 * Field group `npm` (network performance metrics): handshake RTT split, continuous RTT, server response
 * time, TCP retransmissions and out-of-order segments, jitter and inter-arrival delay.
 *
 * Specs and references: Flowmon NPM elements (PEN 39499, flowmon.xml; "Calculation of Flowmon NPM Metrics":
 * RTT = SYN→SYN/ACK + SYN/ACK→ACK, SRT = end of request to first response packet, DNS over UDP query→response,
 * microseconds); Wireshark's tcp_analyze_sequence_number() (packet-tcp.c) for tcp.analysis.retransmission,
 * fast_retransmission, out_of_order, keep_alive, zero_window_probe, window_update and initial_rtt, followed rule
 * by rule so the counts agree with tshark; RFC 3550 §6.4.1 for the interarrival jitter estimator
 * (J += (|D| - J) / 16, with D the difference of consecutive inter-arrival times since a passive probe has
 * no sender timestamps); RFC 6298 §3 (Karn) for discarding RTT samples of retransmitted data.
 *
 * Bounded state: every measurement keeps a fixed number of typed-array slots per flow and direction (one
 * outstanding RTT sample per direction, one outstanding request per flow, one outstanding DNS query).
 * Times are µs; exported values are rounded and clamped to unsigned32.
 */
import type { PacketInfo } from '../../decode/packet.js'
import {
  IPPROTO_TCP as TCP,
  IPPROTO_UDP as UDP,
  TH_ACK as ACK,
  TH_FIN as FIN,
  TH_RST as RST,
  TH_SYN as SYN,
} from '../../decode/protocol-numbers.js'
import type { RecordWriter } from '../../ipfix/record-writer.js'
import { resized } from '../../util/typed-arrays.js'
import { Dir, type FieldList, type FlowFeature, type FlowView } from '../feature.js'

const FIELDS: FieldList = [
  // Flowmon (PEN 39499): jitter and delay of the initiator's packets, handshake RTT, SRT mean, totals.
  ['npmJitterDev'],
  ['npmJitterAvg'],
  ['npmJitterMin'],
  ['npmJitterMax'],
  ['npmDelayDev'],
  ['npmDelayAvg'],
  ['npmDelayMin'],
  ['npmDelayMax'],
  ['npnRoundTripTime'],
  ['npmServerResponseTime'],
  ['npmTcpRetransmission'],
  ['npmTcpOutOfOrder'],
  // Flowtel (placeholder PEN, see src/ipfix/enterprise/flowtel.ts).
  ['flowtelTcpRttServer'],
  ['flowtelTcpRttClient'],
  ['flowtelTcpRttServerMin'],
  ['flowtelTcpRttServerMean'],
  ['flowtelTcpRttServerMax'],
  ['flowtelTcpRttServerCount'],
  ['flowtelTcpRttClientMin'],
  ['flowtelTcpRttClientMean'],
  ['flowtelTcpRttClientMax'],
  ['flowtelTcpRttClientCount'],
  ['flowtelSrtMin'],
  ['flowtelSrtMax'],
  ['flowtelSrtCount'],
  ['flowtelRetransPackets'],
  ['flowtelRetransOctets'],
  ['flowtelReverseRetransPackets'],
  ['flowtelReverseRetransOctets'],
  ['flowtelOutOfOrderPackets'],
  ['flowtelOutOfOrderOctets'],
  ['flowtelReverseOutOfOrderPackets'],
  ['flowtelReverseOutOfOrderOctets'],
  ['flowtelReverseJitterDev'],
  ['flowtelReverseJitterAvg'],
  ['flowtelReverseJitterMin'],
  ['flowtelReverseJitterMax'],
  ['flowtelReverseDelayDev'],
  ['flowtelReverseDelayAvg'],
  ['flowtelReverseDelayMin'],
  ['flowtelReverseDelayMax'],
]

const DNS_PORT = 53

/** Wireshark: out-of-order threshold when the initial RTT is unknown (3 ms), fast retransmission window (20 ms). */
const OOO_DEFAULT_US = 3000
const FAST_RETRANS_US = 20000

// Per-direction float slots (stride D).
const D_NEXTSEQ_T = 0 // time nextseq last advanced
const D_LASTACK_T = 1 // time of the last packet (Wireshark's lastacktime)
const D_LAST_PKT = 2 // arrival of the previous packet (for inter-arrival times); -1 none
const D_LAST_IAT = 3 // previous inter-arrival time; -1 none
const D_SAMPLE_T = 4 // RTT sample: send time of the outstanding data segment
const D_RTT_MIN = 5
const D_RTT_MAX = 6
const D_RTT_SUM = 7
const D_RTT_N = 8
const D_IAT_N = 9 // inter-arrival delay: Welford count, mean, M2, min, max
const D_IAT_MEAN = 10
const D_IAT_M2 = 11
const D_IAT_MIN = 12
const D_IAT_MAX = 13
const D_JIT_J = 14 // RFC 3550 estimator
const D_JIT_N = 15 // |D|: Welford count, mean, M2, min, max
const D_JIT_MEAN = 16
const D_JIT_M2 = 17
const D_JIT_MIN = 18
const D_JIT_MAX = 19
const D_RETR_P = 20
const D_RETR_O = 21
const D_OOO_P = 22
const D_OOO_O = 23
const D = 24

// Per-direction u32 slots (stride U).
const U_NEXTSEQ = 0
const U_LASTACK = 1
const U_SAMPLE_ACK = 2 // RTT sample: the ACK number that completes it
const U_WINDOW = 3 // last window (0xffffffff: none seen yet)
const U_DUPACKS = 4
const U = 5

// Per-direction flag bits.
const B_SAMPLE = 1 // an RTT sample is outstanding
const B_KEEPALIVE = 2 // the last segment was a keep-alive (Wireshark lastsegmentflags)

// Per-flow float slots (stride F).
const F_SYN_T = 0 // most recent SYN (Wireshark ts_mru_syn); 0 none
const F_SYNACK_T = 1 // first SYN/ACK after it
const F_RTT = 2 // handshake RTT: first pure ACK - most recent SYN (Wireshark initial_rtt); 0 unknown
const F_RTT_SERVER = 3 // SYN → SYN/ACK
const F_REQ_T = 4 // SRT: end of the outstanding request
const F_SRT_MIN = 5
const F_SRT_MAX = 6
const F_SRT_SUM = 7
const F_SRT_N = 8
const F = 9

// Per-flow state bits.
const S_AWAIT = 1 // a request waits for its response
const S_AWAIT_REV = 2 // DNS: the outstanding query went responder → initiator

const NONE = 0xffffffff

/** Signed 32-bit sequence comparison a < b (RFC 9293 §3.4, modulo 2^32). */
function lt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0
}

/** Time since `t`; a negative span (capture time went backwards) counts as infinite, as Wireshark's unsigned math. */
function since(now: number, t: number): number {
  const d = now - t
  return d < 0 ? Infinity : d
}

function u32(v: number): number {
  if (!(v > 0)) return 0
  const r = Math.round(v)
  return r > 0xffffffff ? 0xffffffff : r
}

export class NpmFields implements FlowFeature {
  readonly name = 'npm'
  private d = new Float64Array(0)
  private u = new Uint32Array(0)
  private b = new Uint8Array(0)
  private f = new Float64Array(0)
  private s = new Uint8Array(0)
  private dnsId = new Uint16Array(0)

  fields(): FieldList {
    return FIELDS
  }

  resize(capacity: number, used: number): void {
    this.d = resized(this.d, capacity * 2 * D, used * 2 * D)
    this.u = resized(this.u, capacity * 2 * U, used * 2 * U)
    this.b = resized(this.b, capacity * 2, used * 2)
    this.f = resized(this.f, capacity * F, used * F)
    this.s = resized(this.s, capacity, used)
    this.dnsId = resized(this.dnsId, capacity, used)
  }

  onCreate(id: number): void {
    const ua = this.u
    const da = this.d
    for (let dir = 0; dir < 2; dir++) {
      const k = id * 2 + dir
      const u = k * U
      ua[u + U_NEXTSEQ] = 0
      ua[u + U_LASTACK] = 0
      ua[u + U_SAMPLE_ACK] = 0
      ua[u + U_WINDOW] = NONE
      ua[u + U_DUPACKS] = 0
      this.b[k] = 0
      // Plain loops: TypedArray.fill on a few slots costs more than the stores (profiled).
      const d = k * D
      for (let i = 0; i < D_RTT_MIN; i++) da[d + i] = 0
      da[d + D_LAST_PKT] = -1
      da[d + D_LAST_IAT] = -1
    }
    const fa = this.f
    const f = id * F
    for (let i = 0; i < F; i++) fa[f + i] = 0
    this.s[id] = 0
    this.dnsId[id] = 0
    this.onReset(id)
  }

  onReset(id: number): void {
    const da = this.d
    for (let dir = 0; dir < 2; dir++) {
      const d = (id * 2 + dir) * D
      for (let i = D_RTT_MIN; i < D; i++) da[d + i] = 0
      da[d + D_RTT_MIN] = Infinity
      da[d + D_IAT_MIN] = Infinity
      da[d + D_JIT_MIN] = Infinity
    }
    const f = id * F
    this.f[f + F_SRT_MIN] = Infinity
    this.f[f + F_SRT_MAX] = 0
    this.f[f + F_SRT_SUM] = 0
    this.f[f + F_SRT_N] = 0
  }

  onSwap(id: number): void {
    const a = id * 2 * D
    for (let i = 0; i < D; i++) {
      const t = this.d[a + i]!
      this.d[a + i] = this.d[a + D + i]!
      this.d[a + D + i] = t
    }
    const x = id * 2 * U
    for (let i = 0; i < U; i++) {
      const t = this.u[x + i]!
      this.u[x + i] = this.u[x + U + i]!
      this.u[x + U + i] = t
    }
    const t = this.b[id * 2]!
    this.b[id * 2] = this.b[id * 2 + 1]!
    this.b[id * 2 + 1] = t
    this.s[id] = 0
  }

  onPacket(id: number, p: PacketInfo, dir: Dir, tsUs: number): void {
    this.timing(id * 2 + dir, tsUs)
    if (p.protocol === TCP) {
      if (!(p.isFragment && p.fragOffset > 0)) this.tcp(id, p, dir, tsUs)
    } else if (p.protocol === UDP && (p.srcPort === DNS_PORT || p.dstPort === DNS_PORT)) {
      this.dns(id, p, dir, tsUs)
    }
  }

  /** Inter-arrival delay and RFC 3550 jitter of one direction. */
  private timing(k: number, ts: number): void {
    const d = this.d
    const o = k * D
    const last = d[o + D_LAST_PKT]!
    d[o + D_LAST_PKT] = ts
    if (last < 0) return
    const iat = ts - last
    let n = d[o + D_IAT_N]! + 1
    d[o + D_IAT_N] = n
    let delta = iat - d[o + D_IAT_MEAN]!
    d[o + D_IAT_MEAN]! += delta / n
    d[o + D_IAT_M2]! += delta * (iat - d[o + D_IAT_MEAN]!)
    if (iat < d[o + D_IAT_MIN]!) d[o + D_IAT_MIN] = iat
    if (iat > d[o + D_IAT_MAX]!) d[o + D_IAT_MAX] = iat
    const prev = d[o + D_LAST_IAT]!
    d[o + D_LAST_IAT] = iat
    if (prev < 0) return
    const dd = Math.abs(iat - prev)
    d[o + D_JIT_J]! += (dd - d[o + D_JIT_J]!) / 16
    n = d[o + D_JIT_N]! + 1
    d[o + D_JIT_N] = n
    delta = dd - d[o + D_JIT_MEAN]!
    d[o + D_JIT_MEAN]! += delta / n
    d[o + D_JIT_M2]! += delta * (dd - d[o + D_JIT_MEAN]!)
    if (dd < d[o + D_JIT_MIN]!) d[o + D_JIT_MIN] = dd
    if (dd > d[o + D_JIT_MAX]!) d[o + D_JIT_MAX] = dd
  }

  private tcp(id: number, p: PacketInfo, dir: Dir, ts: number): void {
    const fl = p.tcpFlags
    const seq = p.tcpSeq >>> 0
    const ack = p.tcpAck >>> 0
    const seglen = p.payloadLength
    const win = p.tcpWindow
    const f = id * F
    const fa = this.f

    // Handshake (Wireshark: ts_mru_syn, ts_first_rtt; Flowmon: SYN→SYN/ACK + SYN/ACK→ACK).
    const syn = fl & (SYN | ACK)
    if (syn === SYN) {
      if (fa[f + F_RTT] === 0) {
        fa[f + F_SYN_T] = ts
        fa[f + F_SYNACK_T] = 0
      }
    } else if (syn === (SYN | ACK)) {
      if (fa[f + F_SYN_T]! > 0 && fa[f + F_SYNACK_T] === 0 && fa[f + F_RTT] === 0) {
        fa[f + F_SYNACK_T] = ts
        fa[f + F_RTT_SERVER] = ts - fa[f + F_SYN_T]!
      }
    } else if (syn === ACK && fa[f + F_SYN_T]! > 0 && fa[f + F_RTT] === 0 && ts > fa[f + F_SYN_T]!) {
      // A zero span leaves the RTT unset, as Wireshark's nstime_is_zero(ts_first_rtt) does.
      fa[f + F_RTT] = ts - fa[f + F_SYN_T]!
    }

    // Sequence analysis, rule by rule as Wireshark's tcp_analyze_sequence_number().
    const r = 1 - dir
    const kf = id * 2 + dir
    const kr = id * 2 + r
    const uf = kf * U
    const ur = kr * U
    const ua = this.u
    const df = kf * D
    const dr = kr * D
    const da = this.d
    const nextseq = ua[uf + U_NEXTSEQ]!
    const noSfr = (fl & (SYN | FIN | RST)) === 0
    let zwp = false
    let keepAlive = false
    if (seglen === 1 && seq === nextseq && ua[ur + U_WINDOW] === 0) {
      zwp = true
    } else {
      if (seglen <= 1 && seq === (nextseq - 1) >>> 0 && noSfr) keepAlive = true
      if (
        seglen === 0 &&
        win !== 0 &&
        win === ua[uf + U_WINDOW] &&
        seq === nextseq &&
        ack === ua[uf + U_LASTACK] &&
        noSfr
      ) {
        // A keep-alive ACK is not a duplicate ACK.
        if ((this.b[kr]! & B_KEEPALIVE) === 0) ua[uf + U_DUPACKS]! += 1
      }
    }
    if (ack !== ua[uf + U_LASTACK]) ua[uf + U_DUPACKS] = 0

    let kind = 0 // 1 retransmission (incl. fast), 2 out-of-order
    if (!zwp && !keepAlive && (seglen > 0 || (fl & (SYN | FIN)) !== 0)) {
      let notAdvanced = nextseq !== 0 && lt(seq, nextseq)
      if (seglen > 1 && (nextseq - 1) >>> 0 === seq) notAdvanced = false
      const lastackRev = ua[ur + U_LASTACK]!
      const rtt = fa[f + F_RTT]!
      const thres = rtt > 0 ? rtt : OOO_DEFAULT_US
      const end = (seq + seglen + ((fl & (SYN | FIN)) !== 0 ? 1 : 0)) >>> 0
      // tshark 4.0 order: spurious retransmission, fast retransmission, out-of-order, retransmission.
      if (seglen > 0 && lastackRev !== 0 && !lt(lastackRev, (seq + seglen) >>> 0)) {
        kind = 1 // spurious retransmission (tshark flags it tcp.analysis.retransmission too)
      } else if (
        notAdvanced &&
        ua[ur + U_DUPACKS]! >= 2 &&
        lastackRev === seq &&
        since(ts, da[dr + D_LASTACK_T]!) < FAST_RETRANS_US
      ) {
        kind = 1 // fast retransmission (tshark also flags it tcp.analysis.retransmission)
      } else if (notAdvanced && since(ts, da[df + D_NEXTSEQ_T]!) < thres && nextseq !== end) {
        kind = 2
      } else if (notAdvanced) {
        kind = 1
      }
    }
    if (kind === 1) {
      da[df + D_RETR_P]! += 1
      da[df + D_RETR_O]! += seglen
    } else if (kind === 2) {
      da[df + D_OOO_P]! += 1
      da[df + D_OOO_O]! += seglen
    }

    let nxt = (seq + seglen) >>> 0
    if (seglen > 0 || (fl & (SYN | FIN)) !== 0) {
      if ((fl & (SYN | FIN)) !== 0) nxt = (nxt + 1) >>> 0
    }
    if ((lt(nextseq, nxt) || nextseq === 0) && !zwp) {
      ua[uf + U_NEXTSEQ] = nxt
      da[df + D_NEXTSEQ_T] = ts
    }
    ua[uf + U_WINDOW] = win
    ua[uf + U_LASTACK] = ack
    da[df + D_LASTACK_T] = ts
    let bits = this.b[kf]! & ~B_KEEPALIVE
    if (keepAlive) bits |= B_KEEPALIVE

    // Continuous RTT: one outstanding data segment per direction; retransmitted data voids it (Karn).
    if ((bits & B_SAMPLE) !== 0 && kind !== 0 && lt(seq, ua[uf + U_SAMPLE_ACK]!)) bits &= ~B_SAMPLE
    if (
      seglen > 0 &&
      kind === 0 &&
      !zwp &&
      !keepAlive &&
      (bits & B_SAMPLE) === 0 &&
      (nextseq === 0 || !lt(seq, nextseq))
    ) {
      bits |= B_SAMPLE
      ua[uf + U_SAMPLE_ACK] = (seq + seglen) >>> 0
      da[df + D_SAMPLE_T] = ts
    }
    this.b[kf] = bits
    if ((fl & ACK) !== 0 && (this.b[kr]! & B_SAMPLE) !== 0 && !lt(ack, ua[ur + U_SAMPLE_ACK]!)) {
      this.b[kr]! &= ~B_SAMPLE
      const sample = ts - da[dr + D_SAMPLE_T]!
      if (sample < da[dr + D_RTT_MIN]!) da[dr + D_RTT_MIN] = sample
      if (sample > da[dr + D_RTT_MAX]!) da[dr + D_RTT_MAX] = sample
      da[dr + D_RTT_SUM]! += sample
      da[dr + D_RTT_N]! += 1
    }

    // Server response time: initiator payload is a request, the responder's first payload after it answers.
    if (seglen > 0 && kind === 0 && !zwp && !keepAlive) {
      if (dir === Dir.Forward) {
        fa[f + F_REQ_T] = ts
        this.s[id]! |= S_AWAIT
      } else if ((this.s[id]! & S_AWAIT) !== 0) {
        this.s[id]! &= ~S_AWAIT
        this.srt(f, ts - fa[f + F_REQ_T]!)
      }
    }
  }

  /** DNS over UDP: a query (QR=0) to the response (QR=1) with the same ID from the other side. */
  private dns(id: number, p: PacketInfo, dir: Dir, ts: number): void {
    if (p.isFragment && p.fragOffset > 0) return
    if (p.payloadCaptured < 12) return
    const o = p.payloadOffset
    const buf = p.buf
    if (o + 3 > buf.length) return
    const qid = (buf[o]! << 8) | buf[o + 1]!
    const qr = buf[o + 2]! & 0x80
    const st = this.s[id]!
    if (qr === 0) {
      if ((st & S_AWAIT) === 0) {
        this.s[id] = S_AWAIT | (dir === Dir.Reverse ? S_AWAIT_REV : 0)
        this.dnsId[id] = qid
        this.f[id * F + F_REQ_T] = ts
      }
    } else if ((st & S_AWAIT) !== 0 && this.dnsId[id] === qid) {
      const queryRev = (st & S_AWAIT_REV) !== 0
      if (queryRev !== (dir === Dir.Reverse)) {
        this.s[id] = 0
        this.srt(id * F, ts - this.f[id * F + F_REQ_T]!)
      }
    }
  }

  private srt(f: number, v: number): void {
    const fa = this.f
    if (v < fa[f + F_SRT_MIN]!) fa[f + F_SRT_MIN] = v
    if (v > fa[f + F_SRT_MAX]!) fa[f + F_SRT_MAX] = v
    fa[f + F_SRT_SUM]! += v
    fa[f + F_SRT_N]! += 1
  }

  write(id: number, _flow: FlowView, w: RecordWriter): void {
    const da = this.d
    const fa = this.f
    const fo = id * 2 * D
    const ro = fo + D
    const f = id * F
    this.writeJitterDelay(fo, w)
    const rtt = fa[f + F_RTT]!
    w.u32(u32(rtt))
    const n = fa[f + F_SRT_N]!
    w.u32(n > 0 ? u32(fa[f + F_SRT_SUM]! / n) : 0)
    w.u32(u32(da[fo + D_RETR_P]! + da[ro + D_RETR_P]!))
    w.u32(u32(da[fo + D_OOO_P]! + da[ro + D_OOO_P]!))
    const server = rtt > 0 ? fa[f + F_RTT_SERVER]! : 0
    w.u32(u32(server))
    w.u32(rtt > 0 && server > 0 ? u32(rtt - server) : 0)
    this.writeRtt(fo, w)
    this.writeRtt(ro, w)
    w.u32(n > 0 ? u32(fa[f + F_SRT_MIN]!) : 0)
    w.u32(n > 0 ? u32(fa[f + F_SRT_MAX]!) : 0)
    w.u32(u32(n))
    w.u32(u32(da[fo + D_RETR_P]!))
    w.u64(da[fo + D_RETR_O]!)
    w.u32(u32(da[ro + D_RETR_P]!))
    w.u64(da[ro + D_RETR_O]!)
    w.u32(u32(da[fo + D_OOO_P]!))
    w.u64(da[fo + D_OOO_O]!)
    w.u32(u32(da[ro + D_OOO_P]!))
    w.u64(da[ro + D_OOO_O]!)
    this.writeJitterDelay(ro, w)
  }

  private writeRtt(o: number, w: RecordWriter): void {
    const da = this.d
    const n = da[o + D_RTT_N]!
    w.u32(n > 0 ? u32(da[o + D_RTT_MIN]!) : 0)
    w.u32(n > 0 ? u32(da[o + D_RTT_SUM]! / n) : 0)
    w.u32(n > 0 ? u32(da[o + D_RTT_MAX]!) : 0)
    w.u32(u32(n))
  }

  /** Jitter dev/avg/min/max then delay dev/avg/min/max, as the Flowmon ids 61..68 are ordered. */
  private writeJitterDelay(o: number, w: RecordWriter): void {
    const da = this.d
    const jn = da[o + D_JIT_N]!
    w.u32(jn > 1 ? u32(Math.sqrt(da[o + D_JIT_M2]! / jn)) : 0)
    w.u32(u32(da[o + D_JIT_J]!))
    w.u32(jn > 0 ? u32(da[o + D_JIT_MIN]!) : 0)
    w.u32(jn > 0 ? u32(da[o + D_JIT_MAX]!) : 0)
    const n = da[o + D_IAT_N]!
    w.u32(n > 1 ? u32(Math.sqrt(da[o + D_IAT_M2]! / n)) : 0)
    w.u32(n > 0 ? u32(da[o + D_IAT_MEAN]!) : 0)
    w.u32(n > 0 ? u32(da[o + D_IAT_MIN]!) : 0)
    w.u32(n > 0 ? u32(da[o + D_IAT_MAX]!) : 0)
  }
}
