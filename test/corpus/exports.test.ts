// Scorer for the collector over ../shared/exports (skipped without it): every case is fed, in MANIFEST
// replay order, to one FlowCollector as one stream; upstream golden decodes (NetGauze JSON, Logstash spec
// expectations, Telegraf line protocol) are compared field by field and the agreement is printed per vendor.
// Issue 6 asks for 99 % of golden fields. Field names differ between tools, so a golden field agrees when
// the record holds an equal value under the mapped element name ("named"), or, when no mapped name is
// present, under any element ("value-only", weaker: reported separately). Values are normalised first
// (ISO dates → epoch ms, byte arrays / MACs / dashed hex → hex, protocol and enum names → numbers).
// pmacct goldens (aggregated by nfacctd's config) and tcpdump sFlow text are not scored.
import { existsSync, readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { valueToJson, type DecodedField } from '../../src/ipfix/decoder.js'
import { FlowCollector, type CollectedRecord } from '../../src/collector/decode-message.js'
import { OfflineReader } from '../../src/collector/offline-reader.js'
import { SHARED } from '../helpers/shared.js'

const EXPORTS = join(SHARED, 'exports')
const HAVE = existsSync(join(EXPORTS, 'MANIFEST.tsv'))

/** Issue 6: the scorer fails under 99 % of golden fields once that is reached. */
const THRESHOLD = 0.99
/** Regression floor while the threshold is not reached (named + value-only agreement, all goldens). */
const FLOOR = 0.9
/** Regression floor for the tshark reference comparison (not an upstream golden; not gated at 99 %). */
const REF_FLOOR = 0.9

// ---------------------------------------------------------------------------------------------------------
// Normalisation

const PROTOCOLS: Record<string, number> = {
  hopopt: 0,
  icmp: 1,
  igmp: 2,
  ipv4: 4,
  tcp: 6,
  egp: 8,
  igp: 9,
  udp: 17,
  ipv6: 41,
  rsvp: 46,
  gre: 47,
  esp: 50,
  ah: 51,
  'ipv6-icmp': 58,
  icmpv6: 58,
  ipv6icmp: 58,
  ospf: 89,
  ospfigp: 89,
  pim: 103,
  vrrp: 112,
  l2tp: 115,
  sctp: 132,
}
const ENUMS: Record<string, Record<string, number>> = {
  flowEndReason: { idletimeout: 1, activetimeout: 2, endofflowdetected: 3, forcedend: 4, lackofresources: 5 },
  flowDirection: { ingress: 0, egress: 1 },
  mplsTopLabelType: { unknown: 0, temidpt: 1, pseudowire: 2, vpn: 3, bgp: 4, ldp: 5 },
  selectorAlgorithm: {
    systematiccountbasedsampling: 1,
    systematictimebasedsampling: 2,
    randomnoutofnsampling: 3,
    uniformprobabilisticsampling: 4,
  },
  ipVersion: { ipv4: 4, ipv6: 6 },
  forwardingStatus: { unknown: 0 },
}
const FWD: Record<string, number> = { unknown: 0, forwarded: 64, dropped: 128, consumed: 192 }
const FWD_REASON: Record<string, number> = {
  unknown: 0,
  fragmented: 1,
  notfragmented: 2,
  puntadjacency: 1,
  incompleteadjacency: 2,
  forus: 3,
}
const TCP_BITS: Record<string, number> = {
  FIN: 1,
  SYN: 2,
  RST: 4,
  PSH: 8,
  ACK: 16,
  URG: 32,
  ECE: 64,
  CWR: 128,
}
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/

/** Canonical text of a value for comparison; `key` selects enum tables. */
function norm(v: unknown, key = ''): string {
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'boolean') return String(v)
  if (typeof v === 'number' || typeof v === 'bigint') return String(v)
  if (Array.isArray(v)) {
    if (v.every((x) => Number.isInteger(x) && x >= 0 && x < 256))
      return (v as number[]).map((x) => x.toString(16).padStart(2, '0')).join('')
    return JSON.stringify(v.map((x) => norm(x)))
  }
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>
    const keys = Object.keys(o)
    if (keys.length === 2 && typeof o['status'] === 'number' && typeof o['reason'] === 'number')
      return String(o['status'] * 64 + o['reason'])
    if (keys.length > 0 && keys.every((k) => k in TCP_BITS && typeof o[k] === 'boolean'))
      return String(keys.reduce((n, k) => n + (o[k] === true ? (TCP_BITS[k] ?? 0) : 0), 0))
    if (keys.length === 1) {
      const k = keys[0]!
      const inner = o[k]
      if (k === 'Unknown' && typeof inner === 'object' && inner !== null && 'value' in inner)
        return norm(inner.value)
      if (key === 'forwardingStatus' && typeof inner === 'string' && k.toLowerCase() in FWD)
        return String((FWD[k.toLowerCase()] ?? 0) + (FWD_REASON[inner.toLowerCase()] ?? 0))
      return norm(inner, key)
    }
    return JSON.stringify(o)
  }
  let s = (typeof v === 'string' ? v : JSON.stringify(v)).trim()
  if (ISO.test(s)) return String(Date.parse(s))
  const lower = s.toLowerCase()
  if (key !== '' && ENUMS[key]?.[lower] !== undefined) return String(ENUMS[key][lower])
  if ((key === 'protocolIdentifier' || key === 'protocol') && lower in PROTOCOLS)
    return String(PROTOCOLS[lower])
  if (/^0x[0-9a-f]+$/i.test(s)) return String(BigInt(s))
  if (/^-?\d+$/.test(s)) return String(BigInt(s))
  if (/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(s)) return lower.replaceAll(':', '')
  if (/^[0-9a-f]+(-[0-9a-f]+)+$/i.test(s)) return lower.replaceAll('-', '')
  // Telegraf TCP flags: 8 characters CEUAPRSF, '.' when clear.
  if (/^[.CEUAPRSF]{8}$/.test(s) && key === 'tcpControlBits') {
    let n = 0
    for (let i = 0; i < 8; i++) if (s[i] !== '.') n |= 1 << (7 - i)
    return String(n)
  }
  s = lower
  return s
}

