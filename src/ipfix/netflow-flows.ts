/**
 * IPFIX flow records → unidirectional NetFlow flows (RFC 3954 §8 field types; NetFlow v5 takes its fixed
 * subset). A bidirectional record (RFC 5103: reverse elements under PEN 29305) becomes two flows: the
 * forward one, and the reverse one (only when it has packets) with source and destination swapped, its own
 * counters and per-direction values, and the biflow's start and end times (NetFlow has no others).
 *
 * Only field types RFC 3954 defines, with fixed lengths, are carried (IANA ids ≤ 127 mean the same in both:
 * RFC 7012 §4); IPFIX times become absolute milliseconds for the writers to express as sysUpTime offsets
 * (FIRST_SWITCHED/LAST_SWITCHED). Everything else (enterprise elements, L7 fields, flowEndReason, ...) is
 * dropped and counted by name. Records that are not flows (options data, records without an IP address pair
 * or a packet counter, e.g. L7 transaction records and ARP) are counted and skipped.
 */
import type { DecodedRecord, FieldValue } from './decoder.js'
import { REVERSE_PEN } from './elements.js'

export type NetflowValueKind = 'uint' | 'ipv4' | 'ipv6' | 'mac'

/**
 * How a field of the reverse flow is found: `swap` takes the forward value of the partner field (source ↔
 * destination), `per` takes the reverse element (omitted when the record has none), `shared` takes the reverse
 * element when present, else the forward one (protocol, IP version, VLAN, ...).
 */
export type ReverseRule = { swap: number } | 'per' | 'shared'

export interface V9FieldSpec {
  /** RFC 3954 field type. */
  readonly type: number
  /** Length on the wire (RFC 3954 §8 default, or the IPFIX length where v9 allows N). */
  readonly length: number
  readonly kind: NetflowValueKind
  /** IPFIX element ids (PEN 0) read for it, first present wins. */
  readonly from: readonly number[]
  readonly reverse: ReverseRule
  /** RFC 3954 name, for docs and messages. */
  readonly name: string
}

const spec = (
  type: number,
  name: string,
  length: number,
  kind: NetflowValueKind,
  reverse: ReverseRule,
  from: readonly number[] = [type],
): V9FieldSpec => ({ type, name, length, kind, from, reverse })

/** The carried fields, in template order. IANA id = v9 type except ICMP (139 → ICMP_TYPE 32). */
export const V9_FIELDS: readonly V9FieldSpec[] = [
  spec(8, 'IPV4_SRC_ADDR', 4, 'ipv4', { swap: 12 }),
  spec(12, 'IPV4_DST_ADDR', 4, 'ipv4', { swap: 8 }),
  spec(27, 'IPV6_SRC_ADDR', 16, 'ipv6', { swap: 28 }),
  spec(28, 'IPV6_DST_ADDR', 16, 'ipv6', { swap: 27 }),
  spec(7, 'L4_SRC_PORT', 2, 'uint', { swap: 11 }),
  spec(11, 'L4_DST_PORT', 2, 'uint', { swap: 7 }),
  spec(4, 'PROTOCOL', 1, 'uint', 'shared'),
  spec(60, 'IP_PROTOCOL_VERSION', 1, 'uint', 'shared'),
  spec(1, 'IN_BYTES', 8, 'uint', 'per'),
  spec(2, 'IN_PKTS', 8, 'uint', 'per'),
  spec(85, 'IN_PERMANENT_BYTES', 8, 'uint', 'per'),
  spec(86, 'IN_PERMANENT_PKTS', 8, 'uint', 'per'),
  spec(23, 'OUT_BYTES', 8, 'uint', 'per'),
  spec(24, 'OUT_PKTS', 8, 'uint', 'per'),
  spec(19, 'MUL_DST_PKTS', 8, 'uint', 'per'),
  spec(20, 'MUL_DST_BYTES', 8, 'uint', 'per'),
  spec(6, 'TCP_FLAGS', 1, 'uint', 'per'),
  spec(5, 'SRC_TOS', 1, 'uint', 'per'),
  spec(55, 'DST_TOS', 1, 'uint', 'per'),
  spec(52, 'MIN_TTL', 1, 'uint', 'per'),
  spec(53, 'MAX_TTL', 1, 'uint', 'per'),
  spec(25, 'MIN_PKT_LNGTH', 2, 'uint', 'per'),
  spec(26, 'MAX_PKT_LNGTH', 2, 'uint', 'per'),
  spec(32, 'ICMP_TYPE', 2, 'uint', 'per', [32, 139]),
  // A probe sees both directions on the interface it captures on: the interfaces are not swapped.
  spec(10, 'INPUT_SNMP', 4, 'uint', 'shared'),
  spec(14, 'OUTPUT_SNMP', 4, 'uint', 'shared'),
  spec(61, 'DIRECTION', 1, 'uint', 'per'),
  spec(9, 'SRC_MASK', 1, 'uint', { swap: 13 }),
  spec(13, 'DST_MASK', 1, 'uint', { swap: 9 }),
  spec(29, 'IPV6_SRC_MASK', 1, 'uint', { swap: 30 }),
  spec(30, 'IPV6_DST_MASK', 1, 'uint', { swap: 29 }),
  spec(16, 'SRC_AS', 4, 'uint', { swap: 17 }),
  spec(17, 'DST_AS', 4, 'uint', { swap: 16 }),
  spec(15, 'IPV4_NEXT_HOP', 4, 'ipv4', 'per'),
  spec(18, 'BGP_IPV4_NEXT_HOP', 4, 'ipv4', 'per'),
  spec(62, 'IPV6_NEXT_HOP', 16, 'ipv6', 'per'),
  spec(63, 'BGP_IPV6_NEXT_HOP', 16, 'ipv6', 'per'),
  spec(56, 'IN_SRC_MAC', 6, 'mac', { swap: 80 }),
  spec(80, 'IN_DST_MAC', 6, 'mac', { swap: 56 }),
  spec(81, 'OUT_SRC_MAC', 6, 'mac', { swap: 57 }),
  spec(57, 'OUT_DST_MAC', 6, 'mac', { swap: 81 }),
  spec(58, 'SRC_VLAN', 2, 'uint', 'shared'),
  spec(59, 'DST_VLAN', 2, 'uint', 'shared'),
  spec(34, 'SAMPLING_INTERVAL', 4, 'uint', 'shared'),
  spec(35, 'SAMPLING_ALGORITHM', 1, 'uint', 'shared'),
  spec(36, 'FLOW_ACTIVE_TIMEOUT', 2, 'uint', 'shared'),
  spec(37, 'FLOW_INACTIVE_TIMEOUT', 2, 'uint', 'shared'),
]

