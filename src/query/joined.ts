/**
 * Fields joined onto flow rows at query time from the options table (store/options-rows.ts,
 * store/options-store.ts): the latest fact known for the flow's exporter, observation domain and id ("latest"
 * by time of receipt, not "at the flow's time": ClickHouse 18.16 has no ASOF JOIN, and both stores must
 * answer alike).
 *
 *   app_name, app_description, app_category   applicationId (RFC 6759) → the application options;
 *                                              app_name falls back to the flow's own applicationName
 *   in_if_name, in_if_description               ingressInterface → interface options
 *   out_if_name, out_if_description             egressInterface → interface options
 *   vrf_name, out_vrf_name                      ingressVRFID / egressVRFID → VRF options (VRFname)
 *   sampling_rate                               the flow's own sampling_interval, else the sampler options
 *                                              of its selectorId / samplerId, else the exporter/domain's
 *
 * Each join is a LEFT JOIN of one subquery (the latest row per key of one kind) on text keys (exporter,
 * domain, id), nested one join per level: ClickHouse 18.16 allows one JOIN per SELECT, needs USING and
 * equal key names, and gives defaults (not NULL) for rows without a match, so each right side carries a
 * `1` hit marker and the value is taken only where it is 1. Only the joins a query uses are made, and a
 * kind the options table does not hold is no join at all (its fields are NULL, or their fallback column).
 */
import { COLUMNS } from '../schema/columns.js'
import type { OptionKind } from '../schema/option-kinds.js'

export type JoinedKind = 'text' | 'u64'

export interface JoinedField {
  readonly name: string
  readonly kind: JoinedKind
  readonly doc: string
}

/** What differs between the engines in the join SQL. */
export interface JoinDialect {
  /** `LEFT JOIN` or ClickHouse's `ANY LEFT JOIN`. */
  readonly leftJoin: string
  /** The options table, qualified as the engine needs. */
  readonly optionsTable: string
  /** Kinds present in the options table (absent kinds are not joined). */
  readonly kinds: ReadonlySet<string>
  /** `expr` as non-NULL text ('' for NULL). */
  keyText(expr: string): string
  /** The top-level element `element` of the `extra` JSON column as text ('' when absent). */
  extraText(element: string, json: 'string' | 'number'): string
  /** The "value of the row with the largest `by`" aggregate. */
  argMax(value: string, by: string): string
  /** A typed NULL. */
  nullOf(kind: JoinedKind): string
  /** `expr` as a nullable unsigned 64-bit integer. */
  toU64(expr: string): string
}

interface JoinOutput {
  readonly field: string
  readonly attr: 'name' | 'description' | 'category' | 'rate'
  /** A flow column the value falls back to (first), when the flow has it. */
  readonly fallback?: string
}

interface JoinSpec {
  readonly id: string
  readonly kind: OptionKind
  /** The flow's key, as text (dialect helpers). */
  readonly flowKey: (d: JoinDialect) => string
  readonly outputs: readonly JoinOutput[]
}

const ELEMENT = /^[A-Za-z][A-Za-z0-9_]*$/
const extra = (d: JoinDialect, element: string, json: 'string' | 'number'): string => {
  if (!ELEMENT.test(element)) throw new Error(`bad element name ${element}`)
  return d.extraText(element, json)
}