// ---------------------------------------------------------------------------------------------------------
// Golden field names (Logstash netflow codec, Telegraf netflow input) → our element names.

const ALIASES: Record<string, string[]> = {
  ipv4_src_addr: ['sourceIPv4Address'],
  ipv4_dst_addr: ['destinationIPv4Address'],
  src: ['sourceIPv4Address', 'sourceIPv6Address'],
  dst: ['destinationIPv4Address', 'destinationIPv6Address'],
  l4_src_port: ['sourceTransportPort'],
  l4_dst_port: ['destinationTransportPort'],
  src_port: ['sourceTransportPort'],
  dst_port: ['destinationTransportPort'],
  in_bytes: ['octetDeltaCount'],
  in_pkts: ['packetDeltaCount'],
  in_packets: ['packetDeltaCount'],
  out_bytes: ['postOctetDeltaCount', 'reverseOctetDeltaCount'],
  out_pkts: ['postPacketDeltaCount', 'reversePacketDeltaCount'],
  protocol: ['protocolIdentifier'],
  src_tos: ['ipClassOfService'],
  dst_tos: ['postIpClassOfService'],
  tcp_flags: ['tcpControlBits'],
  input_snmp: ['ingressInterface'],
  output_snmp: ['egressInterface'],
  in_snmp: ['ingressInterface'],
  out_snmp: ['egressInterface'],
  src_mask: ['sourceIPv4PrefixLength', 'sourceIPv6PrefixLength'],
  dst_mask: ['destinationIPv4PrefixLength', 'destinationIPv6PrefixLength'],
  src_as: ['bgpSourceAsNumber'],
  dst_as: ['bgpDestinationAsNumber'],
  ipv4_next_hop: ['ipNextHopIPv4Address'],
  next_hop: ['ipNextHopIPv4Address', 'ipNextHopIPv6Address'],
  bgp_ipv4_next_hop: ['bgpNextHopIPv4Address'],
  first_switched: ['flowStartMilliseconds', 'flowStartSysUpTime'],
  last_switched: ['flowEndMilliseconds', 'flowEndSysUpTime'],
  flow_start_ms: ['flowStartMilliseconds'],
  flow_end_ms: ['flowEndMilliseconds'],
  flow_start: ['flowStartSeconds'],
  flow_end: ['flowEndSeconds'],
  flow_start_msec: ['flowStartMilliseconds'],
  event_time_msec: ['observationTimeMilliseconds'],
  src_vlan: ['vlanId'],
  dst_vlan: ['postVlanId'],
  vlan_src: ['vlanId'],
  vlan_dst: ['postVlanId'],
  in_src_mac: ['sourceMacAddress'],
  in_dst_mac: ['destinationMacAddress'],
  out_src_mac: ['postSourceMacAddress'],
  out_dst_mac: ['postDestinationMacAddress'],
  icmp_type: ['icmpTypeIPv4'],
  icmp_code: ['icmpCodeIPv4'],
  ip_protocol_version: ['ipVersion'],
  ip_version: ['ipVersion'],
  engine_type: ['engineType'],
  engine_id: ['engineId'],
  sampling_algorithm: ['samplingAlgorithm', 'samplerMode'],
  sampling_interval: ['samplingInterval', 'samplerRandomInterval'],
  flow_sampler_id: ['samplerId'],
  flow_active_timeout: ['flowActiveTimeout'],
  flow_inactive_timeout: ['flowIdleTimeout'],
  forwarding_status: ['forwardingStatus'],
  direction: ['flowDirection'],
  ip_dscp: ['ipDiffServCodePoint'],
  conn_id: ['flowId'],
  fw_event: ['firewallEvent'],
  fw_ext_event: ['firewallEventExtended', 'firewallEventExtended@4294967295'],
  xlate_src_addr_ipv4: ['postNATSourceIPv4Address'],
  xlate_dst_addr_ipv4: ['postNATDestinationIPv4Address'],
  xlate_src_port: ['postNAPTSourceTransportPort'],
  xlate_dst_port: ['postNAPTDestinationTransportPort'],
  in_permanent_bytes: ['octetTotalCount', 'initiatorOctets'],
  username: ['userName', 'userName@4294967295'],
  ingress_acl_id: ['ingressAclId', 'ingressAclId@4294967295'],
  egress_acl_id: ['egressAclId', 'egressAclId@4294967295'],
  application_id: ['applicationId'],
  app_id: ['applicationId', 'paloaltoAppId'],
  application_name: ['applicationName'],
  app_name: ['applicationName'],
  application_description: ['applicationDescription'],
  app_desc: ['applicationDescription'],
  total_bytes_exp: ['exportedOctetTotalCount'],
  total_pkts_exp: ['exportedMessageTotalCount'],
  total_flows_exp: ['exportedFlowRecordTotalCount'],
  flows: ['deltaFlowCount'],
  flow_records: ['exportedFlowRecordTotalCount'],
  src_traffic_index: ['sourceTrafficIndex@4294967294', 'sourceTrafficIndex'],
  dst_traffic_index: ['destinationTrafficIndex'],
  mpls_label_stack_octets: ['mplsTopLabelStackSection'],
  user_id: ['paloaltoUserId', 'userId'],
  fwd_status: ['forwardingStatus'],
  fwd_reason: ['forwardingStatus'],
  scope_system: ['scopeSystem'],
  seq_number: ['sflowSampleSequence', '@sequence'],
  agent_ip: ['exporterIPv4Address', 'exporterIPv6Address'],
  agent_subid: ['sflowSubAgentId'],
  port_name: ['interfaceName'],
  sys_uptime: ['sflowUptime'],
  interface: ['ifIndex'],
  interface_type: ['ifType'],
  speed: ['ifSpeed'],
  promiscuous: ['ifPromiscuousMode'],
  in_unicast_packets_total: ['ifInUcastPkts'],
  in_mcast_packets_total: ['ifInMulticastPkts'],
  in_broadcast_packets_total: ['ifInBroadcastPkts'],
  in_dropped_packets: ['ifInDiscards'],
  in_errors: ['ifInErrors'],
  in_unknown_protocol: ['ifInUnknownProtos'],
  out_unicast_packets_total: ['ifOutUcastPkts'],
  out_mcast_packets_total: ['ifOutMulticastPkts'],
  out_broadcast_packets_total: ['ifOutBroadcastPkts'],
  out_dropped_packets: ['ifOutDiscards'],
  out_errors: ['ifOutErrors'],
  errors_alignment: ['dot3StatsAlignmentErrors'],
  errors_fcs: ['dot3StatsFCSErrors'],
  collision_frames_single: ['dot3StatsSingleCollisionFrames'],
  collision_frames_multi: ['dot3StatsMultipleCollisionFrames'],
  errors_sqetest: ['dot3StatsSQETestErrors'],
  deferred: ['dot3StatsDeferredTransmissions'],
  collisions_late: ['dot3StatsLateCollisions'],
  collisions_excessive: ['dot3StatsExcessiveCollisions'],
  errors_internal_mac_tx: ['dot3StatsInternalMacTransmitErrors'],
  errors_carrier_sense: ['dot3StatsCarrierSenseErrors'],
  errors_frame_too_long: ['dot3StatsFrameTooLongs'],
  errors_internal_mac_rx: ['dot3StatsInternalMacReceiveErrors'],
  errors_symbols: ['dot3StatsSymbolErrors'],
  in_total_packets: ['samplingPopulation'],
  sampling_drops: ['ignoredPacketTotalCount'],
  ttl: ['ipTTL'],
  ipv4_id: ['fragmentIdentification'],
  fragment_offset: ['fragmentOffset'],
  l2_bytes: ['sflowFrameLength'],
  ip_total_len: ['ipTotalLength'],
  ipv4_total_len: ['ipTotalLength'],
  vlan_src_priority: ['dot1qPriority'],
  flow_seq_num: ['@sequence'],
  flowset_id: ['@template'],
  version: ['@version'],
}
/** tshark (Wireshark cflow) field names, without the `cflow.` prefix, that the name rule below does not find. */
const TSHARK: Record<string, string[]> = {
  inputint: ['ingressInterface'],
  outputint: ['egressInterface'],
  protocol: ['protocolIdentifier'],
  octets: ['octetDeltaCount'],
  packets: ['packetDeltaCount'],
  timedelta: ['@durationMs'],
  srcport: ['sourceTransportPort'],
  dstport: ['destinationTransportPort'],
  tos: ['ipClassOfService'],
  srcaddr: ['sourceIPv4Address'],
  dstaddr: ['destinationIPv4Address'],
  srcaddrv6: ['sourceIPv6Address'],
  dstaddrv6: ['destinationIPv6Address'],
  ip_ttl: ['ipTTL'],
  tcpflags: ['tcpControlBits'],
  abstimestart: [
    'flowStartMilliseconds',
    'flowStartSeconds',
    'flowStartMicroseconds',
    'flowStartNanoseconds',
  ],
  abstimeend: ['flowEndMilliseconds', 'flowEndSeconds', 'flowEndMicroseconds', 'flowEndNanoseconds'],
  timestart: ['flowStartSysUpTime', '@startDeltaMs'],
  timeend: ['flowEndSysUpTime', '@endDeltaMs'],
  direction: ['flowDirection'],
  forwarding_status: ['@fwdStatus'],
  forwarding_status_unknown_code: ['@fwdReason'],
  forwarding_status_forward_code: ['@fwdReason'],
  forwarding_status_drop_code: ['@fwdReason'],
  forwarding_status_consume_code: ['@fwdReason'],
  delta_octets_squared: ['octetDeltaSumOfSquares'],
  ipv6_exthdr: ['ipv6ExtensionHeaders'],
  ipv6flowlabel: ['flowLabelIPv6'],
  srcas: ['bgpSourceAsNumber'],
  dstas: ['bgpDestinationAsNumber'],
  ttl_min: ['minimumTTL'],
  ttl_max: ['maximumTTL'],
  bgpnexthopv6: ['bgpNextHopIPv6Address'],
  srcmaskv6: ['sourceIPv6PrefixLength'],
  dstmaskv6: ['destinationIPv6PrefixLength'],
  srcmac: ['sourceMacAddress'],
  dstmac: ['destinationMacAddress', 'postDestinationMacAddress'],
  post_dstmac: ['postDestinationMacAddress'],
  post_srcmac: ['postSourceMacAddress'],
  toplabeladdr: ['mplsTopLabelIPv4Address'],
  toplabeltype: ['mplsTopLabelType'],
  toplabeladdr_v6: ['mplsTopLabelIPv6Address'],
  srcmask: ['sourceIPv4PrefixLength'],
  dstmask: ['destinationIPv4PrefixLength'],
  bgpnexthop: ['bgpNextHopIPv4Address'],
  nexthop: ['ipNextHopIPv4Address'],
  nexthopv6: ['ipNextHopIPv6Address'],
  vlanid: ['vlanId'],
  post_vlanid: ['postVlanId'],
  vrfname: ['VRFname'],
  mpls_vpn_rd: ['mplsVpnRouteDistinguisher'],
  appl_name: ['applicationName'],
  appl_desc: ['applicationDescription'],
  if_descr: ['interfaceDescription'],
  if_name: ['interfaceName'],
  sys_init_time: ['systemInitTimeMilliseconds'],
  od_id: ['observationDomainId'],
  permanent_octets: ['octetTotalCount'],
  permanent_packets: ['packetTotalCount'],
  ip_dscp: ['ipDiffServCodePoint'],
  flows: ['deltaFlowCount'],
  icmp_ipv4_type: ['icmpTypeIPv4'],
  icmp_ipv4_code: ['icmpCodeIPv4'],
  icmp_ipv6_type: ['icmpTypeIPv6'],
  icmp_ipv6_code: ['icmpCodeIPv6'],
  fw_ext_event: ['firewallEventExtended', 'firewallEventExtended@4294967295'],
  ingress_acl_id: ['ingressAclId', 'ingressAclId@4294967295'],
  egress_acl_id: ['egressAclId', 'egressAclId@4294967295'],
  aaa_username: ['userName@4294967295', 'userName'],
  frag_ident: ['fragmentIdentification'],
  tcp_option_map: ['tcpOptions'],
  post_packets: ['postPacketDeltaCount'],
  post_octets: ['postOctetDeltaCount'],
  ipv6_next_hdr: ['nextHeaderIPv6'],
  flowsexp: ['exportedFlowRecordTotalCount'],
  packetsexp: ['exportedMessageTotalCount'],
  octetsexp: ['exportedOctetTotalCount'],
  length_min: ['minimumIpTotalLength'],
  length_max: ['maximumIpTotalLength'],
  post_tos: ['postIpClassOfService'],
  peer_dstas: ['bgpNextAdjacentAsNumber'],
  peer_srcas: ['bgpPrevAdjacentAsNumber'],
  drop_total_packets: ['droppedPacketTotalCount'],
  ignore_packets: ['ignoredPacketTotalCount'],
  notsent_packets: ['notSentPacketTotalCount'],
  exporter_addr: ['exporterIPv4Address'],
  flow_inactive_timeout: ['flowIdleTimeout'],
  tcp_seq_num: ['tcpSequenceNumber'],
  mp_id: ['meteringProcessId'],
  padding: ['paddingOctets'],
  mpls_label: ['@mplsLabel'],
  mpls_exp: ['@mplsExp'],
  mpls_bos: ['@mplsBos'],
  'appl_id.classification_engine_id': ['@applEngine'],
  'appl_id.selector_id': ['@applSelector'],
  sampling_interval: ['samplingInterval'],
  sampling_algorithm: ['samplingAlgorithm'],
  ip_version: ['ipVersion'],
  template_id: ['templateId'],
  flow_end_reason: ['flowEndReason'],
  scope_system: ['scopeSystem'],
}
/** tshark keys that are containers, lengths, or the packets it decodes inside a dataLinkFrameSection. */
const TSHARK_SKIP =
  /^(eth|ip|ipv6|udp|tcp|icmp|icmpv6|vlan|data|_ws|mpls|arp)\.|^cflow\.(tcpflags\.|string_len_|enterprise_private_entry|unknown_field_type|mpls_label_length|template_frame|flow_exporter)|_tree$|^cflow\.pie\.[a-z]+$/

