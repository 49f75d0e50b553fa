/**
 * `flowtel query`: reads flows back from a store. `--filter` takes the nfdump-like language of
 * query/filter.ts; `--top FIELD[,FIELD] --by bytes|packets|flows` ranks groups (both directions counted);
 * without --top the matching flows are listed. `--since/--until` take ISO 8601 times, seconds since 1970, or
 * a duration ago (`90s`, `15m`, `2h`, `7d`). Output as an aligned table, JSON lines or CSV.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { valueToJson } from '../../ipfix/decoder.js'
import { parseFilter } from '../../query/filter.js'
import { SUMMARY_JOINED, type FlowQuery, type TopMetric } from '../../query/sql.js'
import { OPTION_KINDS } from '../../store/options-store.js'
import type { OptionKind } from '../../schema/option-kinds.js'
import { COLUMN_BY_NAME } from '../../schema/columns.js'
import { openStoreForQuery, parseStore } from '../../store/open.js'
import type { RowValue } from '../../store/normalize.js'
import type { QueryResult } from '../../store/store.js'
import { intOption } from '../options.js'
import { commaList } from '../../util/comma-list.js'

interface QueryFlags {
  store: string
  filter?: string
  top?: string
  by: TopMetric
  since?: bigint
  until?: bigint
  limit?: number
  format: 'table' | 'json' | 'csv'
  columns?: string
  options?: OptionKind | true
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }
/** The ISO 8601 shapes parseTime takes: a year, month or day, then optionally a time and a zone. */
const ISO_TIME = /^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?$/

/** A time argument → µs since 1970; throws InvalidArgumentError naming the option. */
export function parseTime(value: string, name: string, nowMs = Date.now()): bigint {
  const v = value.trim()
  // The stores keep times as unsigned µs since 1970: an earlier time is refused here, by name.
  const before1970 = (): InvalidArgumentError =>
    new InvalidArgumentError(`${name}: "${value}" is before 1970, the earliest time a flow can have`)
  const ago = /^(\d+)([smhdw])$/.exec(v)
  if (ago !== null) {
    const ms = Math.round(nowMs - Number(ago[1]) * (UNITS[ago[2] ?? 's'] ?? 1) * 1000)
    if (!(ms >= 0)) throw before1970()
    return BigInt(ms) * 1000n
  }
  if (/^\d{9,11}$/.test(v)) return BigInt(v) * 1_000_000n
  // nfdump's 2024/01/31.10:00:00, and ISO 8601 dates and times (a space may stand for the T); without a
  // zone, UTC. Only these shapes reach Date.parse, which would also take "5" as May 2001.
  const iso = v
    .replace(/^(\d{4})\/(\d{2})\/(\d{2})(?:\.(.*))?$/, (_m, y: string, mo: string, d: string, t?: string) =>
      t !== undefined ? `${y}-${mo}-${d}T${t}` : `${y}-${mo}-${d}`,
    )
    .replace(/^(\d{4}-\d{2}-\d{2}) (?=\d)/, '$1T')
  const zoned = /T.*(Z|[+-]\d{2}:?\d{2})$/.test(iso) || !iso.includes('T') ? iso : `${iso}Z`
  const ms = ISO_TIME.test(zoned) ? Date.parse(zoned) : NaN
  if (!Number.isFinite(ms))
    throw new InvalidArgumentError(
      `${name}: expected an ISO time, seconds since 1970 or a duration like 2h, got "${value}"`,
    )
  if (ms < 0) throw before1970()
  return BigInt(ms) * 1000n
}

/** Time columns: the flow table's, and `received` of the options listing (µs since 1970). */
const isTime = (column: string): boolean =>
  COLUMN_BY_NAME.get(column)?.kind === 'time' || column === 'received'

/** One value as text for table and CSV output. */
export function cellText(column: string, v: RowValue): string {
  if (v === null) return ''
  if (isTime(column) && typeof v === 'bigint')
    return String(valueToJson('dateTimeMicroseconds', v * 1000n)).replace(/000Z$/, 'Z')
  return String(v)
}

function jsonValue(column: string, v: RowValue): unknown {
  if (typeof v === 'bigint') {
    if (isTime(column)) return cellText(column, v)
    return valueToJson('unsigned64', v)
  }
  return v
}

const NUMERIC = new Set(['flows', 'packets', 'bytes', 'sampling_rate', 'rate', 'observation_domain'])

