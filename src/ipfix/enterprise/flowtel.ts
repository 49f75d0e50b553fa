/**
 * Flowtel's own enterprise Information Elements (RFC 7012 §4 "enterprise-specific"), for measurements that
 * neither IANA nor Flowmon (PEN 39499, ./flowmon.ts) defines: the handshake RTT split, continuous RTT,
 * per-direction retransmission / out-of-order / jitter / delay, SYN options and ARP fields.
 *
 * FLOWTEL_PEN is a PLACEHOLDER: 32473 is the PEN RFC 5612 reserves for documentation and examples. Replace it
 * once Flowtel has its own Private Enterprise Number from IANA; the ids below stay. The exporter announces
 * every element of this table that a template uses in RFC 5610 options records (name, type, semantics,
 * units, description), so a collector can decode them without configuration.
 */
import { registerElements, type ElementDef, type IeDataType } from '../elements.js'
import { registerFlowmonElements } from './flowmon.js'

/** Placeholder (RFC 5612 documentation PEN) until one is registered for Flowtel. */
export const FLOWTEL_PEN = 32473

type Semantics = 'quantity' | 'deltaCounter' | 'identifier' | 'flags' | 'default'
type Row = readonly [
  id: number,
  name: string,
  type: IeDataType,
  semantics: Semantics,
  units: string,
  description: string,
]

const US = 'microseconds'

