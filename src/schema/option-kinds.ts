/**
 * The kinds of options facts the store keeps (table flow_options, src/store/options-rows.ts) and the query
 * layer joins onto flow rows (src/query/joined.ts): interface names, application names (RFC 6759), VRF
 * names, sampling parameters, exporter statistics, and anything else.
 */
export type OptionKind = 'interface' | 'application' | 'vrf' | 'sampling' | 'stats' | 'other'
