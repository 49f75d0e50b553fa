/**
 * Field group `tcpext`: facts of the TCP handshake and the options seen.
 *
 * RFC 9293 §3.1-3.2 (header, options: kind 0 end of list, 1 no-op, others kind-length-value), RFC 9293 §3.7.1
 * (MSS, kind 2), RFC 7323 §2 (window scale, kind 3; shift counts above 14 are used as 14), RFC 2018 (SACK
 * permitted, kind 4). Elements: Flowmon tcpSynTtl / tcpSynSize (PEN 39499: TTL and IP length of the SYN,
 * the size clamped to 255 as the element is unsigned8), IANA tcpOptions (209) and its RFC 5103 reverse: bit X
 * (value 2^X, RFC 5102 erratum 1739) set when option kind X < 64 was seen in a packet of that direction.
 * Option parsing is bounded by the TCP header the decoder validated: [l4Offset + 20, payloadOffset).
 */
import type { PacketInfo } from '../../decode/packet.js'
import { IPPROTO_TCP as TCP, TH_ACK as ACK, TH_SYN as SYN } from '../../decode/protocol-numbers.js'
import type { RecordWriter } from '../../ipfix/record-writer.js'
import { resized, swapEntries } from '../../util/typed-arrays.js'
import { Dir, type FieldList, type FlowFeature, type FlowView } from '../feature.js'

const FIELDS: FieldList = [
  ['tcpSynTtl'],
  ['tcpSynSize'],
  ['flowtelTcpSynAckTtl'],
  ['flowtelTcpInitialWindow'],
  ['flowtelReverseTcpInitialWindow'],
  ['flowtelTcpWindowScale'],
  ['flowtelReverseTcpWindowScale'],
  ['flowtelTcpMss'],
  ['flowtelReverseTcpMss'],
  ['flowtelTcpSackPermitted'],
  ['flowtelReverseTcpSackPermitted'],
  ['tcpOptions'],
  ['reverseTcpOptions'],
]

const NO_SCALE = 255

// Per-direction u8 bits.
const B_SYN = 1 // the SYN (dir 0) / SYN-ACK (dir 1) was seen
const B_SACK = 2

export class TcpExtFields implements FlowFeature {
  readonly name = 'tcpext'
  /** Options bitmap per direction as two u32 words: hi (kinds 32..63), lo (kinds 0..31). */
  private opts = new Uint32Array(0)
  /** Per direction: TTL and IP length of the SYN / SYN-ACK (clamped to 255), window scale. */
  private ttl = new Uint8Array(0)
  private size = new Uint8Array(0)
  private wscale = new Uint8Array(0)
  private bits = new Uint8Array(0)
  /** Per direction: initial window, MSS. */
  private win = new Uint16Array(0)
  private mss = new Uint16Array(0)

  fields(): FieldList {
    return FIELDS
  }

  resize(capacity: number, used: number): void {
    this.opts = resized(this.opts, capacity * 4, used * 4)
    this.ttl = resized(this.ttl, capacity * 2, used * 2)
    this.size = resized(this.size, capacity * 2, used * 2)
    this.wscale = resized(this.wscale, capacity * 2, used * 2)
    this.bits = resized(this.bits, capacity * 2, used * 2)
    this.win = resized(this.win, capacity * 2, used * 2)
    this.mss = resized(this.mss, capacity * 2, used * 2)
  }

  onCreate(id: number): void {
    const k = id * 2
    this.opts.fill(0, id * 4, id * 4 + 4)
    this.ttl[k] = this.ttl[k + 1] = 0
    this.size[k] = this.size[k + 1] = 0
    this.wscale[k] = this.wscale[k + 1] = NO_SCALE
    this.bits[k] = this.bits[k + 1] = 0
    this.win[k] = this.win[k + 1] = 0
    this.mss[k] = this.mss[k + 1] = 0
  }

  onPacket(id: number, p: PacketInfo, dir: Dir): void {
    if (p.protocol !== TCP) return
    const start = p.l4Offset + 20
    const end = p.payloadOffset
    const k = id * 2 + dir
    const synFlags = p.tcpFlags & (SYN | ACK)
    // The SYN travels forward, the SYN/ACK backward; only the first of each is described.
    const handshake =
      (synFlags === SYN && dir === Dir.Forward) || (synFlags === (SYN | ACK) && dir === Dir.Reverse)
    const first = handshake && (this.bits[k]! & B_SYN) === 0
    if (first) {
      this.bits[k]! |= B_SYN
      this.ttl[k] = p.ttl
      this.size[k] = p.ipLength > 255 ? 255 : p.ipLength
      this.win[k] = p.tcpWindow
    }
    if (end <= start) return
    const buf = p.buf
    const lim = end < buf.length ? end : buf.length
    const o4 = id * 4 + dir * 2
    let o = start
    while (o < lim) {
      const kind = buf[o]!
      if (kind === 0) break
      if (kind < 32) this.opts[o4 + 1]! |= 1 << kind
      else if (kind < 64) this.opts[o4]! |= 1 << (kind - 32)
      if (kind === 1) {
        o++
        continue
      }
      if (o + 1 >= lim) break
      const len = buf[o + 1]!
      if (len < 2 || o + len > lim) break
      if (first) {
        if (kind === 2 && len === 4) this.mss[k] = (buf[o + 2]! << 8) | buf[o + 3]!
        else if (kind === 3 && len === 3) this.wscale[k] = Math.min(buf[o + 2]!, 14)
        else if (kind === 4 && len === 2) this.bits[k]! |= B_SACK
      }
      o += len
    }
  }

  onReset(): void {}

  onSwap(id: number): void {
    const k = id * 2
    swapEntries(this.opts, id * 4, id * 4 + 2)
    swapEntries(this.opts, id * 4 + 1, id * 4 + 3)
    swapEntries(this.ttl, k, k + 1)
    swapEntries(this.size, k, k + 1)
    swapEntries(this.wscale, k, k + 1)
    swapEntries(this.bits, k, k + 1)
    swapEntries(this.win, k, k + 1)
    swapEntries(this.mss, k, k + 1)
  }

  write(id: number, _flow: FlowView, w: RecordWriter): void {
    const k = id * 2
    w.u8(this.ttl[k]!)
    w.u8(this.size[k]!)
    w.u8(this.ttl[k + 1]!)
    w.u16(this.win[k]!)
    w.u16(this.win[k + 1]!)
    w.u8(this.wscale[k]!)
    w.u8(this.wscale[k + 1]!)
    w.u16(this.mss[k]!)
    w.u16(this.mss[k + 1]!)
    w.u8((this.bits[k]! & B_SACK) !== 0 ? 1 : 2)
    w.u8((this.bits[k + 1]! & B_SACK) !== 0 ? 1 : 2)
    // unsigned64 as two big-endian words (hi: kinds 63..32, lo: kinds 31..0).
    const o = id * 4
    w.u32(this.opts[o]!)
    w.u32(this.opts[o + 1]!)
    w.u32(this.opts[o + 2]!)
    w.u32(this.opts[o + 3]!)
  }
}
