/**
 * The flow table's schema as code: one row per column, from which both DDL sets (ddl.ts), the row builder
 * (store/normalize.ts) and the query compiler (query/sql.ts) are derived (Akvorado `schema/definition.go`).
 *
 * A column is filled from the first of its IPFIX Information Elements (by registry name, RFC 5103 reverse
 * elements as `reverseX`) present in a record, or from record metadata (exporter, domain, template, receive
 * time). Every decoded element that no column takes, and every repeat of one that a column took, goes into
 * the `extra` column (a JSON object keyed by element name, values in `recordToJson` form), so no field is lost.
 *
 * Addresses: IPv4 and IPv6 share one text column (`src_addr`, `dst_addr`: the decoder's canonical text,
 * dotted quad or RFC 5952 IPv6) so the stored value is exactly what the exporter sent and needs no extension
 * to read. Prefix matching (`net 10.0.0.0/8`) uses a numeric key beside it (`src_ip_key`, `dst_ip_key`:
 * 128-bit, IPv4 as IPv4-mapped IPv6 `::ffff:a.b.c.d`), so a CIDR becomes one range comparison. In ClickHouse
 * the key is `IPv6` on servers that have it and `FixedString(16)` on 18.16.
 *
 * Totals: `total_bytes` and `total_packets` (both directions, never NULL, filled at ingest) are what top-N
 * sums and what the filter's `bytes`/`packets` compare, so no query adds two nullable columns per row.
 * Top-N by an address groups by its fixed-width key and formats only the rows returned (query/sql.ts).
 *
 * Times are stored with microsecond precision: DuckDB TIMESTAMP; ClickHouse DateTime64(6) on modern servers,
 * and on 18.16 (no DateTime64) UInt64 microseconds since 1970.
 */

/** How a value is held in a row (store/normalize.ts) and which types it gets in each backend. */
export type ValueKind = 'u8' | 'u16' | 'u32' | 'u64' | 'bool' | 'text' | 'time' | 'ipkey' | 'json'

/** Where a column's value comes from besides IPFIX elements. */
export type MetaSource =
  | 'received'
  | 'exporter'
  | 'domain'
  | 'template'
  | 'version'
  | 'srcKey'
  | 'dstKey'
  | 'totalBytes'
  | 'totalPackets'

export interface Column {
  readonly name: string
  /** Elements it is filled from, in order of preference; the first is the canonical one. */
  readonly ies: readonly string[]
  readonly meta?: MetaSource
  readonly kind: ValueKind
  /** DuckDB type. */
  readonly duck: string
  /** ClickHouse type in plain forms ClickHouse 18.16 accepts (store/clickhouse-ddl.ts adds Nullable). */
  readonly ch: string
  /** ClickHouse type on modern servers (IPv6, DateTime64, Bool, LowCardinality). */
  readonly chModern: string
  /** Modern servers: the column codec, if any. */
  readonly chCodec?: string
  /**
   * The value is the sum of these two columns (absent as 0): ingest fills it; for rows stored before the
   * column existed, ClickHouse reads it as the column's DEFAULT and DuckDB back-fills it when adding it.
   */
  readonly sumOf?: readonly [string, string]
  readonly role: 'dimension' | 'metric'
  readonly doc: string
}

const TYPES: Record<ValueKind, { duck: string; ch: string; chModern: string; chCodec?: string }> = {
  u8: { duck: 'UTINYINT', ch: 'UInt8', chModern: 'UInt8' },
  u16: { duck: 'USMALLINT', ch: 'UInt16', chModern: 'UInt16' },
  u32: { duck: 'UINTEGER', ch: 'UInt32', chModern: 'UInt32' },
  u64: { duck: 'UBIGINT', ch: 'UInt64', chModern: 'UInt64', chCodec: 'CODEC(T64, LZ4)' },
  bool: { duck: 'BOOLEAN', ch: 'UInt8', chModern: 'Bool' },
  text: { duck: 'VARCHAR', ch: 'String', chModern: 'LowCardinality(String)' },
  time: { duck: 'TIMESTAMP', ch: 'UInt64', chModern: 'DateTime64(6)', chCodec: 'CODEC(DoubleDelta, LZ4)' },
  // Uncompressed: DuckDB's bit-packing of 128-bit integers is slow to read (a top-N by address took 7 times
  // the CPU); 16 bytes per key per row is the price.
  ipkey: { duck: 'UHUGEINT USING COMPRESSION uncompressed', ch: 'FixedString(16)', chModern: 'IPv6' },
  json: { duck: 'VARCHAR', ch: 'String', chModern: 'String', chCodec: 'CODEC(ZSTD(1))' },
}