/** Name comparison for tshark: lowercase letters and digits only, without a `@pen` qualifier. */
const canon = (n: string): string =>
  n
    .replace(/@\d+$/, '')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')

/** Golden keys that describe the golden tool or the synthetic transport, not the export. */
const IGNORED = new Set(['@timestamp', '@version', 'source', 'host', 'type'])

interface Comparable {
  readonly rec: CollectedRecord
  /** name → normalised values; also '<pen>.<id>' and 'id:<id>'. */
  readonly byName: Map<string, string[]>
  /** canon(name) → normalised values (tshark). */
  readonly byCanon: Map<string, string[]>
  readonly all: Set<string>
}

function comparable(rec: CollectedRecord): Comparable {
  const byName = new Map<string, string[]>()
  const all = new Set<string>()
  const put = (k: string, v: string): void => {
    const l = byName.get(k)
    if (l === undefined) byName.set(k, [v])
    else l.push(v)
    all.add(v)
  }
  for (const f of rec.fields)
    for (const v of fieldForms(f)) {
      put(f.name, v)
      put(`${f.pen}.${f.id}`, v)
      put(`id:${f.id}`, v)
    }
  put('@version', String(rec.version))
  put('@sequence', String(rec.sequence))
  put('@template', String(rec.templateId))
  // Derived forms tshark shows: duration, uptime-relative times in ms, MPLS label parts, application id parts,
  // forwarding status parts.
  const num = (id: number): number | undefined => {
    const f = rec.fields.find((x) => x.pen === 0 && x.id === id)
    if (f === undefined) return undefined
    const v = f.value
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined
  }
  const ms = (id: number, scale: number): number | undefined => {
    const v = num(id)
    return v === undefined ? undefined : v * scale
  }
  const start = ms(152, 1) ?? ms(150, 1000) ?? ms(22, 1) ?? nsToMs(num(154), 1e6) ?? nsToMs(num(156), 1e6)
  const end = ms(153, 1) ?? ms(151, 1000) ?? ms(21, 1) ?? nsToMs(num(155), 1e6) ?? nsToMs(num(157), 1e6)
  if (start !== undefined && end !== undefined) put('@durationMs', String(Math.round(end - start)))
  const d158 = num(158)
  const d159 = num(159)
  if (d158 !== undefined) put('@startDeltaMs', String(Math.round(d158 / 1000)))
  if (d159 !== undefined) put('@endDeltaMs', String(Math.round(d159 / 1000)))
  for (const f of rec.fields) {
    if (
      f.pen === 0 &&
      ((f.id >= 70 && f.id <= 79) || f.id === 201) &&
      f.value instanceof Uint8Array &&
      f.value.byteLength === 3
    ) {
      const x = (f.value[0]! << 16) | (f.value[1]! << 8) | f.value[2]!
      put('@mplsLabel', String(x >>> 4))
      put('@mplsExp', String((x >>> 1) & 7))
      put('@mplsBos', String(x & 1))
    }
    if (f.pen === 0 && f.id === 95 && f.value instanceof Uint8Array && f.value.byteLength >= 1) {
      put('@applEngine', String(f.value[0]))
      put('@applSelector', Buffer.from(f.value.subarray(1)).toString('hex'))
    }
    if (f.pen === 0 && f.id === 89 && typeof f.value === 'number') {
      put('@fwdStatus', String(f.value >>> 6))
      put('@fwdReason', String(f.value & 63))
    }
  }
  const byCanon = new Map<string, string[]>()
  for (const [k, v] of byName) if (!k.includes('.') && !k.startsWith('id:')) byCanon.set(canon(k), v)
  return { rec, byName, byCanon, all }
}

