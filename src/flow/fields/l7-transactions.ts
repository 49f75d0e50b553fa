/**
 * Shared machinery of the transaction field groups (`dns`, `http`, `tls`, `dhcp`): the transaction records
 * of one parser's transactions, which come from the pipeline's shared L7 engine (./l7-hub.ts).
 *
 * Transactions, decision (a): every transaction (a DNS query and its response, an HTTP request and its
 * response) becomes one IPFIX record of its own template, linked to its flow by the flow key
 * (sourceIPv4/IPv6Address, destination..., ports, protocolIdentifier, initiator first, as in the flow
 * record) and by flowStartMilliseconds, the start of the connection (the first record of the flow when an
 * active timeout splits it; observationTimeMilliseconds then falls inside one of its records). Why not
 * lists on the flow record (RFC 6313 basicList): keep-alive and pipelined HTTP or a long-lived DNS socket
 * carry hundreds of transactions, which would not fit one record or one message, and per-transaction
 * records leave as soon as the response head is parsed, instead of waiting for the flow's timeout. The
 * flow record itself carries the number of transaction records written for it (flowtelDnsTransactions /
 * flowtelHttpTransactions), so a collector knows how many to expect; a flow without any has a template
 * without the count fields (RecordKind.Transactions: most flows carry no transaction, and 4 octets per group
 * on every record made a third more messages). This is the same choice the `arp` group made for ARP packets
 * (src/flow/fields/arp.ts).
 *
 * Record timing: a transaction is written when it completes (during the packet that completes it), and the
 * open ones when the flow ends (`beforeExport`, just before its last record) or the run ends (`finishAll`).
 * Template IDs: 272/273 DNS (IPv4/IPv6), 274/275 HTTP, 276/277 TLS and DTLS, 278/279 DHCP, 280/281 QUIC.
 *
 * Cost when off: the group is not in the feature list. When on, it does no per-packet work of its own: the
 * hub's engine parses (flows that no parser claims cost one status byte test per packet after their first
 * payload packets, see src/l7/engine.ts) and the group writes the transactions of its parser.
 */
import type { PacketInfo } from '../../decode/packet.js'
import type { IpfixExporter } from '../../ipfix/exporter.js'
import type { RecordWriter } from '../../ipfix/record-writer.js'
import { Template } from '../../ipfix/template.js'
import type { FlowKey } from '../../l7/engine.js'
import type { ReassemblyStats } from '../../l7/reassembly.js'
import { resized } from '../../util/typed-arrays.js'
import { utf8Length } from '../../util/utf8.js'
import { RecordKind, type FieldList, type FlowFeature, type FlowView } from '../feature.js'
import type { L7Consumer, L7Hub } from './l7-hub.js'
import { addCounts } from '../../util/counts.js'

/** String octets per transaction record, shared among its string fields (see clipAll). */
const STRING_BUDGET = 1000

/**
 * True when strings of `units` UTF-16 code units in all may need clipAll: a code unit takes at most 3 UTF-8
 * octets, so fewer fit the budget whole (clipAll's own first test, without building its array).
 */
export const mayClip = (units: number, budget = STRING_BUDGET): boolean => units * 3 > budget

const KEY_V4: FieldList = [
  ['flowStartMilliseconds'],
  ['observationTimeMilliseconds'],
  ['sourceIPv4Address'],
  ['destinationIPv4Address'],
  ['sourceTransportPort'],
  ['destinationTransportPort'],
  ['protocolIdentifier'],
]
const KEY_V6: FieldList = [
  ['flowStartMilliseconds'],
  ['observationTimeMilliseconds'],
  ['sourceIPv6Address'],
  ['destinationIPv6Address'],
  ['sourceTransportPort'],
  ['destinationTransportPort'],
  ['protocolIdentifier'],
]

/** A transaction as the group hands it on (tests and the scorer use this without an exporter). */
export interface TransactionEvent<Tx> {
  key: FlowKey
  tx: Tx
  tsUs: number
}

/**
 * Shortens strings so that together they take at most `budget` UTF-8 octets: short ones stay whole, the
 * long ones share the rest equally.
 */
export function clipAll(strings: string[], budget = STRING_BUDGET): string[] {
  // A UTF-16 code unit takes at most 3 UTF-8 octets: short strings need no measuring.
  let units = 0
  for (const s of strings) units += s.length
  if (units * 3 <= budget) return strings
  const lens = strings.map(utf8Length)
  // All fit (no string is then cut below: the shortest left never exceeds its equal share).
  let octets = 0
  for (const l of lens) octets += l
  if (octets <= budget) return strings
  const order = lens.map((_, i) => i).sort((a, b) => lens[a]! - lens[b]!)
  const out = strings.slice()
  let left = budget
  let n = strings.length
  for (const i of order) {
    const share = Math.floor(left / n)
    const len = lens[i]!
    if (len > share) {
      // Cut at a character boundary (Buffer#toString drops a split multi-octet sequence into U+FFFD).
      let s = Buffer.from(strings[i]!, 'utf8').subarray(0, share).toString('utf8')
      while (Buffer.byteLength(s, 'utf8') > share) s = s.slice(0, -1)
      out[i] = s
      left -= Buffer.byteLength(s, 'utf8')
    } else left -= len
    n--
  }
  return out
}

