/**
 * Field group `l2`: MAC addresses, VLANs (802.1Q / 802.1ad QinQ) and the ingress interface.
 *
 * MACs are the initiator's and responder's as seen in the first packet of the flow (IANA 56/80);
 * vlanId (58) is the outer tag and dot1qCustomerVlanId (245) the inner one of a QinQ stack; both are
 * part of the flow key. ingressInterface (10) is the pcapng interface id or the OS ifindex.
 */
import type { PacketInfo } from '../../decode/packet.js'
import { BufferWriter, type RecordWriter } from '../../ipfix/record-writer.js'
import { resized } from '../../util/typed-arrays.js'
import { Dir, type FieldList, type FlowFeature, type FlowView } from '../feature.js'

const FIELDS: FieldList = [
  ['sourceMacAddress'],
  ['destinationMacAddress'],
  ['vlanId'],
  ['dot1qCustomerVlanId'],
  ['ingressInterface'],
]

/** Octets of the fields above. */
const RECORD_LENGTH = 20

/**
 * Per-flow state in one array, 8 words (32 octets) per flow so a flow's state never straddles a cache
 * line: initiator MAC hi16, lo32, responder MAC hi16, lo32, ingress interface. A record or a new flow
 * then touches one line instead of one per array.
 */
const STRIDE = 8
const W_IF_INDEX = 4

export class L2Fields implements FlowFeature {
  readonly name = 'l2'
  readonly noPacketWork = true
  private state = new Uint32Array(0)

  fields(): FieldList {
    return FIELDS
  }

  resize(capacity: number, used: number): void {
    this.state = resized(this.state, capacity * STRIDE, used * STRIDE)
  }

  onCreate(id: number, p: PacketInfo, dir: Dir, _tsUs: number, ifIndex: number): void {
    const m = id * STRIDE
    const st = this.state
    // The creating packet comes from the responder when a SYN/ACK is the first packet seen.
    const s = dir === Dir.Forward ? m : m + 2
    const d = dir === Dir.Forward ? m + 2 : m
    st[s] = p.srcMacHi
    st[s + 1] = p.srcMacLo
    st[d] = p.dstMacHi
    st[d + 1] = p.dstMacLo
    st[m + W_IF_INDEX] = ifIndex
  }

  onPacket(): void {}

  onReset(): void {}

  onSwap(id: number): void {
    const m = id * STRIDE
    const st = this.state
    const hi = st[m]!
    const lo = st[m + 1]!
    st[m] = st[m + 2]!
    st[m + 1] = st[m + 3]!
    st[m + 2] = hi
    st[m + 3] = lo
  }

  write(id: number, flow: FlowView, w: RecordWriter): void {
    const m = id * STRIDE
    const st = this.state
    if (w instanceof BufferWriter && w.pos + RECORD_LENGTH <= w.limit) {
      // One bounds check for the whole fixed-length group.
      const view = w.view
      const p = w.pos
      view.setUint16(p, st[m]!)
      view.setUint32(p + 2, st[m + 1]!)
      view.setUint16(p + 6, st[m + 2]!)
      view.setUint32(p + 8, st[m + 3]!)
      view.setUint16(p + 12, flow.vlanId(id))
      view.setUint16(p + 14, flow.innerVlanId(id))
      view.setUint32(p + 16, st[m + W_IF_INDEX]!)
      w.pos = p + RECORD_LENGTH
      return
    }
    w.mac(st[m]!, st[m + 1]!)
    w.mac(st[m + 2]!, st[m + 3]!)
    w.u16(flow.vlanId(id))
    w.u16(flow.innerVlanId(id))
    w.u32(st[m + W_IF_INDEX]!)
  }
}