/** FIRST_SWITCHED / LAST_SWITCHED (sysUpTime ms, 4 octets), written from the flow's absolute times. */
export const FIRST_SWITCHED = 22
export const LAST_SWITCHED = 21

/** IPFIX elements that are consumed as times (so not reported as dropped). */
const TIME_IDS = new Set([150, 151, 152, 153, 154, 155, 156, 157])
const CARRIED_IDS = new Set(V9_FIELDS.flatMap((s) => s.from))

/** One direction of a flow: values by v9 field type (V9_FIELDS order), times in unix ms. */
export interface UniFlow {
  readonly values: Map<number, FieldValue>
  readonly startMs: number | undefined
  readonly endMs: number | undefined
  readonly reverse: boolean
}

export type NotExportable = 'options_record' | 'no_ip_addresses' | 'no_packet_counter'

export interface SplitResult {
  flows: UniFlow[]
  /** Why the record gave no flow at all. */
  skipped?: NotExportable
}

function toMs(id: number, v: FieldValue | undefined): number | undefined {
  if (v === undefined || v === null) return undefined
  if (id === 150 || id === 151) return typeof v === 'number' ? v * 1000 : undefined
  if (typeof v !== 'bigint') return undefined
  if (id === 152 || id === 153) return Number(v)
  return Number(v / 1_000_000n) // micro/nanoseconds decode as ns since 1970
}

function timeOf(fwd: Map<number, FieldValue>, ids: readonly number[]): number | undefined {
  for (const id of ids) {
    const t = toMs(id, fwd.get(id))
    if (t !== undefined) return t
  }
  return undefined
}

function positive(v: FieldValue | undefined): boolean {
  return (typeof v === 'number' && v > 0) || (typeof v === 'bigint' && v > 0n)
}

/**
 * Splits one decoded IPFIX data record. `dropped` is called once per element name that NetFlow v9 cannot
 * carry (forward and reverse names alike).
 */