/**
 * What an L7 group did in a run (probe summary). flowsClaimed, handoffs, bufferOverflows, parserErrors and
 * anomalies are those of the group's parser (anomalies also the group's own, of its records); flowsRejected (flows no parser claimed), slotsExhausted and
 * reassembly are the shared engine's.
 */
export interface L7Summary {
  flowsClaimed: number
  /** Flows handed to the group's parser by an in-band upgrade (STARTTLS...). */
  handoffs: number
  flowsRejected: number
  slotsExhausted: number
  bufferOverflows: number
  parserErrors: number
  transactions: number
  anomalies: Record<string, number>
  reassembly: ReassemblyStats
}

/**
 * What the transaction path of a group reads and counts, in an object of one class: five groups share the
 * base class's methods, and reads of fields of `this` there saw five classes (megamorphic property loads
 * on every transaction); reads of this object see one. The group's own writers are bound to it.
 */
class TxPath<Tx> {
  /** See TransactionGroup.count. */
  count = new Uint32Array(0)
  exporter: IpfixExporter | undefined = undefined
  v4: Template | undefined = undefined
  v6: Template | undefined = undefined
  listener: ((e: TransactionEvent<Tx>) => void) | undefined = undefined
  records = 0
  transactions = 0

  constructor(
    readonly writeTx: (tx: Tx, w: RecordWriter) => void,
    readonly fitTx: (tx: Tx, room: number) => void,
    readonly doneTx: () => void,
    readonly txTimeUs: (tx: Tx, tsUs: number) => number,
  ) {}

  onTx(key: FlowKey, tx: Tx, tsUs: number): void {
    const id = key.flowId
    if (id >= 0 && id < this.count.length) this.count[id]! += 1
    this.transactions++
    this.listener?.({ key, tx, tsUs })
    const ex = this.exporter
    if (ex === undefined) return
    const v6 = key.ipVersion === 6
    const t = v6 ? this.v6 : this.v4
    if (t === undefined) return
    this.fitTx(tx, ex.maxRecordLength - t.fixedLength)
    const startMs = Math.floor(key.startUs / 1000)
    const timeMs = Math.floor(this.txTimeUs(tx, tsUs) / 1000)
    // Written straight into the message; once more into the next one when it did not fit this one's rest.
    do {
      const w = ex.beginRecordFit(t)
      w.dateTimeMs(startMs)
      w.dateTimeMs(timeMs)
      if (v6) {
        w.ipv6(key.src)
        w.ipv6(key.dst)
      } else {
        w.ipv4(key.src[0]!)
        w.ipv4(key.dst[0]!)
      }
      w.u16(key.srcPort)
      w.u16(key.dstPort)
      w.u8(key.protocol)
      this.writeTx(tx, w)
    } while (!ex.endRecordFit())
    this.doneTx()
    this.records++
  }
}

export function isTransactionGroup(f: FlowFeature): f is TransactionGroup<unknown> {
  return f instanceof TransactionGroup
}

export abstract class TransactionGroup<Tx> implements FlowFeature, L7Consumer {
  abstract readonly name: string
  readonly varLengthBound = 0
  /** The shared engine does the packet work (./l7-hub.ts). */
  readonly noPacketWork = true
  /** The hub keeps the flow lifecycle (it counts transactions and calls clearCount: ./l7-hub.ts). */
  readonly noFlowState = true
  readonly l7Parsers: readonly string[]
  /** The group's own parser (the first of l7Parsers). */
  readonly parser: string
  /** The parser's transactions count however the flow reached it (TLS after STARTTLS too). */
  readonly l7Handoffs = true
  /**
   * The transaction path's state (TxPath). Its `count`: transactions written per flow since its last
   * record (for the flow record's count field); set to 0 when written (the hub's recordKind tells which
   * records carry it).
   */
  private readonly path: TxPath<Tx>
  private hub: L7Hub | undefined
  /** Anomalies of the group's own record writing (a record that could not carry all of a transaction). */
  private readonly recordAnomalies = new Map<string, number>()

  /** Set by tests and the scorer: receives every transaction (also when an exporter is attached). */
  get listener(): ((e: TransactionEvent<Tx>) => void) | undefined {
    return this.path.listener
  }
  set listener(l: ((e: TransactionEvent<Tx>) => void) | undefined) {
    this.path.listener = l
  }
  /** Transaction records written, and transactions seen (also without an exporter). */
  get records(): number {
    return this.path.records
  }
  get transactions(): number {
    return this.path.transactions
  }

