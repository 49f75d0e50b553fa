/**
 * Link-layer header types of captured packets: the LINKTYPE_* registry shared by pcap and pcapng
 * (draft-ietf-opsawg-pcaplinktype, https://www.tcpdump.org/linktypes.html), plus a normalizer that maps
 * platform-specific DLT_* values found in old files onto their LINKTYPE_* equivalents.
 *
 * Readers normalize once per file header or interface description, never per packet.
 */

/** BSD loopback: 4-byte protocol family in the host byte order of the capturing machine. */
export const LINKTYPE_NULL = 0
/** IEEE 802.3 Ethernet (10/100/1000 Mb and up). */
export const LINKTYPE_ETHERNET = 1
/** AX.25 amateur radio. */
export const LINKTYPE_AX25 = 3
/** IEEE 802.5 Token Ring. */
export const LINKTYPE_IEEE802_5 = 6
/** ARCNET with BSD-style header. */
export const LINKTYPE_ARCNET_BSD = 7
/** SLIP, with a 16-byte pseudo-header (direction, compression). */
export const LINKTYPE_SLIP = 8
/** PPP in HDLC-like framing (RFC 1661/1662), starting with the protocol field or 0xff 0x03. */
export const LINKTYPE_PPP = 9
/** FDDI (ANSI X3T9.5). */
export const LINKTYPE_FDDI = 10
/** PPP in HDLC-like framing (RFC 1662) or Cisco PPP with HDLC framing. */
export const LINKTYPE_PPP_HDLC = 50
/** PPPoE session stage (RFC 2516), starting at the PPPoE header. */
export const LINKTYPE_PPP_ETHER = 51
/** RFC 1483 LLC/SNAP-encapsulated ATM. */
export const LINKTYPE_ATM_RFC1483 = 100
/** Raw IP: the packet starts with an IPv4 or IPv6 header (version nibble tells which). */
export const LINKTYPE_RAW = 101
/** Cisco PPP with HDLC framing (RFC 1547 section 4.3.1). */
export const LINKTYPE_C_HDLC = 104
/** IEEE 802.11 wireless LAN, no radio header. */
export const LINKTYPE_IEEE802_11 = 105
/** Frame Relay LAPF. */
export const LINKTYPE_FRELAY = 107
/** OpenBSD loopback: like NULL, but the 4-byte family is in network byte order. */
export const LINKTYPE_LOOP = 108
/** Linux "cooked" capture v1: 16-byte SLL header (pseudo link layer of the "any" device). */
export const LINKTYPE_LINUX_SLL = 113
/** Apple LocalTalk. */
export const LINKTYPE_LTALK = 114
/** OpenBSD pflog: pf firewall log header then the IP packet. */
export const LINKTYPE_PFLOG = 117
/** IEEE 802.11 with the Prism monitor-mode header. */
export const LINKTYPE_IEEE802_11_PRISM = 119
/** RFC 2625 IP over Fibre Channel. */
export const LINKTYPE_IP_OVER_FC = 122
/** IEEE 802.11 with a radiotap header. */
export const LINKTYPE_IEEE802_11_RADIOTAP = 127
/** First of the reserved private-use link types USER0..USER15 (147..162). */
export const LINKTYPE_USER0 = 147
/** Last of the reserved private-use link types. */
export const LINKTYPE_USER15 = 162
/** IEEE 802.11 with the AVS monitor-mode header. */
export const LINKTYPE_IEEE802_11_AVS = 163
/** Bluetooth HCI UART transport with a 4-byte direction pseudo-header. */
export const LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR = 201
/** PPP with a 1-byte direction pseudo-header. */
export const LINKTYPE_PPP_WITH_DIR = 204
/** Linux USB with the 64-byte usbmon header (memory-mapped). */
export const LINKTYPE_USB_LINUX_MMAPPED = 220
/** Raw IPv4: the packet starts with an IPv4 header. */
export const LINKTYPE_IPV4 = 228
/** Raw IPv6: the packet starts with an IPv6 header. */
export const LINKTYPE_IPV6 = 229
/** Linux netfilter NFLOG: TLV header, the packet is in the NFULA_PAYLOAD TLV. */
export const LINKTYPE_NFLOG = 239
/** Ethernet with the 7-byte preamble/SFD and trailing FCS (802.3 "MPacket"). */
export const LINKTYPE_NETANALYZER = 240
/** Apple PKTAP: per-packet metadata header, then the packet in its own DLT. */
export const LINKTYPE_PKTAP = 258
/** Linux vsock. */
export const LINKTYPE_VSOCK = 271
/** Linux "cooked" capture v2: 20-byte SLL2 header with interface index. */
export const LINKTYPE_LINUX_SLL2 = 276

/**
 * DLT_RAW as written by some old libpcap builds instead of LINKTYPE_RAW: 12 on most platforms
 * (OpenBSD used 12 for DLT_LOOP, but files from it are rare and Wireshark reads 12 as raw IP too).
 */
