/**
 * IP protocol numbers (IANA "Assigned Internet Protocol Numbers": RFC 792 ICMP, RFC 9293 TCP, RFC 768 UDP,
 * RFC 4443 ICMPv6, RFC 9260 SCTP, RFC 3828 UDP-Lite) and the TCP header's flag bits (RFC 9293 §3.1; ECE and
 * CWR RFC 3168), as PacketInfo holds them (`protocol`, `tcpFlags`), defined once for the decoder, the flow
 * meter and its field groups.
 */
export const IPPROTO_ICMP = 1
export const IPPROTO_TCP = 6
export const IPPROTO_UDP = 17
export const IPPROTO_ICMPV6 = 58
export const IPPROTO_SCTP = 132
export const IPPROTO_UDPLITE = 136

export const TH_FIN = 0x01
export const TH_SYN = 0x02
export const TH_RST = 0x04
export const TH_PSH = 0x08
export const TH_ACK = 0x10
export const TH_URG = 0x20
export const TH_ECE = 0x40
export const TH_CWR = 0x80