  protected abstract readonly countField: string
  protected abstract readonly txFields: FieldList
  protected abstract readonly templateIds: readonly [v4: number, v6: number]
  /**
   * Writes the protocol fields of `tx` (after the key fields), in txFields order. It may be called twice for
   * one transaction: again into the next message when the record did not fit the rest of the current one.
   */
  protected abstract writeTx(tx: Tx, w: RecordWriter): void
  /**
   * Called once before writeTx with the room one message leaves for the protocol fields: a group whose
   * strings could exceed it (a TLS certificate) fits them to it here. The other groups share STRING_BUDGET
   * among their strings (clipAll).
   */
  protected fitTx(_tx: Tx, _room: number): void {}
  /** Called after the record of `tx` is written (drops what fitTx kept). */
  protected doneTx(): void {}
  /** Counts anomaly `name` in the group's summary (with its parser's). */
  protected countAnomaly(name: string): void {
    this.recordAnomalies.set(name, (this.recordAnomalies.get(name) ?? 0) + 1)
  }
  /** Capture time the record is stamped with (the request's, or the response's without a request). */
  protected abstract txTimeUs(tx: Tx, tsUs: number): number

  /**
   * `parser`: the name of the L7 parser (src/l7/registry.ts) whose transactions the group writes, or several
   * producing the same transaction type (tls: TLS and DTLS); the first is the group's own for the summary.
   */
  constructor(parser: string | readonly string[]) {
    this.l7Parsers = typeof parser === 'string' ? [parser] : parser
    this.parser = this.l7Parsers[0]!
    this.path = TransactionGroup.pathOf(this)
  }

  /**
   * The transaction path of `group`, with the subclass's methods (already on its prototype in the
   * constructor) bound to it, not wrapped in arrow functions: an arrow's `this.writeTx` would again be one
   * property load shared by five classes.
   */
  private static pathOf<Tx>(group: TransactionGroup<Tx>): TxPath<Tx> {
    return new TxPath<Tx>(
      group.writeTx.bind(group),
      group.fitTx.bind(group),
      group.doneTx.bind(group),
      group.txTimeUs.bind(group),
    )
  }

  useHub(hub: L7Hub): void {
    this.hub = hub
  }

  private get l7(): L7Hub {
    if (this.hub === undefined) throw new Error(`L7 group '${this.name}' has no L7 hub (see withL7Hub)`)
    return this.hub
  }

  /** The count field, in the records of flows that had transactions (RecordKind.Transactions) only. */
  fields(_ipVersion: 4 | 6, kind: number): FieldList {
    return (kind & RecordKind.Transactions) !== 0 ? [[this.countField]] : []
  }

  /** Adds the transaction templates to the exporter; transactions are then written as records. */
  attach(exporter: IpfixExporter): void {
    const t4 = Template.fromNames(this.templateIds[0], [...KEY_V4, ...this.txFields])
    const t6 = Template.fromNames(this.templateIds[1], [...KEY_V6, ...this.txFields])
    exporter.addTemplate(t4)
    exporter.addTemplate(t6)
    this.path.v4 = t4
    this.path.v6 = t6
    this.path.exporter = exporter
  }

  resize(capacity: number, used: number): void {
    this.path.count = resized(this.path.count, capacity, used)
  }

  onCreate(): void {}

  onPacket(_id: number, _p: PacketInfo): void {}

  onReset(): void {}

  onSwap(): void {}

  /** Only called for records with RecordKind.Transactions (the count field's only records). */
  write(id: number, _flow: FlowView, w: RecordWriter): void {
    const count = this.path.count
    w.u32(count[id]!)
    count[id] = 0
  }

  clearCount(id: number): void {
    this.path.count[id] = 0
  }

  summary(): L7Summary {
    const c = this.l7.engine.counters
    let flowsClaimed = 0
    let handoffs = 0
    let bufferOverflows = 0
    let parserErrors = 0
    for (const name of this.l7Parsers) {
      const pc = c.byParser.get(name)
      if (pc === undefined) continue
      flowsClaimed += pc.flowsClaimed
      handoffs += pc.handoffs
      bufferOverflows += pc.bufferOverflows
      parserErrors += pc.parserErrors
    }
    return {
      flowsClaimed,
      handoffs,
      flowsRejected: c.flowsRejected,
      slotsExhausted: c.slotsExhausted,
      bufferOverflows,
      parserErrors,
      transactions: this.transactions,
      anomalies: this.anomalies(),
      reassembly: { ...c.reassembly },
    }
  }

  /**
   * Adds the group's anomalies (its parsers' and its own, as in summary()) into `out` as `<group>.<name>`,
   * the live status's `l7Anomalies`.
   */
  addAnomaliesTo(out: Record<string, number>): void {
    for (const [k, v] of Object.entries(this.anomalies()))
      out[`${this.name}.${k}`] = (out[`${this.name}.${k}`] ?? 0) + v
  }

  /** The anomalies of the group's parsers and of its records, by name. */
  private anomalies(): Record<string, number> {
    const c = this.l7.engine.counters
    const out: Record<string, number> = {}
    for (const name of this.l7Parsers) {
      const pc = c.byParser.get(name)
      if (pc !== undefined) addCounts(out, pc.anomalies)
    }
    return addCounts(out, this.recordAnomalies)
  }

  /** End of the run: flows removed without a last record still emit their open transactions. */
  finishAll(): void {
    this.l7.endAll()
  }

  onL7Tx(key: FlowKey, tx: unknown, tsUs: number): void {
    this.path.onTx(key, tx as Tx, tsUs)
  }
}