function col(
  name: string,
  ies: readonly string[],
  kind: ValueKind,
  role: 'dimension' | 'metric',
  doc: string,
  meta?: MetaSource,
): Column {
  const t = TYPES[kind]
  return { name, ies, kind, role, doc, ...t, ...(meta !== undefined ? { meta } : {}) }
}

const dim = (name: string, ies: readonly string[], kind: ValueKind, doc: string): Column =>
  col(name, ies, kind, 'dimension', doc)
const metric = (name: string, ies: readonly string[], kind: ValueKind, doc: string): Column =>
  col(name, ies, kind, 'metric', doc)

/** camelCase element name → snake_case column name (npmJitterDev → npm_jitter_dev). */
export function snake(ie: string): string {
  return ie.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()
}

/** The npm and tcpext groups the probe exports (docs/elements.md): one column per element, named after it. */
const PROBE_METRICS: ReadonlyArray<readonly [string, ValueKind]> = [
  ...(
    [
      'npmJitterDev',
      'npmJitterAvg',
      'npmJitterMin',
      'npmJitterMax',
      'npmDelayDev',
      'npmDelayAvg',
      'npmDelayMin',
      'npmDelayMax',
      'npnRoundTripTime',
      'npmServerResponseTime',
      'npmTcpRetransmission',
      'npmTcpOutOfOrder',
      'flowtelTcpRttServer',
      'flowtelTcpRttClient',
      'flowtelTcpRttServerMin',
      'flowtelTcpRttServerMean',
      'flowtelTcpRttServerMax',
      'flowtelTcpRttServerCount',
      'flowtelTcpRttClientMin',
      'flowtelTcpRttClientMean',
      'flowtelTcpRttClientMax',
      'flowtelTcpRttClientCount',
      'flowtelSrtMin',
      'flowtelSrtMax',
      'flowtelSrtCount',
      'flowtelRetransPackets',
      'flowtelReverseRetransPackets',
      'flowtelOutOfOrderPackets',
      'flowtelReverseOutOfOrderPackets',
      'flowtelReverseJitterDev',
      'flowtelReverseJitterAvg',
      'flowtelReverseJitterMin',
      'flowtelReverseJitterMax',
      'flowtelReverseDelayDev',
      'flowtelReverseDelayAvg',
      'flowtelReverseDelayMin',
      'flowtelReverseDelayMax',
    ] as const
  ).map((n) => [n, 'u32'] as const),
  ['flowtelRetransOctets', 'u64'],
  ['flowtelReverseRetransOctets', 'u64'],
  ['flowtelOutOfOrderOctets', 'u64'],
  ['flowtelReverseOutOfOrderOctets', 'u64'],
  ['tcpSynTtl', 'u8'],
  ['tcpSynSize', 'u8'],
  ['flowtelTcpSynAckTtl', 'u8'],
  ['flowtelTcpInitialWindow', 'u16'],
  ['flowtelReverseTcpInitialWindow', 'u16'],
  ['flowtelTcpWindowScale', 'u8'],
  ['flowtelReverseTcpWindowScale', 'u8'],
  ['flowtelTcpMss', 'u16'],
  ['flowtelReverseTcpMss', 'u16'],
  ['flowtelTcpSackPermitted', 'bool'],
  ['flowtelReverseTcpSackPermitted', 'bool'],
  ['tcpOptions', 'u64'],
  ['reverseTcpOptions', 'u64'],
]

