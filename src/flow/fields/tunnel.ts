/**
 * Field group `tunnel`: the overlay segment of tunnelled flows.
 *
 * layer2SegmentId (IANA 351, unsigned64): the most significant octet is the encapsulation type
 * (0x01 VXLAN) and the low 24 bits the segment id, per the IANA registry. Other tunnels (Geneve, GTP-U,
 * GRE, IP-in-IP) have no IANA element; their id is still part of the flow key, and exported as 0 here.
 */
import { Tunnel } from '../../decode/packet.js'
import type { RecordWriter } from '../../ipfix/record-writer.js'
import type { FieldList, FlowFeature, FlowView } from '../feature.js'

const FIELDS: FieldList = [['layer2SegmentId']]

const SEGMENT_VXLAN = 0x01

export class TunnelFields implements FlowFeature {
  readonly name = 'tunnel'
  readonly noPacketWork = true
  readonly noFlowState = true

  fields(): FieldList {
    return FIELDS
  }
  resize(): void {}
  onCreate(): void {}
  onPacket(): void {}
  onReset(): void {}
  onSwap(): void {}

  write(id: number, flow: FlowView, w: RecordWriter): void {
    // Written as two u32 words: the type octet on top, the 24-bit id below.
    if (flow.tunnelType(id) === (Tunnel.Vxlan as number)) {
      w.u32(SEGMENT_VXLAN << 24)
      w.u32(flow.tunnelId(id) & 0xffffff)
    } else {
      w.u32(0)
      w.u32(0)
    }
  }
}