/** The default listing without the joined columns that no listed row has a value for. */
export function dropEmptyJoined(r: QueryResult): QueryResult {
  const empty = new Set(
    SUMMARY_JOINED.filter((c) => r.rows.every((row) => row[c] === null || row[c] === undefined)),
  )
  if (empty.size === 0) return r
  return { columns: r.columns.filter((c) => !empty.has(c)), rows: r.rows }
}

export function formatResult(r: QueryResult, format: 'table' | 'json' | 'csv'): string {
  if (format === 'json')
    return (
      r.rows
        .map((row) =>
          JSON.stringify(Object.fromEntries(r.columns.map((c) => [c, jsonValue(c, row[c] ?? null)]))),
        )
        .join('\n') + (r.rows.length > 0 ? '\n' : '')
    )
  const cells = r.rows.map((row) => r.columns.map((c) => cellText(c, row[c] ?? null)))
  if (format === 'csv') {
    const q = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s)
    return [r.columns, ...cells].map((line) => line.map(q).join(',')).join('\n') + '\n'
  }
  const right = r.columns.map(
    (c) => NUMERIC.has(c) || ['u8', 'u16', 'u32', 'u64'].includes(COLUMN_BY_NAME.get(c)?.kind ?? ''),
  )
  const widths = r.columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)))
  const line = (row: string[]): string =>
    row
      .map((s, i) => (right[i] === true ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(r.columns), ...cells.map(line)].join('\n') + '\n'
}

export function queryCommand(): Command {
  return new Command('query')
    .description('query stored flows: filter, top-N, time window')
    .option('--store <url>', 'the store: duckdb:PATH or clickhouse:http://HOST:PORT/DATABASE', 'duckdb:')
    .option(
      '-f, --filter <expr>',
      'nfdump-like filter, e.g. "src ip 10.0.0.1 and dst port 443 and proto tcp"',
    )
    .option('--top <fields>', 'rank groups of these fields (comma separated, e.g. srcip,dstport)')
    .addOption(
      new Option('--by <metric>', 'rank --top groups by')
        .choices(['bytes', 'packets', 'flows'])
        .default('bytes'),
    )
    .option(
      '--since <time>',
      'flows starting at or after (ISO time, epoch seconds, or 2h = two hours ago)',
      (v) => parseTime(v, '--since'),
    )
    .option('--until <time>', 'flows starting before', (v) => parseTime(v, '--until'))
    .option(
      '-n, --limit <n>',
      'rows at most (default 10 with --top, else 20)',
      intOption('--limit', 1, 10_000_000),
    )
    .addOption(
      new Option('--format <fmt>', 'output format').choices(['table', 'json', 'csv']).default('table'),
    )
    .option(
      '--columns <list>',
      'list these columns (flow columns and the joined app_name, app_category, in_if_name, out_if_name, ' +
        'vrf_name, out_vrf_name, sampling_rate, ...)',
    )
    .addOption(
      new Option('--options [kind]', 'list the latest options data per exporter instead of flows').choices(
        OPTION_KINDS,
      ),
    )
    .action(async (flags: QueryFlags) => {
      parseStore(flags.store) // a bad URL fails before anything else
      const q: FlowQuery = { by: flags.by }
      // Parse before opening the store, so a bad filter fails fast with its position.
      if (flags.filter !== undefined) q.filter = parseFilter(flags.filter)
      if (flags.top !== undefined) {
        q.top = commaList(flags.top)
        // An empty list would list flows instead of ranking them: refused, like an unknown field.
        if (q.top.length === 0)
          throw new Error(
            `--top ${JSON.stringify(flags.top)} names no field: give FIELD[,FIELD], e.g. --top srcip,dstport`,
          )
      }
      if (flags.since !== undefined) q.since = flags.since
      if (flags.until !== undefined) q.until = flags.until
      if (flags.limit !== undefined) q.limit = flags.limit
      if (flags.columns !== undefined) q.columns = commaList(flags.columns)
      const store = await openStoreForQuery(flags.store)
      try {
        if (flags.options !== undefined) {
          const r = await store.options({
            ...(flags.options !== true ? { kind: flags.options } : {}),
            ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
          })
          process.stdout.write(formatResult(r, flags.format))
          return
        }
        const r = await store.query(q)
        const listing = q.top === undefined && q.columns === undefined
        process.stdout.write(formatResult(listing ? dropEmptyJoined(r) : r, flags.format))
      } finally {
        await store.close()
      }
    })
}