const JOINS: readonly JoinSpec[] = [
  {
    id: 'app',
    kind: 'application',
    flowKey: (d) => extra(d, 'applicationId', 'string'),
    outputs: [
      { field: 'app_name', attr: 'name', fallback: 'application' },
      { field: 'app_description', attr: 'description' },
      { field: 'app_category', attr: 'category' },
    ],
  },
  {
    id: 'inif',
    kind: 'interface',
    flowKey: (d) => d.keyText('in_if'),
    outputs: [
      { field: 'in_if_name', attr: 'name' },
      { field: 'in_if_description', attr: 'description' },
    ],
  },
  {
    id: 'outif',
    kind: 'interface',
    flowKey: (d) => d.keyText('out_if'),
    outputs: [
      { field: 'out_if_name', attr: 'name' },
      { field: 'out_if_description', attr: 'description' },
    ],
  },
  {
    id: 'invrf',
    kind: 'vrf',
    flowKey: (d) => extra(d, 'ingressVRFID', 'number'),
    outputs: [{ field: 'vrf_name', attr: 'name' }],
  },
  {
    id: 'outvrf',
    kind: 'vrf',
    flowKey: (d) => extra(d, 'egressVRFID', 'number'),
    outputs: [{ field: 'out_vrf_name', attr: 'name' }],
  },
  {
    // The sampler the flow names (selectorId, else samplerId) ...
    id: 'sampler',
    kind: 'sampling',
    flowKey: (d) => {
      const sel = extra(d, 'selectorId', 'number')
      return `CASE WHEN ${sel} <> '' THEN ${sel} ELSE ${extra(d, 'samplerId', 'number')} END`
    },
    outputs: [{ field: 'sampling_rate_sampler', attr: 'rate' }],
  },
  {
    // ... or the exporter/domain-wide sampling options.
    id: 'samplerdom',
    kind: 'sampling',
    flowKey: () => "''",
    outputs: [{ field: 'sampling_rate_domain', attr: 'rate' }],
  },
]

/** The joined fields users see (filter terms, --top fields, --columns). */
export const JOINED_FIELDS: readonly JoinedField[] = [
  { name: 'app_name', kind: 'text', doc: 'application name (RFC 6759 options, or the flow applicationName)' },
  { name: 'app_description', kind: 'text', doc: 'application description (RFC 6759 options)' },
  { name: 'app_category', kind: 'text', doc: 'application category (RFC 6759 options)' },
  { name: 'in_if_name', kind: 'text', doc: 'ingress interface name (interface options)' },
  { name: 'in_if_description', kind: 'text', doc: 'ingress interface description' },
  { name: 'out_if_name', kind: 'text', doc: 'egress interface name (interface options)' },
  { name: 'out_if_description', kind: 'text', doc: 'egress interface description' },
  { name: 'vrf_name', kind: 'text', doc: 'ingress VRF name (VRF options, ingressVRFID)' },
  { name: 'out_vrf_name', kind: 'text', doc: 'egress VRF name (VRF options, egressVRFID)' },
  {
    name: 'sampling_rate',
    kind: 'u64',
    doc: 'sampling rate 1:N (the flow, else its sampler, else the exporter options)',
  },
]

export const JOINED_BY_NAME: ReadonlyMap<string, JoinedField> = new Map(JOINED_FIELDS.map((f) => [f.name, f]))

/** Which joins a set of joined field names needs. */
function joinsFor(fields: ReadonlySet<string>): JoinSpec[] {
  const need = (id: string): boolean => {
    switch (id) {
      case 'app':
        return ['app_name', 'app_description', 'app_category'].some((f) => fields.has(f))
      case 'inif':
        return fields.has('in_if_name') || fields.has('in_if_description')
      case 'outif':
        return fields.has('out_if_name') || fields.has('out_if_description')
      case 'invrf':
        return fields.has('vrf_name')
      case 'outvrf':
        return fields.has('out_vrf_name')
      default:
        return fields.has('sampling_rate')
    }
  }
  return JOINS.filter((j) => need(j.id))
}

/**
 * The final expression of each joined field, from the per-join outputs that were made. Absent outputs are
 * left out rather than coalesced as typed NULLs: ClickHouse 18.16 answers `coalesce(x, CAST(NULL AS …))`
 * with NULL whatever x is.
 */