const TABLE: readonly Column[] = [
  col(
    'time_received',
    [],
    'time',
    'dimension',
    'when the collector stored the record (retention by age)',
    'received',
  ),
  dim(
    'time_start',
    [
      'flowStartMilliseconds',
      'flowStartSeconds',
      'flowStartMicroseconds',
      'flowStartNanoseconds',
      'observationTimeMilliseconds',
    ],
    'time',
    'first packet',
  ),
  dim(
    'time_end',
    ['flowEndMilliseconds', 'flowEndSeconds', 'flowEndMicroseconds', 'flowEndNanoseconds'],
    'time',
    'last packet',
  ),
  col('exporter', [], 'text', 'dimension', 'exporter address (transport session source)', 'exporter'),
  col('observation_domain', [], 'u32', 'dimension', 'observation domain / NetFlow source ID', 'domain'),
  col('template_id', [], 'u16', 'dimension', 'template of the data record (0 for NetFlow v5)', 'template'),
  col('flow_version', [], 'text', 'dimension', 'ipfix, netflow9, netflow5 or sflow', 'version'),
  dim('ip_version', ['ipVersion'], 'u8', 'IP version'),
  dim('src_addr', ['sourceIPv4Address', 'sourceIPv6Address'], 'text', 'source (initiator) address'),
  dim('dst_addr', ['destinationIPv4Address', 'destinationIPv6Address'], 'text', 'destination address'),
  col('src_ip_key', [], 'ipkey', 'dimension', 'src_addr as a 128-bit number (IPv4-mapped)', 'srcKey'),
  col('dst_ip_key', [], 'ipkey', 'dimension', 'dst_addr as a 128-bit number (IPv4-mapped)', 'dstKey'),
  dim('src_port', ['sourceTransportPort'], 'u16', 'source port'),
  dim('dst_port', ['destinationTransportPort'], 'u16', 'destination port'),
  dim('proto', ['protocolIdentifier'], 'u8', 'IP protocol number'),
  metric('bytes', ['octetDeltaCount'], 'u64', 'octets, initiator → responder'),
  metric('packets', ['packetDeltaCount'], 'u64', 'packets, initiator → responder'),
  metric('rev_bytes', ['reverseOctetDeltaCount'], 'u64', 'octets, responder → initiator (RFC 5103)'),
  metric('rev_packets', ['reversePacketDeltaCount'], 'u64', 'packets, responder → initiator'),
  {
    ...col(
      'total_bytes',
      [],
      'u64',
      'metric',
      'bytes + rev_bytes (absent as 0, capped at 2^63−1)',
      'totalBytes',
    ),
    sumOf: ['bytes', 'rev_bytes'],
  },
  {
    ...col('total_packets', [], 'u64', 'metric', 'packets + rev_packets (as total_bytes)', 'totalPackets'),
    sumOf: ['packets', 'rev_packets'],
  },
  dim('tcp_flags', ['tcpControlBits'], 'u16', 'OR of TCP flags'),
  dim('rev_tcp_flags', ['reverseTcpControlBits'], 'u16', 'OR of TCP flags, reverse'),
  dim('tos', ['ipClassOfService'], 'u8', 'TOS / traffic class'),
  dim('rev_tos', ['reverseIpClassOfService'], 'u8', 'TOS / traffic class, reverse'),
  metric('min_ttl', ['minimumTTL'], 'u8', 'minimum TTL'),
  metric('max_ttl', ['maximumTTL'], 'u8', 'maximum TTL'),
  metric('rev_min_ttl', ['reverseMinimumTTL'], 'u8', 'minimum TTL, reverse'),
  metric('rev_max_ttl', ['reverseMaximumTTL'], 'u8', 'maximum TTL, reverse'),
  dim('icmp_type_code', ['icmpTypeCodeIPv4', 'icmpTypeCodeIPv6'], 'u16', 'ICMP type·256 + code'),
  dim('rev_icmp_type_code', ['reverseIcmpTypeCodeIPv4', 'reverseIcmpTypeCodeIPv6'], 'u16', 'reverse ICMP'),
  dim('flow_end_reason', ['flowEndReason'], 'u8', 'RFC 5102 flowEndReason'),
  dim('biflow_direction', ['biflowDirection'], 'u8', 'RFC 5103 biflowDirection'),
  dim('src_mac', ['sourceMacAddress'], 'text', 'source MAC'),
  dim('dst_mac', ['destinationMacAddress'], 'text', 'destination MAC'),
  dim('vlan', ['vlanId'], 'u16', 'outer VLAN'),
  dim('inner_vlan', ['dot1qCustomerVlanId'], 'u16', 'inner (customer) VLAN'),
  dim('in_if', ['ingressInterface'], 'u32', 'ingress interface'),
  dim('out_if', ['egressInterface'], 'u32', 'egress interface'),
  dim('l2_segment_id', ['layer2SegmentId'], 'u64', 'VXLAN segment (RFC 7133 layer2SegmentId)'),
  dim('application', ['applicationName'], 'text', 'application name (RFC 6759)'),
  dim('sampling_interval', ['samplingInterval', 'samplingPacketInterval'], 'u32', 'sampling rate 1:N'),
  dim('http_method', ['httpRequestMethod'], 'text', 'HTTP request method (filter: http.method)'),
  dim('http_host', ['httpRequestHost'], 'text', 'HTTP Host header (http.host)'),
  dim('http_target', ['httpRequestTarget'], 'text', 'HTTP request target (http.target)'),
  dim('http_status', ['httpStatusCode'], 'u16', 'HTTP status code, 0 without a response (http.status)'),
  dim('http_user_agent', ['httpUserAgent'], 'text', 'HTTP User-Agent (http.user_agent)'),
  dim('dns_qname', ['dnsQname'], 'text', 'DNS question name (dns.qname)'),
  dim('dns_qtype', ['dnsQtype'], 'u16', 'DNS question type (dns.qtype)'),
  dim('tls_sni', ['tlsSni', 'sslServerName', 'TLSSNI', 'tlsServerName'], 'text', 'TLS server name (tls.sni)'),
  ...PROBE_METRICS.map(([ie, kind]) => metric(snake(ie), [ie], kind, `probe element ${ie}`)),
  col('extra', [], 'json', 'dimension', 'every other decoded element, JSON object keyed by element name'),
]

