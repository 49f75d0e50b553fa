/**
 * Named anomaly counters for malformed, truncated or unusual packets (Zeek's "weird" idea).
 *
 * Names are snake_case and double as metric labels. The packet path increments by numeric id
 * (`anomalies.inc(A.truncated_ipv4_header)`), which is an array store, not a Map lookup.
 */
export const ANOMALY_NAMES = [
  // Link layer
  'truncated_ethernet_header',
  'truncated_vlan_header',
  'vlan_stack_too_deep',
  'truncated_mpls_header',
  'mpls_stack_too_deep',
  'truncated_pppoe_header',
  'truncated_llc_header',
  'truncated_nsh_header',
  // Ethernet/NSH headers nested too deeply (pseudowires, NSH, tunnels)
  'encapsulation_too_deep',
  'truncated_sll_header',
  'truncated_null_header',
  'truncated_arcnet_header',
  'truncated_nflog_header',
  'unknown_null_family',
  // Snaplen: captured bytes shorter than the wire length (counted apart from malformed packets)
  'snaplen_truncated',
  // IPv4
  'truncated_ipv4_header',
  'bad_ip_version',
  'bad_ipv4_header_length',
  'bad_ipv4_total_length',
  'ipv4_total_length_exceeds_frame',
  // Total length 0: segmentation offload (TSO/GSO) capture; the frame length is used instead
  'ipv4_total_length_zero',
  // IPv6
  'truncated_ipv6_header',
  'truncated_ipv6_extension_header',
  'ipv6_extension_chain_too_long',
  'bad_ipv6_payload_length',
  'ipv6_payload_length_exceeds_frame',
  // Payload length 0 without a Jumbo Payload option (RFC 2675), e.g. offload captures: frame length used
  'ipv6_zero_payload_length',
  // Fragments
  'fragment_without_first',
  'fragment_cache_full',
  // IP reassembly for the L7 path (ip-reassembly.ts); each one drops the datagram's L7 view, except the overlap
  // RFC 1858: a TCP fragment at offset 8, or a first fragment without the whole transport header (RFC 7112)
  'ip_fragment_tiny',
  // A non-last fragment not a multiple of 8 bytes, a datagram beyond 65 535 bytes, or last fragments that disagree
  'ip_fragment_bad_length',
  // IPv4 fragments that overlap with different bytes (the first data is kept, as in TCP reassembly)
  'ip_fragment_overlap',
  // IPv6 fragments that overlap (RFC 5722): the datagram is dropped
  'ipv6_fragment_overlap',
  // A fragment not wholly captured (snap length): the datagram cannot be rebuilt
  'ip_reassembly_truncated',
  // An incomplete datagram still missing fragments after the timeout (30 s of packet time) or at the end of input
  'ip_reassembly_timeout',
  // The oldest incomplete datagram evicted by the datagram-count or byte cap, or past the fragments-per-datagram cap
  'ip_reassembly_evicted',
  // A rebuilt datagram whose ports differ from the flow its last fragment was counted in (fragment cache miss)
  'ip_reassembly_flow_mismatch',
  // Transport
  'truncated_tcp_header',
  'bad_tcp_header_length',
  'truncated_udp_header',
  'bad_udp_length',
  'truncated_sctp_header',
  'truncated_icmp_header',
  // Tunnels
  'truncated_gre_header',
  'truncated_vxlan_header',
  'truncated_geneve_header',
  'truncated_gtp_header',
  'bad_gtp_extension_header',
  'truncated_teredo_header',
  'truncated_erspan_header',
  'truncated_ppp_header',
  'tunnel_too_deep',
  // Other
  'non_ip_packet',
] as const

export type AnomalyName = (typeof ANOMALY_NAMES)[number]

/** Numeric id of each anomaly name: `A.truncated_ipv4_header`. */
export const A: { readonly [K in AnomalyName]: number } = Object.fromEntries(
  ANOMALY_NAMES.map((n, i) => [n, i]),
) as { [K in AnomalyName]: number }

export class Anomalies {
  readonly counts = new Float64Array(ANOMALY_NAMES.length)

  inc(id: number): void {
    this.counts[id]! += 1
  }

  get(name: AnomalyName): number {
    return this.counts[A[name]]!
  }

  /** Non-zero counters by name, in declaration order. */
  toObject(): Record<string, number> {
    const out: Record<string, number> = {}
    for (let i = 0; i < ANOMALY_NAMES.length; i++) {
      const c = this.counts[i]!
      if (c > 0) out[ANOMALY_NAMES[i]!] = c
    }
    return out
  }

  /** Sets every counter back to 0 (a reader that moves the counts elsewhere, as it takes them). */
  clear(): void {
    this.counts.fill(0)
  }

  /** Total of the malformed-packet counters (everything except snaplen and non-IP). */
  malformedTotal(): number {
    let t = 0
    for (let i = 0; i < ANOMALY_NAMES.length; i++) {
      const n = ANOMALY_NAMES[i]!
      if (n !== 'snaplen_truncated' && n !== 'non_ip_packet') t += this.counts[i]!
    }
    return t
  }
}