function finalExpr(field: string, d: JoinDialect, made: ReadonlySet<string>): string {
  const parts = (fallback: string | undefined, outs: string[]): string[] => [
    ...(fallback !== undefined ? [fallback] : []),
    ...outs.filter((o) => made.has(o)).map((o) => `o_${o}`),
  ]
  const combine = (args: string[], kind: JoinedKind): string =>
    args.length === 0 ? d.nullOf(kind) : args.length === 1 ? args[0]! : `coalesce(${args.join(', ')})`
  switch (field) {
    case 'sampling_rate':
      // Always UInt64, so a store answers with one type whether or not the options were joined.
      return d.toU64(
        combine(parts('sampling_interval', ['sampling_rate_sampler', 'sampling_rate_domain']), 'u64'),
      )
    case 'app_name':
      return combine(parts('application', ['app_name']), 'text')
    default:
      return combine(parts(undefined, [field]), 'text')
  }
}

/**
 * The flows table with the joined `fields` added (every flow column kept), as a FROM source; `innerWhere`
 * (conditions on flow columns only) is applied before the joins. Undefined when `fields` is empty.
 */
export function joinedSource(
  table: string,
  fields: ReadonlySet<string>,
  innerWhere: string,
  d: JoinDialect,
): string | undefined {
  const wanted = [...fields].filter((f) => JOINED_BY_NAME.has(f))
  if (wanted.length === 0) return undefined
  const joins = joinsFor(new Set(wanted)).filter((j) => d.kinds.has(j.kind))
  const flowCols = COLUMNS.map((c) => c.name)
  let carried = [...flowCols, 'j_exporter', 'j_domain', ...joins.map((j) => `k_${j.id}`)]
  let sql =
    `SELECT ${flowCols.join(', ')}, ${d.keyText('exporter')} AS j_exporter, ` +
    `${d.keyText('observation_domain')} AS j_domain` +
    joins.map((j) => `, ${j.flowKey(d)} AS k_${j.id}`).join('') +
    ` FROM ${table}${innerWhere}`
  const made = new Set<string>()
  for (const j of joins) {
    const h = `h_${j.id}`
    const attrs = [...new Set(j.outputs.map((o) => o.attr))]
    const right =
      `SELECT ${d.keyText('exporter')} AS j_exporter, ${d.keyText('observation_domain')} AS j_domain, ` +
      `key AS k_${j.id}, 1 AS ${h}` +
      attrs.map((a) => `, ${d.argMax(a, 'time_received')} AS ${a}_${j.id}`).join('') +
      ` FROM ${d.optionsTable} WHERE kind = '${j.kind}' GROUP BY j_exporter, j_domain, k_${j.id}`
    const outs = j.outputs.map((o) => {
      const v = `${o.attr}_${j.id}`
      const present = o.attr === 'rate' ? `${v} > 0` : `${v} <> ''`
      return `CASE WHEN ${h} = 1 AND ${present} THEN ${v} END AS o_${o.field}`
    })
    carried = carried.filter((c) => c !== `k_${j.id}`)
    sql =
      `SELECT ${carried.join(', ')}, ${outs.join(', ')} FROM (${sql}) ${d.leftJoin} (${right}) ` +
      `USING (j_exporter, j_domain, k_${j.id})`
    for (const o of j.outputs) {
      carried.push(`o_${o.field}`)
      made.add(o.field)
    }
  }
  const finals = JOINED_FIELDS.map((f) => `${finalExpr(f.name, d, made)} AS ${f.name}`)
  return `(SELECT ${flowCols.join(', ')}, ${finals.join(', ')} FROM (${sql}))`
}

/** The DuckDB join SQL: JSON functions of the built-in json extension, arg_max, typed NULLs. */
export function duckdbJoins(optionsTable: string, kinds: ReadonlySet<string>): JoinDialect {
  return {
    leftJoin: 'LEFT JOIN',
    optionsTable,
    kinds,
    keyText: (e) => `coalesce(CAST(${e} AS VARCHAR), '')`,
    extraText: (element) => `coalesce(json_extract_string(extra, '$.${element}'), '')`,
    argMax: (v, by) => `arg_max(${v}, ${by})`,
    nullOf: (kind) => (kind === 'text' ? 'CAST(NULL AS VARCHAR)' : 'CAST(NULL AS UBIGINT)'),
    toU64: (e) => `CAST(${e} AS UBIGINT)`,
  }
}