export function splitRecord(rec: DecodedRecord, dropped: (name: string) => void): SplitResult {
  if (rec.isOptions) return { flows: [], skipped: 'options_record' }
  const fwd = new Map<number, FieldValue>()
  const rev = new Map<number, FieldValue>()
  for (const f of rec.fields) {
    if (f.pen === 0) {
      if (!fwd.has(f.id)) fwd.set(f.id, f.value)
      if (!CARRIED_IDS.has(f.id) && !TIME_IDS.has(f.id)) dropped(f.name)
    } else if (f.pen === REVERSE_PEN) {
      if (!rev.has(f.id)) rev.set(f.id, f.value)
      if (!CARRIED_IDS.has(f.id)) dropped(f.name)
    } else dropped(f.name)
  }
  const v4 = fwd.has(8) && fwd.has(12)
  const v6 = fwd.has(27) && fwd.has(28)
  if (!v4 && !v6) return { flows: [], skipped: 'no_ip_addresses' }
  if (!fwd.has(2) && !fwd.has(86)) return { flows: [], skipped: 'no_packet_counter' }
  const startMs = timeOf(fwd, [152, 150, 154, 156])
  const endMs = timeOf(fwd, [153, 151, 155, 157])
  const flows: UniFlow[] = []
  const forwardPackets = fwd.get(2) ?? fwd.get(86)
  if (positive(forwardPackets) || !positive(rev.get(2) ?? rev.get(86))) {
    const values = new Map<number, FieldValue>()
    for (const s of V9_FIELDS) {
      const v = pick(fwd, s.from)
      if (v !== undefined) values.set(s.type, v)
    }
    flows.push({ values, startMs, endMs, reverse: false })
  }
  if (positive(rev.get(2) ?? rev.get(86))) {
    const values = new Map<number, FieldValue>()
    for (const s of V9_FIELDS) {
      const r = s.reverse
      const v =
        r === 'per'
          ? pick(rev, s.from)
          : r === 'shared'
            ? (pick(rev, s.from) ?? pick(fwd, s.from))
            : pick(fwd, specOf(r.swap).from)
      if (v !== undefined) values.set(s.type, v)
    }
    flows.push({ values, startMs, endMs, reverse: true })
  }
  return { flows }
}

function pick(m: Map<number, FieldValue>, ids: readonly number[]): FieldValue | undefined {
  for (const id of ids) {
    const v = m.get(id)
    if (v !== undefined && v !== null) return v
  }
  return undefined
}

const BY_TYPE = new Map(V9_FIELDS.map((s) => [s.type, s]))

export function specOf(type: number): V9FieldSpec {
  const s = BY_TYPE.get(type)
  if (s === undefined) throw new Error(`no NetFlow v9 field type ${type}`)
  return s
}

// ---------------------------------------------------------------------------------------------------------
// Value encoding

/**
 * Writes `v` as an unsigned big-endian integer of `len` octets at `p`. Returns false (and writes the largest
 * value) when it does not fit, so the caller can count the saturation.
 */
export function putUint(buf: Buffer, p: number, len: number, v: FieldValue): boolean {
  let n = typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(Math.max(0, Math.floor(v))) : 0n
  if (typeof v === 'boolean') n = v ? 1n : 0n
  const max = (1n << BigInt(len * 8)) - 1n
  const fits = n <= max
  if (!fits) n = max
  for (let i = len - 1; i >= 0; i--) {
    buf[p + i] = Number(n & 0xffn)
    n >>= 8n
  }
  return fits
}

export function putIpv4(buf: Buffer, p: number, v: FieldValue): void {
  const parts = typeof v === 'string' ? v.split('.') : []
  for (let i = 0; i < 4; i++) buf[p + i] = Number(parts[i] ?? 0) & 0xff
}

/** IPv6 text (RFC 4291 §2.2 forms, incl. '::' and a dotted IPv4 tail) → 16 octets. */
export function putIpv6(buf: Buffer, p: number, v: FieldValue): void {
  buf.fill(0, p, p + 16)
  if (typeof v !== 'string') return
  let text = v
  const tail: number[] = []
  if (text.includes('.')) {
    const i = text.lastIndexOf(':')
    const q = text
      .slice(i + 1)
      .split('.')
      .map(Number)
    tail.push(((q[0] ?? 0) << 8) | (q[1] ?? 0), ((q[2] ?? 0) << 8) | (q[3] ?? 0))
    text = text.slice(0, i + 1)
    if (!text.endsWith('::')) text = text.slice(0, -1)
  }
  const [head = '', rest] = text.split('::')
  const h = head === '' ? [] : head.split(':').map((g) => parseInt(g, 16))
  const t = rest === undefined || rest === '' ? [] : rest.split(':').map((g) => parseInt(g, 16))
  const groups =
    rest === undefined
      ? [...h, ...tail]
      : [...h, ...Array<number>(8 - h.length - t.length - tail.length).fill(0), ...t, ...tail]
  for (let i = 0; i < 8; i++) buf.writeUInt16BE((groups[i] ?? 0) & 0xffff, p + 2 * i)
}

export function putMac(buf: Buffer, p: number, v: FieldValue): void {
  const parts = typeof v === 'string' ? v.split(':') : []
  for (let i = 0; i < 6; i++) buf[p + i] = parseInt(parts[i] ?? '0', 16) & 0xff
}