function nsToMs(v: number | undefined, div: number): number | undefined {
  return v === undefined ? undefined : v / div
}

/** The normalised forms one of our fields can be compared in. */
function fieldForms(f: DecodedField): string[] {
  const j = valueToJson(f.type, f.value)
  if (f.value instanceof Uint8Array) {
    const h = typeof j === 'string' ? j : ''
    const forms = [h]
    if (f.value.byteLength > 0 && f.value.byteLength <= 16) forms.push(BigInt('0x' + h).toString())
    // RFC 6759 applicationId as Logstash prints it: "<engine>..<selector>".
    if (f.value.byteLength >= 2) forms.push(`${f.value[0]}..${BigInt('0x' + h.slice(2)).toString()}`)
    return forms
  }
  const n = norm(j, f.name)
  if (typeof j === 'string' && ISO.test(j)) return [n, String(Math.floor(Number(n) / 1000))]
  return [n]
}

interface Golden {
  readonly fields: ReadonlyArray<readonly [string, unknown]>
}

type Verdict = 'named' | 'value' | 'quirk' | 'unverifiable' | 'no'

/** Logstash prefixes vendor element names with the vendor ("netscalerHttpReqXForwardedFor"). */
function namesFor(key: string): string[] {
  const a = ALIASES[key]
  if (a !== undefined) return a
  const m = /^(netscaler)([A-Z].*)$/.exec(key)
  return m === null ? [key] : [key, m[2]!.charAt(0).toLowerCase() + m[2]!.slice(1)]
}