/**
 * Text columns with many distinct values: plain `String CODEC(ZSTD(1))` on modern ClickHouse, where
 * LowCardinality (built for up to some thousands of values per part) would only add a dictionary.
 */
const HIGH_CARDINALITY = new Set(['src_addr', 'dst_addr', 'http_target', 'http_user_agent', 'dns_qname'])

export const COLUMNS: readonly Column[] = TABLE.map((c) =>
  HIGH_CARDINALITY.has(c.name) ? { ...c, chModern: 'String', chCodec: 'CODEC(ZSTD(1))' } : c,
)

export const COLUMN_BY_NAME: ReadonlyMap<string, Column> = new Map(COLUMNS.map((c) => [c.name, c]))

/** Element name → the column it fills. */
export const COLUMN_BY_IE: ReadonlyMap<string, Column> = new Map(
  COLUMNS.flatMap((c) => c.ies.map((ie) => [ie, c] as const)),
)

export const FLOWS_TABLE = 'flows'

/**
 * Columns a ClickHouse table computes itself from another column when a row is inserted (`MATERIALIZED`):
 * ingest never writes them and listings never show them; top-N groups by them because ClickHouse 18.16
 * groups a plain UInt32 about 40 % cheaper than a `Nullable(FixedString(16))` key (bench/store.bench.ts).
 *
 * `src_ip4` / `dst_ip4`: the IPv4 address as a number when the key is IPv4-mapped, else 0 (IPv6, no address,
 * and 0.0.0.0 itself: top-N groups the 0 rows by their full key instead, query/sql.ts). Only on tables of
 * the legacy generation (18.16, the one CI runs); modern tables group by their IPv6 key as before. DuckDB
 * has no column computed at insert; its uncompressed UHUGEINT key groups within about 20 % of a UINTEGER.
 */
export interface ComputedColumn {
  readonly name: string
  /** The column it is computed from. */
  readonly of: string
  /** ClickHouse type (legacy generation). */
  readonly ch: string
  /** The MATERIALIZED expression (legacy generation), over `of`. */
  readonly chLegacy: string
  readonly doc: string
}

const V4_MAPPED_PREFIX = "unhex('00000000000000000000FFFF')"
const ipv4Of = (key: string): string =>
  `if(substring(assumeNotNull(${key}), 1, 12) = ${V4_MAPPED_PREFIX}, ` +
  `reinterpretAsUInt32(reverse(substring(assumeNotNull(${key}), 13, 4))), toUInt32(0))`

export const COMPUTED_COLUMNS: readonly ComputedColumn[] = [
  {
    name: 'src_ip4',
    of: 'src_ip_key',
    ch: 'UInt32',
    chLegacy: ipv4Of('src_ip_key'),
    doc: 'src_addr as an IPv4 number, 0 when not IPv4',
  },
  {
    name: 'dst_ip4',
    of: 'dst_ip_key',
    ch: 'UInt32',
    chLegacy: ipv4Of('dst_ip_key'),
    doc: 'dst_addr as an IPv4 number, 0 when not IPv4',
  },
]

/** Address key column → its computed IPv4 column. */
export const IPV4_COLUMN_OF: ReadonlyMap<string, string> = new Map(
  COMPUTED_COLUMNS.map((c) => [c.of, c.name]),
)
