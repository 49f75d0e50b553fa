/**
 * Field group `arp`: every ARP packet (RFC 826; EtherType 0x0806) becomes one record of its own template.
 *
 * Why records per packet and not ARP "flows": ARP has no connection whose packets belong together. The
 * questions operators ask of it (who claims this IP, did a second MAC start answering for it, a gratuitous
 * ARP, a burst of requests from one host) are about individual claims and their time, and aggregating by
 * (sender, target) would hide a one-off spoofed reply among many good ones. ARP volume is small next to IP
 * traffic, and a record is 44 octets. So ARP packets bypass the flow cache: the probe hands them to
 * `ArpRecords.record`, which writes one record of template ARP_TEMPLATE_ID straight to the exporter.
 * The group is still selected like any other (`--fields ...,arp`) and adds nothing to flow templates; when it
 * is off the probe's non-IP branch does a single `undefined` check.
 *
 * Record: observationTimeMilliseconds (IANA 323), Ethernet source/destination MAC (56/80), vlanId (58),
 * ingressInterface (10), Flowmon arpHrd/arpOp (PEN 39499 ids 190/191: hardware type and opcode), and the
 * sender/target hardware and protocol addresses as Flowtel elements (PEN placeholder, ids 40-43). The
 * addresses are filled only for Ethernet/IPv4 ARP (hlen 6, plen 4, ptype 0x0800); otherwise they are zero.
 */
import type { PacketInfo } from '../../decode/packet.js'
import type { IpfixExporter } from '../../ipfix/exporter.js'
import { Template } from '../../ipfix/template.js'
import type { FieldList, FlowFeature } from '../feature.js'

export const ARP_TEMPLATE_ID = 270
export const ETHERTYPE_ARP = 0x0806

const ARP_FIELDS: FieldList = [
  ['observationTimeMilliseconds'],
  ['sourceMacAddress'],
  ['destinationMacAddress'],
  ['vlanId'],
  ['ingressInterface'],
  ['arpHrd'],
  ['arpOp'],
  ['flowtelArpSenderMac'],
  ['flowtelArpSenderIPv4'],
  ['flowtelArpTargetMac'],
  ['flowtelArpTargetIPv4'],
]

/** The `arp` group: no flow fields; the probe looks for it and attaches ARP records to the exporter. */
export class ArpFields implements FlowFeature {
  readonly name = 'arp'
  /** ARP is not a flow: the probe keeps this group out of the flow cache's feature list. */
  readonly flowless = true
  fields(): FieldList {
    return []
  }
  resize(): void {}
  onCreate(): void {}
  onPacket(): void {}
  onReset(): void {}
  onSwap(): void {}
  write(): void {}

  /** Records ARP packets to `exporter` (adds the ARP template). */
  attach(exporter: IpfixExporter): ArpRecords {
    return new ArpRecords(exporter)
  }
}

export class ArpRecords {
  readonly template = Template.fromNames(ARP_TEMPLATE_ID, ARP_FIELDS)
  records = 0

  constructor(private readonly exporter: IpfixExporter) {
    exporter.addTemplate(this.template)
  }

  /**
   * Write one record for the ARP packet decoded into `p` (DecodeResult.NonIp, etherType 0x0806), whose captured
   * bytes end at `end` in `p.buf`. Returns false when the ARP header (8 octets) is truncated.
   */
  record(p: PacketInfo, end: number, tsUs: number, ifIndex: number): boolean {
    const b = p.buf
    const o = p.l3Offset
    const lim = end < b.length ? end : b.length
    if (o + 8 > lim) return false
    const hrd = (b[o]! << 8) | b[o + 1]!
    const pro = (b[o + 2]! << 8) | b[o + 3]!
    const hln = b[o + 4]!
    const pln = b[o + 5]!
    const op = (b[o + 6]! << 8) | b[o + 7]!
    const full = hln === 6 && pln === 4 && pro === 0x0800 && o + 28 <= lim
    const w = this.exporter.beginRecord(this.template, this.template.fixedLength)
    w.dateTimeMs(Math.floor(tsUs / 1000))
    w.mac(p.srcMacHi, p.srcMacLo)
    w.mac(p.dstMacHi, p.dstMacLo)
    w.u16(p.vlanId)
    w.u32(ifIndex)
    w.u16(hrd)
    w.u16(op)
    if (full) {
      w.mac((b[o + 8]! << 8) | b[o + 9]!, readU32(b, o + 10))
      w.u32(readU32(b, o + 14))
      w.mac((b[o + 18]! << 8) | b[o + 19]!, readU32(b, o + 20))
      w.u32(readU32(b, o + 24))
    } else {
      w.mac(0, 0)
      w.u32(0)
      w.mac(0, 0)
      w.u32(0)
    }
    this.exporter.endRecord()
    this.records++
    return true
  }
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0
}