function judge(c: Comparable, key: string, value: unknown): Verdict {
  if (key.startsWith('cflow.')) return judgeTshark(c, key.slice(6), value)
  const names = namesFor(key)
  let present = false
  for (const n of names) {
    const ours = c.byName.get(n)
    if (ours === undefined) continue
    present = true
    if (ours.includes(norm(value, n))) return 'named'
    // A byte array also compares as the number it encodes (reduced-size or unsigned256 elements).
    if (Array.isArray(value) && value.length > 0 && /^[0-9a-f]+$/.test(norm(value)))
      if (ours.includes(BigInt('0x' + norm(value)).toString())) return 'named'
    // Logstash's NetFlow v9/v5 first/last_switched are one second late (its uptime arithmetic); a known
    // quirk of the golden, counted separately.
    if ((key === 'first_switched' || key === 'last_switched') && typeof value === 'string' && ISO.test(value))
      if (ours.includes(String(Date.parse(value) - 1000))) return 'quirk'
  }
  if (typeof value === 'string' && value.includes('#{')) return 'unverifiable' // an unexpanded Ruby template
  // netgauze {"Unknown": {id, value}} for a vendor element it does not know
  if (typeof value === 'object' && value !== null && 'Unknown' in value) {
    const u = (value as { Unknown: { id?: number } }).Unknown
    if (typeof u.id === 'number' && c.byName.get(`id:${u.id}`)?.includes(norm(value))) return 'named'
  }
  if (!present && (c.all.has(norm(value, names[0])) || c.all.has(norm(value)))) return 'value'
  return 'no'
}

const TSHARK_TIME = /^([A-Z][a-z]{2}) +(\d+), (\d{4}) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? UTC$/
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** A tshark value: "Oct  9, 2015 09:47:49.599000000 UTC" → epoch ms; "11.264000000" seconds → ms for times. */
function tsharkNorm(key: string, v: unknown, ours: string): string {
  if (typeof v === 'string') {
    const m = TSHARK_TIME.exec(v)
    if (m !== null) {
      const frac = (m[7] ?? '').padEnd(3, '0').slice(0, 3)
      return String(
        Date.UTC(
          Number(m[3]),
          MONTHS.indexOf(m[1] ?? ''),
          Number(m[2]),
          Number(m[4]),
          Number(m[5]),
          Number(m[6]),
        ) + Number(frac),
      )
    }
    if (/^(timedelta|timestart|timeend)$/.test(key) && /^-?\d+\.\d+$/.test(v))
      return String(Math.round(Number(v) * 1000))
    if (/^[0-9a-f]{2}(:[0-9a-f]{2})+$/i.test(v)) return v.toLowerCase().replaceAll(':', '')
  }
  return norm(v, ours)
}

