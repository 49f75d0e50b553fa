// sFlow version 5 (sflow.org sflow_version_5.txt) datagram, sample and interface-counter fields that have no
// IPFIX Information Element, kept under InMon's PEN 4300 so sFlow-derived records use the element table like
// any other. Ids: 1..9 datagram/sample header fields; 100 + n the n-th field of counter record 0:1 (generic
// interface counters); 200 + n the n-th field of counter record 0:2 (Ethernet interface counters). By hand.
import type { EnterpriseTable } from './types.js'

export const SFLOW_PEN = 4300

export const SFLOW_ELEMENTS: readonly EnterpriseTable[] = [
  {
    pen: SFLOW_PEN,
    rows: [
      [1, 'sflowSubAgentId', 'unsigned32'],
      [2, 'sflowDatagramSequence', 'unsigned32'],
      [3, 'sflowUptime', 'unsigned32', '', 'milliseconds'],
      [4, 'sflowSampleSequence', 'unsigned32'],
      [5, 'sflowSourceIdType', 'unsigned8'],
      [6, 'sflowSourceIdIndex', 'unsigned32'],
      [7, 'sflowHeaderProtocol', 'unsigned32'],
      [8, 'sflowFrameLength', 'unsigned32', '', 'octets'],
      [9, 'sflowStrippedOctets', 'unsigned32', '', 'octets'],
      [101, 'ifIndex', 'unsigned32'],
      [102, 'ifType', 'unsigned32'],
      [103, 'ifSpeed', 'unsigned64'],
      [104, 'ifDirection', 'unsigned32'],
      [105, 'ifStatus', 'unsigned32'],
      [106, 'ifInOctets', 'unsigned64'],
      [107, 'ifInUcastPkts', 'unsigned32'],
      [108, 'ifInMulticastPkts', 'unsigned32'],
      [109, 'ifInBroadcastPkts', 'unsigned32'],
      [110, 'ifInDiscards', 'unsigned32'],
      [111, 'ifInErrors', 'unsigned32'],
      [112, 'ifInUnknownProtos', 'unsigned32'],
      [113, 'ifOutOctets', 'unsigned64'],
      [114, 'ifOutUcastPkts', 'unsigned32'],
      [115, 'ifOutMulticastPkts', 'unsigned32'],
      [116, 'ifOutBroadcastPkts', 'unsigned32'],
      [117, 'ifOutDiscards', 'unsigned32'],
      [118, 'ifOutErrors', 'unsigned32'],
      [119, 'ifPromiscuousMode', 'unsigned32'],
      [201, 'dot3StatsAlignmentErrors', 'unsigned32'],
      [202, 'dot3StatsFCSErrors', 'unsigned32'],
      [203, 'dot3StatsSingleCollisionFrames', 'unsigned32'],
      [204, 'dot3StatsMultipleCollisionFrames', 'unsigned32'],
      [205, 'dot3StatsSQETestErrors', 'unsigned32'],
      [206, 'dot3StatsDeferredTransmissions', 'unsigned32'],
      [207, 'dot3StatsLateCollisions', 'unsigned32'],
      [208, 'dot3StatsExcessiveCollisions', 'unsigned32'],
      [209, 'dot3StatsInternalMacTransmitErrors', 'unsigned32'],
      [210, 'dot3StatsCarrierSenseErrors', 'unsigned32'],
      [211, 'dot3StatsFrameTooLongs', 'unsigned32'],
      [212, 'dot3StatsInternalMacReceiveErrors', 'unsigned32'],
      [213, 'dot3StatsSymbolErrors', 'unsigned32'],
    ],
  },
]
