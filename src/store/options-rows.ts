/**
 * Options data records (RFC 7011 §3.4.2.2; NetFlow v9 options, RFC 3954 §6.1) → rows of the options table,
 * which the query compiler joins onto flow rows at query time (query/joined.ts). One record can give several
 * rows, one per kind it describes:
 *
 * - interface:   key ingressInterface / egressInterface / NetFlow v9 scopeInterface / sFlow ifIndex; interfaceName,
 *                interfaceDescription (RFC 7012; Cisco, Juniper, Nokia send these).
 * - application: key applicationId (RFC 6759, hex of its octets, as the flow rows hold it); applicationName,
 *                applicationDescription, applicationCategoryName (our probe's template 290, Cisco NBAR).
 * - vrf:         key ingressVRFID and egressVRFID (one row per distinct id); VRFname.
 * - sampling:    key selectorId, else samplerId, else '' (the whole exporter/domain); the rate 1:N from
 *                samplingInterval, samplerRandomInterval, samplingPacketInterval + samplingPacketSpace
 *                (RFC 5477: N = (interval + space) / interval), samplingSize / samplingPopulation, or
 *                samplingProbability; samplerName or selectorName as the name.
 * - stats:       exporter statistics (RFC 7011 §4.1-4.3: exported message/flow/octet totals, ignored,
 *                notSent and dropped counts); key exportingProcessId or meteringProcessId or ''.
 * - other:       every other options record (RFC 5610 type records, templates, ...), key = its scope.
 *
 * Every row keeps the whole record as JSON (`data`). The recorder drops a row identical to the last one
 * stored for the same (exporter, domain, kind, key) unless it is older than the refresh period, so exporters
 * that resend their options every minute do not grow the table; its memory is bounded.
 */
import type { OptionKind } from '../schema/option-kinds.js'
import type { CollectedRecord, DecodeOutput } from '../collector/decode-message.js'
import { recordToJson, valueToJson, type DecodedField } from '../ipfix/decoder.js'

export type { OptionKind } from '../schema/option-kinds.js'

export interface OptionRow {
  /** Collector clock, µs since 1970. */
  readonly time_received: bigint
  readonly exporter: string
  readonly observation_domain: number
  readonly kind: OptionKind
  readonly key: string
  /** '' when absent (the tables hold no NULLs: ClickHouse 18.16 joins are simpler without). */
  readonly name: string
  readonly description: string
  readonly category: string
  /** Sampling rate 1:N; 0 when not a sampling row or unknown. */
  readonly rate: bigint
  /** The whole record, recordToJson form. */
  readonly data: string
}

export const OPTION_COLUMNS = [
  'time_received',
  'exporter',
  'observation_domain',
  'kind',
  'key',
  'name',
  'description',
  'category',
  'rate',
  'data',
] as const

const STATS = new Set([
  'exportedMessageTotalCount',
  'exportedOctetTotalCount',
  'exportedFlowRecordTotalCount',
  'ignoredPacketTotalCount',
  'ignoredOctetTotalCount',
  'notSentFlowTotalCount',
  'notSentPacketTotalCount',
  'notSentOctetTotalCount',
  'droppedPacketTotalCount',
  'droppedOctetTotalCount',
])

/** A field value as key text: numbers in decimal, octets in hex (the flow rows' JSON form). */
function keyText(f: DecodedField | undefined): string | undefined {
  if (f === undefined) return undefined
  const v = valueToJson(f.type, f.value)
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined
}

function text(f: DecodedField | undefined): string {
  return f !== undefined && typeof f.value === 'string' ? f.value : ''
}

function number(f: DecodedField | undefined): number | undefined {
  if (f === undefined) return undefined
  const v = f.value
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined
  if (typeof v === 'bigint') return Number(v)
  return undefined
}

/**
 * The sampling rate 1:N a record states, if any (rounded; 0 and nonsense give undefined, and so does a rate
 * no 64-bit column holds exactly: a samplingProbability of 5e-324 is 1:Infinity).
 */
function samplingRate(by: (name: string) => DecodedField | undefined): number | undefined {
  const rate = statedRate(by)
  return rate !== undefined && Number.isSafeInteger(rate) && rate >= 1 ? rate : undefined
}