function judgeTshark(c: Comparable, key: string, value: unknown): Verdict {
  const names = TSHARK[key]
  const list =
    names !== undefined
      ? names.map((n) => c.byName.get(n))
      : [c.byCanon.get(canon(key.replace(/^pie\.[a-z]+\./, '')))]
  const want = Array.isArray(value) ? value : [value]
  let present = false
  for (const [i, ours0] of list.entries()) {
    if (ours0 === undefined) continue
    present = true
    const n = names?.[i] ?? ''
    // tshark shows a biflow's forward and reverse element as one array (RFC 5103).
    const rev = n !== '' ? c.byName.get('reverse' + n.charAt(0).toUpperCase() + n.slice(1)) : undefined
    const ours = rev === undefined ? ours0 : [...ours0, ...rev]
    const ok = (w: unknown): boolean => {
      const t = tsharkNorm(key, w, n)
      if (ours.includes(t)) return true
      // Colon hex of an integer element (tshark shows some reduced-size or vendor integers as bytes).
      return (
        /^[0-9a-f]+$/.test(t) &&
        typeof w === 'string' &&
        w.includes(':') &&
        ours.includes(BigInt('0x' + t).toString())
      )
    }
    if (want.every(ok)) return 'named'
  }
  if (!present && want.every((w) => c.all.has(tsharkNorm(key, w, '')))) return 'value'
  return 'no'
}

// ---------------------------------------------------------------------------------------------------------
// Golden readers

function netgauze(path: string): Golden[] {
  const out: Golden[] = []
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue
    const pkt = JSON.parse(line) as Record<string, { sets?: Array<Record<string, unknown>> }>
    for (const body of Object.values(pkt))
      for (const s of body.sets ?? []) {
        const d = s['Data'] as
          | {
              records: Array<{
                scope_fields: Array<Record<string, unknown>>
                fields: Array<Record<string, unknown>>
              }>
            }
          | undefined
        if (d === undefined) continue
        for (const r of d.records)
          out.push({ fields: [...r.scope_fields, ...r.fields].flatMap((f) => Object.entries(f)) })
      }
  }
  return out
}

interface LogstashGolden {
  expected_event_count?: number
  events: Array<{ decode_index: number | null; event: Record<string, unknown> }>
  field_checks: Array<{ decode_index: number; field: string; value: unknown }>
}

function logstash(path: string): { records: Golden[]; expectedCount: number | undefined } {
  const g = JSON.parse(readFileSync(path, 'utf8')) as LogstashGolden
  const byIndex = new Map<number, Map<string, unknown>>()
  const standalone: Array<Map<string, unknown>> = []
  for (const e of g.events) {
    const nf = e.event['netflow']
    if (typeof nf !== 'object' || nf === null) continue
    const m = new Map(Object.entries(nf as Record<string, unknown>))
    if (e.decode_index === null) standalone.push(m)
    else byIndex.set(e.decode_index, m)
  }
  for (const c of g.field_checks) {
    const key = /\[netflow\]\[([^\]]+)\]/.exec(c.field)?.[1]
    if (key === undefined) continue
    let m = byIndex.get(c.decode_index)
    if (m === undefined) byIndex.set(c.decode_index, (m = new Map<string, unknown>()))
    m.set(key, c.value)
  }
  const records = [...byIndex.values(), ...standalone].map((m) => ({ fields: [...m.entries()] }))
  return { records, expectedCount: g.expected_event_count }
}

/** tshark reference: every "Flow N" of the cflow dissector (NetFlow v5/v9, IPFIX), flattened. */
function tshark(path: string): Golden[] {
  const doc = JSON.parse(gunzipSync(readFileSync(path)).toString('utf8')) as { packets?: unknown[] }
  const out: Golden[] = []
  const flat = (o: Record<string, unknown>, acc: Array<[string, unknown]>): void => {
    for (const [k, v] of Object.entries(o)) {
      if (TSHARK_SKIP.test(k)) continue
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) flat(v as Record<string, unknown>, acc)
      else if (k === 'cflow.padding' && Array.isArray(v))
        continue // NetFlow v5 pad octets: not data
      else if (k.startsWith('cflow.') && !(Array.isArray(v) && v.some((x) => typeof x !== 'string')))
        acc.push([k, v])
    }
  }
  const walk = (o: unknown): void => {
    if (Array.isArray(o)) for (const x of o) walk(x)
    else if (typeof o === 'object' && o !== null)
      for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
        if (/^(Flow \d+|pdu \d+\/\d+)$/.test(k) && typeof v === 'object' && v !== null) {
          const acc: Array<[string, unknown]> = []
          flat(v as Record<string, unknown>, acc)
          out.push({ fields: acc })
        } else if (k !== 'sflow') walk(v)
      }
  }
  walk(doc.packets ?? [])
  return out
}

function telegraf(path: string): Golden[] {
  const out: Golden[] = []
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(\S+?) (.*?)( \d+)?$/.exec(line.trim())
    if (m === null) continue
    const fields: Array<[string, unknown]> = []
    for (const kv of (m[2] ?? '').matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|[^,]+)/g)) {
      const raw = kv[2] ?? ''
      const v = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw.replace(/[ui]$/, '')
      fields.push([kv[1] ?? '', v])
    }
    out.push({ fields })
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------

