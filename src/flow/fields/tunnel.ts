/**
 * Field group `tunnel`: the overlay segment of tunnelled flows (only in the templates of tunnelled flows).
 *
 * layer2SegmentId (IANA 351, unsigned64): the most significant octet is the encapsulation type
 * (0x01 VXLAN) and the low 24 bits the segment id, per the IANA registry. Other tunnels (Geneve, GTP-U,
 * GRE, IP-in-IP) have no IANA element; their id is still part of the flow key, and exported as 0 here.
 */
import { Tunnel } from '../../decode/packet.js'
import type { RecordWriter } from '../../ipfix/record-writer.js'
import { RecordKind, type FieldList, type FlowFeature, type FlowView } from '../feature.js'

const FIELDS: FieldList = [['layer2SegmentId']]

const SEGMENT_VXLAN = 0x01

export class TunnelFields implements FlowFeature {
  readonly name = 'tunnel'
  readonly noPacketWork = true
  readonly noFlowState = true

  fields(_ipVersion: 4 | 6, kind: number): FieldList {
    return (kind & RecordKind.Tunnel) !== 0 ? FIELDS : []
  }
  resize(): void {}
  onCreate(): void {}
  onPacket(): void {}
  onReset(): void {}
  onSwap(): void {}

  write(id: number, flow: FlowView, w: RecordWriter): void {
    // Only tunnelled flows carry the field (RecordKind.Tunnel); written as two u32 words: the type octet
    // on top, the 24-bit id below.
    const type = flow.tunnelType(id)
    if (type === (Tunnel.None as number)) return
    if (type === (Tunnel.Vxlan as number)) {
      w.u32(SEGMENT_VXLAN << 24)
      w.u32(flow.tunnelId(id) & 0xffffff)
    } else {
      w.u32(0)
      w.u32(0)
    }
  }
}