function statedRate(by: (name: string) => DecodedField | undefined): number | undefined {
  const size = number(by('samplingSize'))
  const population = number(by('samplingPopulation'))
  const nOutOfN = size !== undefined && population !== undefined && size >= 1 && population >= size
  // RFC 5477 selectorAlgorithm 3 (random n-out-of-N) states its rate as size / population.
  if (number(by('selectorAlgorithm')) === 3 && nOutOfN) return Math.round(population / size)
  const interval = number(by('samplingInterval')) ?? number(by('samplerRandomInterval'))
  if (interval !== undefined && interval >= 1) return Math.round(interval)
  const pi = number(by('samplingPacketInterval'))
  const ps = number(by('samplingPacketSpace'))
  if (pi !== undefined && pi >= 1) return Math.round((pi + (ps ?? 0)) / pi)
  if (nOutOfN) return Math.round(population / size)
  const p = number(by('samplingProbability'))
  if (p !== undefined && p > 0 && p <= 1) return Math.round(1 / p)
  return undefined
}

/** The option rows one options data record gives (none for a flow record). */
export function optionRows(r: CollectedRecord, receivedUs: bigint): OptionRow[] {
  if (!r.isOptions) return []
  const first = new Map<string, DecodedField>()
  for (const f of r.fields) if (!first.has(f.name)) first.set(f.name, f)
  const by = (n: string): DecodedField | undefined => first.get(n)
  const data = JSON.stringify(recordToJson(r))
  const out: OptionRow[] = []
  const row = (kind: OptionKind, key: string, name = '', description = '', category = '', rate = 0): void => {
    out.push({
      time_received: receivedUs,
      exporter: r.exporter,
      observation_domain: r.odid,
      kind,
      key,
      name,
      description,
      category,
      rate: BigInt(rate),
      data,
    })
  }
  const ifName = by('interfaceName')
  const ifDesc = by('interfaceDescription')
  if (ifName !== undefined || ifDesc !== undefined) {
    const keys = new Set(
      [by('ingressInterface'), by('egressInterface'), by('scopeInterface'), by('ifIndex')].flatMap(
        (f) => keyText(f) ?? [],
      ),
    )
    for (const k of keys) row('interface', k, text(ifName), text(ifDesc))
  }
  const app = keyText(by('applicationId'))
  if (app !== undefined && (by('applicationName') ?? by('applicationDescription')) !== undefined)
    row(
      'application',
      app,
      text(by('applicationName')),
      text(by('applicationDescription')),
      text(by('applicationCategoryName')),
    )
  const vrf = by('VRFname')
  if (vrf !== undefined) {
    const keys = new Set([by('ingressVRFID'), by('egressVRFID')].flatMap((f) => keyText(f) ?? []))
    for (const k of keys) row('vrf', k, text(vrf))
  }
  const rate = samplingRate(by)
  if (rate !== undefined) {
    const key = keyText(by('selectorId')) ?? keyText(by('samplerId')) ?? ''
    row('sampling', key, text(by('samplerName')) || text(by('selectorName')), '', '', rate)
  }
  if (r.fields.some((f) => STATS.has(f.name)))
    row('stats', keyText(by('exportingProcessId')) ?? keyText(by('meteringProcessId')) ?? '')
  if (out.length === 0) {
    const scope = r.fields.slice(0, r.scopeCount).map((f) => `${f.name}=${String(keyText(f) ?? '')}`)
    row('other', scope.join(','))
  }
  return out
}

export interface OptionsRecorderOptions {
  /** An unchanged row is stored again after this long (ms), so "latest" stays fresh. Default 3 600 000. */
  refreshMs?: number
  /** Rows remembered for the de-duplication at most. Default 100 000. */
  maxRemembered?: number
}

/** Rows an options sink stores: identical repeats are dropped until the refresh period passes. */
export class OptionsRecorder {
  private readonly last = new Map<string, { data: string; at: number }>()
  private pending: OptionRow[] = []
  readonly stats = { rows: 0, repeats: 0 }
  private readonly refreshMs: number
  private readonly maxRemembered: number

  constructor(opts: OptionsRecorderOptions = {}) {
    this.refreshMs = opts.refreshMs ?? 3_600_000
    this.maxRemembered = opts.maxRemembered ?? 100_000
  }

  /** Takes the options records of one decode output; returns how many rows were queued. */
  add(o: DecodeOutput, nowMs = Date.now()): number {
    let n = 0
    for (const r of o.records) {
      if (!r.isOptions) continue
      for (const row of optionRows(r, BigInt(nowMs) * 1000n)) {
        const k = `${row.exporter}|${row.observation_domain}|${row.kind}|${row.key}`
        const prev = this.last.get(k)
        if (prev !== undefined && prev.data === row.data && nowMs - prev.at < this.refreshMs) {
          this.stats.repeats++
          continue
        }
        if (prev === undefined && this.last.size >= this.maxRemembered) this.last.clear()
        this.last.set(k, { data: row.data, at: nowMs })
        this.pending.push(row)
        n++
      }
    }
    this.stats.rows += n
    return n
  }

  /** The rows queued since the last call. */
  take(): OptionRow[] {
    const p = this.pending
    this.pending = []
    return p
  }
}