interface CaseResult {
  group: string
  vendor: string
  records: number
  goldenRecords: number
  named: number
  value: number
  /** Golden fields that differ by a documented quirk of the golden tool (not counted as agreement). */
  quirk: number
  /** Golden fields that hold no value to compare (e.g. an unexpanded template). */
  unverifiable: number
  total: number
  expectedCount?: number
  disagreements: string[]
}

/**
 * Matches each golden record to the decoded record that agrees on most fields (each used once if possible).
 * With `window`, candidates are limited to a window after the last match (tshark decodes in the same order).
 */
function score(
  group: string,
  vendor: string,
  decoded: CollectedRecord[],
  goldens: Golden[],
  window?: number,
): CaseResult {
  const res: CaseResult = {
    group,
    vendor,
    records: decoded.length,
    goldenRecords: goldens.length,
    named: 0,
    value: 0,
    quirk: 0,
    unverifiable: 0,
    total: 0,
    disagreements: [],
  }
  const comps = decoded.map(comparable)
  const used = new Set<number>()
  let next = 0
  for (const g of goldens) {
    const fields = g.fields.filter(([k]) => !IGNORED.has(k))
    let best = -1
    let bestScore = -1
    let bestVerdicts: Verdict[] = []
    const lo = window === undefined ? 0 : Math.max(0, next - 8)
    const hi = window === undefined ? comps.length : Math.min(comps.length, next + window)
    for (let i = lo; i < hi; i++) {
      const verdicts = fields.map(([k, v]) => judge(comps[i]!, k, v))
      const s =
        verdicts.reduce((n, v) => n + (v === 'named' ? 2 : v === 'value' ? 1 : 0), 0) -
        (used.has(i) ? 0.5 : 0)
      if (s > bestScore) {
        best = i
        bestScore = s
        bestVerdicts = verdicts
      }
    }
    if (best >= 0) {
      used.add(best)
      next = Math.max(next, best + 1)
    }
    res.total += fields.length
    fields.forEach(([k, v], i) => {
      const verdict = best < 0 ? 'no' : bestVerdicts[i]
      if (verdict === 'named') res.named++
      else if (verdict === 'value') res.value++
      else if (verdict === 'quirk') res.quirk++
      else if (verdict === 'unverifiable') res.unverifiable++
      else {
        const ours =
          best < 0
            ? undefined
            : namesFor(k)
                .map((n) => comps[best]!.byName.get(n))
                .find((x) => x)
        res.disagreements.push(
          `${k}: golden ${JSON.stringify(v)?.slice(0, 60)} ours ${JSON.stringify(ours)?.slice(0, 60)}`,
        )
      }
    })
  }
  return res
}

interface Row {
  file: string
  vendor: string
  role: string
  group: string
  order: number
  golden: string
  notes: string
}

function manifest(): Row[] {
  return readFileSync(join(EXPORTS, 'MANIFEST.tsv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t'))
    .map((c) => ({
      file: c[0] ?? '',
      vendor: c[5] ?? '',
      role: c[7] ?? '',
      group: c[8] ?? '',
      order: Number(c[9] ?? 0),
      golden: c[11] ?? '',
      notes: c[14] ?? '',
    }))
}

async function decodeCase(
  files: string[],
  perFile = false,
): Promise<{ records: CollectedRecord[]; col: FlowCollector }> {
  const col = new FlowCollector()
  const records: CollectedRecord[] = []
  const reader = new OfflineReader(col, (o) => records.push(...o.records), { sessionPerFile: perFile })
  await reader.read(files)
  return { records, col }
}

type Sum = { named: number; value: number; quirk: number; unverifiable: number; total: number }

function agreementTable(results: readonly CaseResult[], title: string): { lines: string[]; any: number } {
  const add = (a: Sum, r: Sum): void => {
    a.named += r.named
    a.value += r.value
    a.quirk += r.quirk
    a.unverifiable += r.unverifiable
    a.total += r.total
  }
  const byVendor = new Map<string, Sum>()
  const all: Sum = { named: 0, value: 0, quirk: 0, unverifiable: 0, total: 0 }
  for (const r of results) {
    const v = byVendor.get(r.vendor) ?? { named: 0, value: 0, quirk: 0, unverifiable: 0, total: 0 }
    add(v, r)
    add(all, r)
    byVendor.set(r.vendor, v)
  }
  const row = (name: string, v: Sum): string =>
    `  ${name.slice(0, 58).padEnd(58)} ${String(v.total).padStart(6)} ${pct(v.named, v.total)} ${pct(v.named + v.value, v.total)} ${pct(v.named + v.value, v.total - v.quirk - v.unverifiable)}`
  const lines = [
    '',
    title,
    `  ${'vendor'.padEnd(58)} ${'fields'.padStart(6)} ${'named'.padStart(7)} ${'any'.padStart(7)} ${'net'.padStart(7)}`,
  ]
  for (const [vendor, v] of [...byVendor].sort((a, b) => a[0].localeCompare(b[0]))) lines.push(row(vendor, v))
  lines.push(row('ALL', all))
  return { lines, any: all.total === 0 ? 1 : (all.named + all.value) / all.total }
}

const pct = (a: number, b: number): string =>
  b === 0 ? '   -  ' : ((100 * a) / b).toFixed(2).padStart(6) + '%'

