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

export class L2Fields implements FlowFeature {
  readonly name = 'l2'
  readonly noPacketWork = true
  /** Initiator MAC hi16, lo32, responder MAC hi16, lo32. */
  private macs = new Uint32Array(0)
  private ifIndex = new Uint32Array(0)

  fields(): FieldList {
    return FIELDS
  }

  resize(capacity: number, used: number): void {
    this.macs = resized(this.macs, capacity * 4, used * 4)
    this.ifIndex = resized(this.ifIndex, capacity, used)
  }

  onCreate(id: number, p: PacketInfo, dir: Dir, _tsUs: number, ifIndex: number): void {
    const m = id * 4
    // The creating packet comes from the responder when a SYN/ACK is the first packet seen.
    const s = dir === Dir.Forward ? m : m + 2
    const d = dir === Dir.Forward ? m + 2 : m
    this.macs[s] = p.srcMacHi
    this.macs[s + 1] = p.srcMacLo
    this.macs[d] = p.dstMacHi
    this.macs[d + 1] = p.dstMacLo
    this.ifIndex[id] = ifIndex
  }

  onPacket(): void {}

  onReset(): void {}

  onSwap(id: number): void {
    const m = id * 4
    const hi = this.macs[m]!
    const lo = this.macs[m + 1]!
    this.macs[m] = this.macs[m + 2]!
    this.macs[m + 1] = this.macs[m + 3]!
    this.macs[m + 2] = hi
    this.macs[m + 3] = lo
  }

  write(id: number, flow: FlowView, w: RecordWriter): void {
    const m = id * 4
    if (w instanceof BufferWriter && w.pos + RECORD_LENGTH <= w.limit) {
      // One bounds check for the whole fixed-length group.
      const view = w.view
      const p = w.pos
      const macs = this.macs
      view.setUint16(p, macs[m]!)
      view.setUint32(p + 2, macs[m + 1]!)
      view.setUint16(p + 6, macs[m + 2]!)
      view.setUint32(p + 8, macs[m + 3]!)
      view.setUint16(p + 12, flow.vlanId(id))
      view.setUint16(p + 14, flow.innerVlanId(id))
      view.setUint32(p + 16, this.ifIndex[id]!)
      w.pos = p + RECORD_LENGTH
      return
    }
    w.mac(this.macs[m]!, this.macs[m + 1]!)
    w.mac(this.macs[m + 2]!, this.macs[m + 3]!)
    w.u16(flow.vlanId(id))
    w.u16(flow.innerVlanId(id))
    w.u32(this.ifIndex[id]!)
  }
}