export const DLT_RAW_12 = 12
/** DLT_RAW on BSD/OS and OpenBSD. */
export const DLT_RAW_14 = 14
/** DLT_ATM_RFC1483 value used on some platforms instead of LINKTYPE_ATM_RFC1483. */
export const DLT_ATM_RFC1483_11 = 11
/** DLT_SLIP_BSDOS, written by BSD/OS; LINKTYPE_SLIP_BSDOS is 102. */
export const DLT_SLIP_BSDOS_15 = 15
/** DLT_PPP_BSDOS, written by BSD/OS; LINKTYPE_PPP_BSDOS is 103. */
export const DLT_PPP_BSDOS_16 = 16

/** LINKTYPE_SLIP_BSDOS (target of DLT 15). */
export const LINKTYPE_SLIP_BSDOS = 102
/** LINKTYPE_PPP_BSDOS (target of DLT 16). */
export const LINKTYPE_PPP_BSDOS = 103

/**
 * Maps a link type read from a file header or interface description to its LINKTYPE_* value:
 * platform DLT_* aliases (DLT_RAW 12 and 14, DLT_ATM_RFC1483 11, BSD/OS 15/16) become the registry
 * values; everything else passes through unchanged (including unknown values, which the decoder reports).
 */
export function normalizeLinkType(raw: number): number {
  switch (raw) {
    case DLT_RAW_12:
    case DLT_RAW_14:
      return LINKTYPE_RAW
    case DLT_ATM_RFC1483_11:
      return LINKTYPE_ATM_RFC1483
    case DLT_SLIP_BSDOS_15:
      return LINKTYPE_SLIP_BSDOS
    case DLT_PPP_BSDOS_16:
      return LINKTYPE_PPP_BSDOS
    default:
      return raw
  }
}

const NAMES: ReadonlyMap<number, string> = new Map([
  [LINKTYPE_NULL, 'null'],
  [LINKTYPE_ETHERNET, 'ethernet'],
  [LINKTYPE_AX25, 'ax25'],
  [LINKTYPE_IEEE802_5, 'ieee802_5'],
  [LINKTYPE_ARCNET_BSD, 'arcnet_bsd'],
  [LINKTYPE_SLIP, 'slip'],
  [LINKTYPE_PPP, 'ppp'],
  [LINKTYPE_FDDI, 'fddi'],
  [LINKTYPE_PPP_HDLC, 'ppp_hdlc'],
  [LINKTYPE_PPP_ETHER, 'ppp_ether'],
  [LINKTYPE_ATM_RFC1483, 'atm_rfc1483'],
  [LINKTYPE_RAW, 'raw'],
  [LINKTYPE_SLIP_BSDOS, 'slip_bsdos'],
  [LINKTYPE_PPP_BSDOS, 'ppp_bsdos'],
  [LINKTYPE_C_HDLC, 'c_hdlc'],
  [LINKTYPE_IEEE802_11, 'ieee802_11'],
  [LINKTYPE_FRELAY, 'frelay'],
  [LINKTYPE_LOOP, 'loop'],
  [LINKTYPE_LINUX_SLL, 'linux_sll'],
  [LINKTYPE_LTALK, 'ltalk'],
  [LINKTYPE_PFLOG, 'pflog'],
  [LINKTYPE_IEEE802_11_PRISM, 'ieee802_11_prism'],
  [LINKTYPE_IP_OVER_FC, 'ip_over_fc'],
  [LINKTYPE_IEEE802_11_RADIOTAP, 'ieee802_11_radiotap'],
  [LINKTYPE_IEEE802_11_AVS, 'ieee802_11_avs'],
  [LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR, 'bluetooth_hci_h4_with_phdr'],
  [LINKTYPE_PPP_WITH_DIR, 'ppp_with_dir'],
  [LINKTYPE_USB_LINUX_MMAPPED, 'usb_linux_mmapped'],
  [LINKTYPE_IPV4, 'ipv4'],
  [LINKTYPE_IPV6, 'ipv6'],
  [LINKTYPE_NFLOG, 'nflog'],
  [LINKTYPE_NETANALYZER, 'netanalyzer'],
  [LINKTYPE_PKTAP, 'pktap'],
  [LINKTYPE_VSOCK, 'vsock'],
  [LINKTYPE_LINUX_SLL2, 'linux_sll2'],
])

/** Lowercase name for logs and metric labels (`ethernet`, `linux_sll2`, `user3`, `linktype_999`). */
export function linkTypeName(linkType: number): string {
  const name = NAMES.get(linkType)
  if (name !== undefined) return name
  if (linkType >= LINKTYPE_USER0 && linkType <= LINKTYPE_USER15) return `user${linkType - LINKTYPE_USER0}`
  return `linktype_${linkType}`
}