describe.skipIf(!HAVE)('flow-export corpus (../shared/exports)', () => {
  it('decodes every case without an exception and agrees with the golden decodes', async () => {
    const rows = manifest()
    const groups = new Map<string, Row[]>()
    for (const r of rows) {
      const l = groups.get(r.group) ?? []
      l.push(r)
      groups.set(r.group, l)
    }
    const results: CaseResult[] = []
    const refResults: CaseResult[] = []
    const countChecks: string[] = []
    for (const [group, list] of groups) {
      const caps = list.filter((r) => r.role === 'capture').sort((a, b) => a.order - b.order)
      const goldensRows = list.filter((r) => r.role === 'golden')
      const vendor = caps[0]?.vendor ?? list[0]?.vendor ?? group
      // The MANIFEST says when a case's files come from different exporters.
      const perFile = caps.some((r) => r.notes.includes('separate transport session'))
      const { records, col } = await decodeCase(
        caps.map((r) => join(EXPORTS, r.file)),
        perFile,
      )
      expect(col.allCounters()['exception'], group).toBeUndefined()
      for (const g of goldensRows) {
        const path = join(EXPORTS, g.file)
        if (g.file.endsWith('.golden-netgauze.jsonl'))
          results.push(score(group, vendor, records, netgauze(path)))
        else if (g.file.endsWith('.golden-logstash.json')) {
          // Logstash feeds its own file order (it may repeat files); use that order for its golden.
          const lg = JSON.parse(readFileSync(path, 'utf8')) as { input_files_in_order?: string[] }
          const dir = join(EXPORTS, g.file, '..')
          const own = lg.input_files_in_order?.map((f) => join(dir, f))
          const dec = own !== undefined ? (await decodeCase(own)).records : records
          const { records: gold, expectedCount } = logstash(path)
          const r = score(group, vendor, dec, gold)
          if (expectedCount !== undefined) {
            r.expectedCount = expectedCount
            countChecks.push(`${group}: logstash expects ${expectedCount} events, we decode ${dec.length}`)
          }
          results.push(r)
        } else if (/\.golden-telegraf(-nopenmap)?\.influx\.txt$/.test(g.file) && !g.file.includes('nopenmap'))
          results.push(score(group, vendor, records, telegraf(path)))
      }
      for (const g of list.filter((r) => r.role === 'reference' && r.file.endsWith('.ref-tshark.json.gz')))
        refResults.push(score(group, vendor, records, tshark(join(EXPORTS, g.file)), 64))
    }
    const goldenTable = agreementTable(
      results,
      'golden agreement per vendor (NetGauze, Logstash, Telegraf): named = same element and value; any = named or\nvalue-only; net = any, leaving out fields that differ by a documented quirk of the golden tool or hold no value',
    )
    const any = goldenTable.any
    const refTable = agreementTable(
      refResults,
      'reference agreement per vendor (tshark 4.0.17 cflow decode, not an upstream golden; sFlow not compared)',
    )
    const lines = [...goldenTable.lines]
    lines.push(
      `  threshold (issue 6): ${THRESHOLD * 100}% of golden fields (any) — ${any >= THRESHOLD ? 'REACHED' : 'NOT REACHED (shortfall)'}`,
    )
    lines.push(...refTable.lines)
    lines.push(
      '',
      'event counts:',
      ...countChecks.map((c) => '  ' + c),
      '',
      'golden disagreements (first 8 per case):',
    )
    for (const r of results) for (const d of r.disagreements.slice(0, 8)) lines.push(`  ${r.group}: ${d}`)
    const byKey = new Map<string, number>()
    for (const r of refResults)
      for (const d of r.disagreements) {
        const k = `${r.group} ${d.slice(0, d.indexOf(':'))}`
        byKey.set(k, (byKey.get(k) ?? 0) + 1)
      }
    lines.push('', 'tshark disagreements by case and field:')
    for (const [k, n] of [...byKey].sort((a, b) => b[1] - a[1])) lines.push(`  ${String(n).padStart(5)} ${k}`)
    lines.push('', 'tshark disagreements (first 4 per case):')
    for (const r of refResults) for (const d of r.disagreements.slice(0, 4)) lines.push(`  ${r.group}: ${d}`)
    console.log(lines.join('\n'))
    expect(refTable.any).toBeGreaterThanOrEqual(REF_FLOOR)
    expect(any).toBeGreaterThanOrEqual(any >= THRESHOLD ? THRESHOLD : FLOOR)
  }, 900_000)

  it('malformed cases give counted errors and keep the well-formed records', async () => {
    const bad = await decodeCase([join(EXPORTS, 'ipfix/ipfixcol__bad-length-in-set/bad-length-in-set.ipfix')])
    expect(bad.col.allCounters()['malformed_messages']).toBeGreaterThan(0)
    const v5 = await decodeCase([
      join(EXPORTS, 'netflow5/logstash__v5-invalid01/netflow5_test_invalid01.dat'),
    ])
    expect(v5.col.allCounters()['malformed_messages']).toBe(1)
    // A bad datagram between two good ones: the good ones decode unchanged.
    const good = join(EXPORTS, 'netflow5/logstash__softflowd-v5/netflow5.dat')
    const alone = await decodeCase([good])
    const around = await decodeCase([
      good,
      join(EXPORTS, 'netflow5/logstash__v5-invalid01/netflow5_test_invalid01.dat'),
      good,
    ])
    expect(around.records.length).toBe(2 * alone.records.length)
    const noTpl = await decodeCase([
      join(EXPORTS, 'ipfix/ipfixcol__only-data-no-templates/only-data-no-templates.ipfix'),
    ])
    expect(noTpl.col.pending.size).toBeGreaterThan(0) // kept, waiting for a template that never comes
  }, 900_000)
})