export const FLOWTEL_ELEMENTS: readonly Row[] = [
  // npm: handshake RTT split (as seen from the probe)
  [1, 'flowtelTcpRttServer', 'unsigned32', 'quantity', US, 'TCP handshake RTT, server part: SYN to SYN/ACK'],
  [2, 'flowtelTcpRttClient', 'unsigned32', 'quantity', US, 'TCP handshake RTT, client part: SYN/ACK to ACK'],
  // npm: continuous RTT from data/ACK pairs; "server" = data from the initiator acked by the responder
  [
    3,
    'flowtelTcpRttServerMin',
    'unsigned32',
    'quantity',
    US,
    'Min RTT probe-server-probe from initiator data and its ACK',
  ],
  [
    4,
    'flowtelTcpRttServerMean',
    'unsigned32',
    'quantity',
    US,
    'Mean RTT probe-server-probe from initiator data and its ACK',
  ],
  [
    5,
    'flowtelTcpRttServerMax',
    'unsigned32',
    'quantity',
    US,
    'Max RTT probe-server-probe from initiator data and its ACK',
  ],
  [6, 'flowtelTcpRttServerCount', 'unsigned32', 'deltaCounter', 'none', 'RTT samples probe-server-probe'],
  [
    7,
    'flowtelTcpRttClientMin',
    'unsigned32',
    'quantity',
    US,
    'Min RTT probe-client-probe from responder data and its ACK',
  ],
  [
    8,
    'flowtelTcpRttClientMean',
    'unsigned32',
    'quantity',
    US,
    'Mean RTT probe-client-probe from responder data and its ACK',
  ],
  [
    9,
    'flowtelTcpRttClientMax',
    'unsigned32',
    'quantity',
    US,
    'Max RTT probe-client-probe from responder data and its ACK',
  ],
  [10, 'flowtelTcpRttClientCount', 'unsigned32', 'deltaCounter', 'none', 'RTT samples probe-client-probe'],
  // npm: server response time (mean is Flowmon npmServerResponseTime)
  [
    11,
    'flowtelSrtMin',
    'unsigned32',
    'quantity',
    US,
    'Min server response time: end of request to first response byte',
  ],
  [
    12,
    'flowtelSrtMax',
    'unsigned32',
    'quantity',
    US,
    'Max server response time: end of request to first response byte',
  ],
  [13, 'flowtelSrtCount', 'unsigned32', 'deltaCounter', 'none', 'Request/response exchanges measured'],
  // npm: retransmissions and out-of-order per direction (Wireshark tcp.analysis semantics)
  [
    14,
    'flowtelRetransPackets',
    'unsigned32',
    'deltaCounter',
    'packets',
    'Retransmitted segments, initiator to responder',
  ],
  [
    15,
    'flowtelRetransOctets',
    'unsigned64',
    'deltaCounter',
    'octets',
    'TCP payload octets retransmitted, initiator to responder',
  ],
  [
    16,
    'flowtelReverseRetransPackets',
    'unsigned32',
    'deltaCounter',
    'packets',
    'Retransmitted segments, responder to initiator',
  ],
  [
    17,
    'flowtelReverseRetransOctets',
    'unsigned64',
    'deltaCounter',
    'octets',
    'TCP payload octets retransmitted, responder to initiator',
  ],
  [
    18,
    'flowtelOutOfOrderPackets',
    'unsigned32',
    'deltaCounter',
    'packets',
    'Out-of-order segments, initiator to responder',
  ],
  [
    19,
    'flowtelOutOfOrderOctets',
    'unsigned64',
    'deltaCounter',
    'octets',
    'TCP payload octets out of order, initiator to responder',
  ],
  [
    20,
    'flowtelReverseOutOfOrderPackets',
    'unsigned32',
    'deltaCounter',
    'packets',
    'Out-of-order segments, responder to initiator',
  ],
  [
    21,
    'flowtelReverseOutOfOrderOctets',
    'unsigned64',
    'deltaCounter',
    'octets',
    'TCP payload octets out of order, responder to initiator',
  ],
  // npm: jitter and inter-arrival delay of the responder's packets (the initiator's are Flowmon npmJitter*/npmDelay*)
  [
    22,
    'flowtelReverseJitterDev',
    'unsigned32',
    'quantity',
    US,
    'Std deviation of |D|, responder to initiator',
  ],
  [
    23,
    'flowtelReverseJitterAvg',
    'unsigned32',
    'quantity',
    US,
    'RFC 3550 interarrival jitter J, responder to initiator',
  ],
  [
    24,
    'flowtelReverseJitterMin',
    'unsigned32',
    'quantity',
    US,
    'Min |D| (inter-arrival difference), responder to initiator',
  ],
  [
    25,
    'flowtelReverseJitterMax',
    'unsigned32',
    'quantity',
    US,
    'Max |D| (inter-arrival difference), responder to initiator',
  ],
  [
    26,
    'flowtelReverseDelayDev',
    'unsigned32',
    'quantity',
    US,
    'Std deviation of inter-arrival time, responder to initiator',
  ],
  [
    27,
    'flowtelReverseDelayAvg',
    'unsigned32',
    'quantity',
    US,
    'Mean inter-arrival time, responder to initiator',
  ],
  [
    28,
    'flowtelReverseDelayMin',
    'unsigned32',
    'quantity',
    US,
    'Min inter-arrival time, responder to initiator',
  ],
  [
    29,
    'flowtelReverseDelayMax',
    'unsigned32',
    'quantity',
    US,
    'Max inter-arrival time, responder to initiator',
  ],
  // tcpext: SYN and SYN/ACK facts
  [30, 'flowtelTcpMss', 'unsigned16', 'quantity', 'octets', 'MSS option of the SYN (0: absent)'],
  [31, 'flowtelReverseTcpMss', 'unsigned16', 'quantity', 'octets', 'MSS option of the SYN/ACK (0: absent)'],
  [
    32,
    'flowtelTcpWindowScale',
    'unsigned8',
    'quantity',
    'none',
    'Window scale shift of the SYN (255: absent)',
  ],
  [
    33,
    'flowtelReverseTcpWindowScale',
    'unsigned8',
    'quantity',
    'none',
    'Window scale shift of the SYN/ACK (255: absent)',
  ],
  [34, 'flowtelTcpSackPermitted', 'boolean', 'default', 'none', 'SACK-permitted option in the SYN'],
  [
    35,
    'flowtelReverseTcpSackPermitted',
    'boolean',
    'default',
    'none',
    'SACK-permitted option in the SYN/ACK',
  ],
  [
    36,
    'flowtelTcpInitialWindow',
    'unsigned16',
    'quantity',
    'octets',
    'Window field of the SYN (unscaled; 0: no SYN seen)',
  ],
  [
    37,
    'flowtelReverseTcpInitialWindow',
    'unsigned16',
    'quantity',
    'octets',
    'Window field of the SYN/ACK (unscaled; 0: none seen)',
  ],
  [
    38,
    'flowtelTcpSynAckTtl',
    'unsigned8',
    'quantity',
    'hops',
    'IP TTL / hop limit of the SYN/ACK (0: none seen)',
  ],
  // arp: one record per ARP packet
  [40, 'flowtelArpSenderMac', 'macAddress', 'default', 'none', 'ARP sender hardware address'],
  [41, 'flowtelArpSenderIPv4', 'ipv4Address', 'default', 'none', 'ARP sender protocol address'],
  [42, 'flowtelArpTargetMac', 'macAddress', 'default', 'none', 'ARP target hardware address'],
  [43, 'flowtelArpTargetIPv4', 'ipv4Address', 'default', 'none', 'ARP target protocol address'],
  // dns, http: transactions (one record per transaction, see src/flow/fields/l7-transactions.ts)
  [
    50,
    'flowtelDnsTransactions',
    'unsigned32',
    'deltaCounter',
    'none',
    'DNS transaction records of this flow',
  ],
  [
    51,
    'flowtelHttpTransactions',
    'unsigned32',
    'deltaCounter',
    'none',
    'HTTP transaction records of this flow',
  ],
  [52, 'flowtelDnsResponseTime', 'unsigned32', 'quantity', US, 'DNS query to response time (0: none)'],
  [53, 'flowtelDnsAnswers', 'string', 'default', 'none', 'DNS answer data as text, comma separated'],
  [54, 'flowtelDnsAnswerTtls', 'string', 'default', 'none', 'DNS answer TTLs (seconds), comma separated'],
  [55, 'flowtelHttpServer', 'string', 'default', 'none', 'HTTP Server response header'],
  [56, 'flowtelHttpLocation', 'string', 'default', 'none', 'HTTP Location response header'],
  [57, 'flowtelHttpXForwardedFor', 'string', 'default', 'none', 'HTTP X-Forwarded-For request header'],
  [
    58,
    'flowtelHttpContentLength',
    'unsigned64',
    'quantity',
    'octets',
    'HTTP Content-Length of the response (of the request without one)',
  ],
  [59, 'flowtelHttpResponseTime', 'unsigned32', 'quantity', US, 'HTTP request head to response head time'],
  [
    60,
    'flowtelHttpUpgrade',
    'string',
    'default',
    'none',
    'Protocol switched to: websocket, h2c, h2 (preface), connect',
  ],
  // tls: one record per handshake
  [61, 'flowtelTlsTransactions', 'unsigned32', 'deltaCounter', 'none', 'TLS handshake records of this flow'],
  [
    62,
    'flowtelTlsRecordVersion',
    'unsigned16',
    'identifier',
    'none',
    'TLS record-layer version of the ClientHello',
  ],
  [
    63,
    'flowtelTlsAlpnOffered',
    'string',
    'default',
    'none',
    'ALPN protocols the client offered, comma separated',
  ],
  [
    64,
    'flowtelTlsSupportedVersions',
    'octetArray',
    'default',
    'none',
    'supported_versions the client offered (2 octets each)',
  ],
  // dhcp: one record per DHCPv4/DHCPv6 message (Flowmon's dhcp* elements carry the v4 basics)
  [70, 'flowtelDhcpTransactions', 'unsigned32', 'deltaCounter', 'none', 'DHCP message records of this flow'],
  [71, 'flowtelDhcpTransactionId', 'unsigned32', 'identifier', 'none', 'DHCP xid / DHCPv6 transaction-id'],
  [72, 'flowtelDhcpAssigned', 'string', 'default', 'none', 'DHCPv6 IA addresses and delegated prefixes'],
  [73, 'flowtelDhcpServerId', 'string', 'default', 'none', 'DHCPv6 server DUID (hex)'],
  [74, 'flowtelDhcpClientId', 'string', 'default', 'none', 'DHCPv4 option 61 / DHCPv6 client DUID (hex)'],
  [75, 'flowtelDhcpClientFqdn', 'string', 'default', 'none', 'DHCP client FQDN (RFC 4702 / RFC 4704)'],
  [76, 'flowtelDhcpVendorClass', 'string', 'default', 'none', 'DHCPv4 option 60 / DHCPv6 vendor class'],
  [
    77,
    'flowtelDhcpParamList',
    'string',
    'default',
    'none',
    'Options the client requested (option 55 / ORO), comma separated: the client fingerprint',
  ],
  [78, 'flowtelDhcpRelay', 'string', 'default', 'none', 'Relay agent: giaddr / Relay-forward link-address'],
  [79, 'flowtelDhcpMessage', 'string', 'default', 'none', 'Server message: option 56 / status code text'],
  [
    80,
    'flowtelDhcpRelayInfo',
    'string',
    'default',
    'none',
    'Relay agent information: option 82 sub-options / DHCPv6 Interface-Id, Remote-Id (hex)',
  ],
  // tls: fingerprints and session setup (Flowmon's tlsJa3Fingerprint and tlsSetupTime carry JA3 and the time)
  [
    81,
    'flowtelTlsJa3s',
    'octetArray',
    'default',
    'none',
    'JA3S: MD5 of the ServerHello version, cipher, extensions',
  ],
  [82, 'flowtelTlsJa4', 'string', 'default', 'none', 'JA4 client fingerprint (FoxIO JA4+)'],
  [
    83,
    'flowtelTlsResumed',
    'unsigned8',
    'identifier',
    'none',
    'Session setup: 0 full handshake, 1 resumed by session ID, 2 by session ticket, 3 TLS 1.3 PSK',
  ],
  // tls: the server certificate (TLS <= 1.2; Flowmon's tlsSubjectCn/On, tlsIssuerCn, validity, key length too)
  [84, 'flowtelTlsIssuerO', 'string', 'default', 'none', 'Server certificate issuer organization (O)'],
  [85, 'flowtelTlsSerial', 'string', 'default', 'none', 'Server certificate serial number (hex)'],
  [86, 'flowtelTlsSanDns', 'string', 'default', 'none', 'Server certificate SAN DNS names, comma separated'],
  [87, 'flowtelTlsCertSha1', 'octetArray', 'default', 'none', 'SHA-1 fingerprint of the server certificate'],
  [
    88,
    'flowtelTlsCertSha256',
    'octetArray',
    'default',
    'none',
    'SHA-256 fingerprint of the server certificate',
  ],
  [
    89,
    'flowtelTlsSignatureAlg',
    'string',
    'default',
    'none',
    'Certificate signature algorithm (OpenSSL name)',
  ],
  [
    90,
    'flowtelTlsPublicKeyAlg',
    'string',
    'default',
    'none',
    'Certificate public-key algorithm (OpenSSL name)',
  ],
  [91, 'flowtelTlsChainLength', 'unsigned8', 'quantity', 'none', 'Certificates the server sent'],
  [92, 'flowtelTlsSubject', 'string', 'default', 'none', 'Server certificate subject DN (RFC 4514 order)'],
  [93, 'flowtelTlsIssuer', 'string', 'default', 'none', 'Server certificate issuer DN (RFC 4514 order)'],
  // quic: one record per QUIC handshake (the TLS fields of its ClientHello/ServerHello follow these)
  [
    100,
    'flowtelQuicTransactions',
    'unsigned32',
    'deltaCounter',
    'none',
    'QUIC handshake records of this flow',
  ],
  [
    101,
    'flowtelQuicVersion',
    'unsigned32',
    'identifier',
    'none',
    "QUIC version of the client's Initial packets",
  ],
  [
    102,
    'flowtelQuicDcid',
    'octetArray',
    'default',
    'none',
    "Destination Connection ID of the client's first Initial (the Initial keys' input)",
  ],
  [
    103,
    'flowtelQuicScid',
    'octetArray',
    'default',
    'none',
    "Source Connection ID of the client's first Initial",
  ],
  [
    104,
    'flowtelQuicServerScid',
    'octetArray',
    'default',
    'none',
    "Source Connection ID of the server's first Initial",
  ],
]

const DESCRIPTIONS = new Map<number, string>(FLOWTEL_ELEMENTS.map((r) => [r[0], r[5]]))

export function flowtelElementDefs(): ElementDef[] {
  return FLOWTEL_ELEMENTS.map(([id, name, type, semantics, units]) => ({
    pen: FLOWTEL_PEN,
    id,
    name,
    type,
    semantics,
    units,
  }))
}

/** Description of a Flowtel element for RFC 5610 informationElementDescription; undefined for others. */
export function describeElement(pen: number, id: number): string | undefined {
  return pen === FLOWTEL_PEN ? DESCRIPTIONS.get(id) : undefined
}

let registered = false

/** Registers the Flowmon and Flowtel enterprise elements (idempotent); call before building templates. */
export function registerEnterpriseElements(): void {
  registerFlowmonElements()
  if (registered) return
  registered = true
  registerElements(flowtelElementDefs())
}
