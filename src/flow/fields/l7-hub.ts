/**
 * One L7 engine per pipeline, shared by every L7 field group (`dns`, `http`, `tls`, `dhcp`, `app`).
 *
 * The hub is a flow feature without fields that createFieldGroups puts in front of the first L7 group. It
 * drives one L7Engine (src/l7/engine.ts) with the union of the parsers the enabled groups ask for, so each
 * flow is reassembled and parsed once, and hands every transaction to each group that takes that parser's
 * transactions. Parsers that only lead into a wanted one (an in-band upgrade: SMTP STARTTLS, PostgreSQL
 * SSLRequest... → `tls`, see `upgradesTo` in src/l7/parser.ts) run when some group takes that one's
 * transactions after a hand-off; flows are handed only to such parsers (HTTP CONNECT re-detects the tunnel's
 * protocol among them).
 *
 * Probe order: the parsers in the order the groups ask for them (groups in FIELD_GROUPS order), those whose
 * probe is only a plausibility test (DNS over TCP: a TLS record on a port DNS does not hint can pass it)
 * after the others, then the upgrade parsers in registry order. Port hints still go first (src/l7/engine.ts).
 *
 * A group that is off is not subscribed and costs nothing. A group may stop wanting a flow (`wantsFlow`:
 * `app` once the flow is named); when no subscribed group wants a claimed flow any more, its packets no
 * longer reach the parser (its state stays, so the flow's end still emits what was open then, as when each
 * group had its own engine).
 *
 * A flow the engine is done with (no parser claimed it after its probe packets, or its parser needs no
 * more bytes) and whose payload hooks are done is marked settled: each further packet of it costs the hub
 * one typed-array load, not a call into the engine and one per payload hook.
 *
 * L7 state is set up lazily, at a flow's first packet with captured payload (most flows of a scan have
 * none): until then the flow is fresh, and its create, packets and records cost the hub one byte of phase
 * and its start time, and nothing in the groups (a group with onFirstPayload sets its state up there, and
 * reads hasPayload before trusting it); the engine only keeps a SYN's sequence number (onHandshake), which
 * tells in-order payload from early payload once the flow turns live. Invariant: while a flow is fresh the
 * engine holds no other state for its id and no transaction was counted for it, so a new flow on an id whose
 * previous flow stayed fresh has nothing to end or clear (onCreate only clears the handshake).
 *
 * IP fragments: the engine and the payload hooks see a fragmented datagram once, whole, when its last
 * fragment comes (src/decode/ip-reassembly.ts), in the flow that fragment was counted in; the fragments
 * themselves do not reach them (but for a first fragment the capture cut short, which goes on as it is, as
 * before: its datagram cannot be rebuilt). The flow cache counts every fragment as before. Only fragments
 * take this path (one flag test per packet), and without an L7 group there is no hub.
 */
import { Anomalies } from '../../decode/anomalies.js'
import { IpReassembly } from '../../decode/ip-reassembly.js'
import type { PacketInfo } from '../../decode/packet.js'
import type { RecordWriter } from '../../ipfix/record-writer.js'
import { DEFAULT_L7_OPTIONS, L7Engine, type FlowKey, type L7EngineOptions } from '../../l7/engine.js'
import { L7_PARSERS } from '../../l7/registry.js'
import {
  EndReason,
  RecordKind,
  type Dir,
  type FieldList,
  type FlowFeature,
  type FlowView,
} from '../feature.js'
import { resized } from '../../util/typed-arrays.js'

/** A field group that takes L7 transactions. */
export interface L7Consumer {
  readonly name: string
  /** Parsers whose transactions the group takes, in the order they should be probed. */
  readonly l7Parsers: readonly string[]
  /**
   * Whether the group also takes the transactions of a parser that got the flow by a hand-off (TLS after
   * STARTTLS or inside an HTTP CONNECT tunnel), not by claiming it.
   */
  readonly l7Handoffs: boolean
  /** False once the group needs no more transactions of flow `id` (absent: it always does). */
  wantsFlow?(id: number): boolean
  /**
   * Present on groups whose flow records count the flow's transactions: the hub then counts the
   * transactions it gives such groups per flow (the record's RecordKind.Transactions bit), so the groups
   * need no per-flow lifecycle of their own: each sets its count of flow `id` to 0 when it writes it in a
   * record, and the hub calls clearCount when a new flow takes an id whose previous flow got transactions
   * (after its last record too: the open ones a flow removed without a record emits when its id is reused).
   */
  clearCount?(id: number): void
  /** A transaction of flow `key.flowId` made by parser `parser`. */
  onL7Tx(key: FlowKey, tx: unknown, tsUs: number, parser: string): void
  /** Called once, before the first flow, with the hub the group is subscribed to. */
  useHub(hub: L7Hub): void
  /**
   * Present on a group that looks at packet payloads itself (`app`'s content signatures): the hub calls it
   * for every packet with captured payload, right after the engine saw the packet (the group then declares
   * noPacketWork, so the flow cache makes no call of its own per packet for it).
   */
  onPayload?(id: number, p: PacketInfo, dir: Dir): void
  /**
   * With onPayload: true once onPayload has nothing more to do for flow `id` until it leaves (it must stay
   * true until the group's onCreate for that id).
   */
  payloadDone?(id: number): boolean
  /**
   * Flow `id` (created earlier) brings its first packet with captured payload, before the engine and any
   * onPayload see it: a group that keeps per-flow state for payload work sets it up here.
   */
  onFirstPayload?(id: number): void
}

export function isL7Consumer(f: FlowFeature): f is FlowFeature & L7Consumer {
  return 'l7Parsers' in f && 'onL7Tx' in f
}

/** A flow's phase (L7Hub.phase): no payload yet, L7 state set up, no further L7 work. */
const FRESH = 0
const LIVE = 1
const SETTLED = 2

const TCP = 6
const SYN = 0x02

/** Parsers probed after the others (see the file comment). */
const PROBED_LAST: ReadonlySet<string> = new Set(['dns'])

export class L7Hub implements FlowFeature {
  readonly name = 'l7'
  private readonly consumers: L7Consumer[] = []
  private built: L7Engine<unknown> | undefined
  /** Consumers per parser name. */
  private readonly routes = new Map<string, L7Consumer[]>()
  /** Per parser index: 1 when some consumer wants every flow of that parser (or of a parser it leads to). */
  private always = new Uint8Array(0)
  /** Per parser index: the consumers that may stop wanting a flow. */
  private conditional: L7Consumer[][] = []
  /** Some parser's flows are wanted only conditionally: test before each packet. */
  private gated = false
  /** Packets given to the engine so far (lets a group tell whether a transaction came with one packet). */
  packets = 0
  /** The consumers that count transactions per flow (clearCount), and how many they got per flow. */
  private counting: L7Consumer[] = []
  private counted = new Uint32Array(0)
  /** The groups with an onPayload hook (at most `app`). */
  private payloadConsumers: L7Consumer[] = []
  /** Per flow: FRESH, LIVE or SETTLED (see the file comment). */
  private phase = new Uint8Array(0)
  /** Per flow: its first packet's time (µs), for the engine when the flow turns live. */
  private createdUs = new Float64Array(0)
  /** The groups with an onFirstPayload hook. */
  private firstPayloadConsumers: L7Consumer[] = []
  /** Every payload hook tells when it is done (payloadDone): flows may settle. */
  private settles = false
  /** Rebuilds fragmented datagrams (the pipeline gives one that counts into its anomalies). */
  private reassembly = new IpReassembly(new Anomalies())

  constructor(private readonly opts: L7EngineOptions = DEFAULT_L7_OPTIONS) {}

  /** Adds a group; all groups subscribe before the first flow. */
  subscribe(c: L7Consumer): void {
    if (this.built !== undefined) throw new Error(`L7 group '${c.name}' subscribed after the first flow`)
    this.consumers.push(c)
    c.useHub(this)
  }

  /** Use `r` to rebuild fragmented datagrams (before the first packet). */
  reassembleWith(r: IpReassembly): void {
    this.reassembly = r
  }

  /** The shared engine (built on first use from the subscribed groups). */
  get engine(): L7Engine<unknown> {
    return (this.built ??= this.build())
  }

  fields(): FieldList {
    return []
  }

  resize(capacity: number, used: number): void {
    this.engine.resize(capacity, used)
    this.counted = resized(this.counted, capacity, used)
    this.phase = resized(this.phase, capacity, used)
    this.createdUs = resized(this.createdUs, capacity, used)
  }

  onCreate(id: number, _p: PacketInfo, _dir: Dir, tsUs: number): void {
    // A flow id is reused only after its flow left; a flow removed without a record (after an active
    // timeout, idle) still has to emit its open transactions. The hub runs before its groups, so they reset
    // their per-flow state after these transactions; the counting groups are told here. A previous flow
    // that stayed fresh left nothing of either (see the file comment).
    if (this.phase[id] !== FRESH) {
      this.engine.end(id)
      if (this.counted[id] !== 0) {
        for (const c of this.counting) c.clearCount!(id)
        this.counted[id] = 0
      }
      this.phase[id] = FRESH
    }
    this.createdUs[id] = tsUs
    this.engine.forgetHandshake(id)
  }

  /** True once flow `id` brought a packet with captured payload (its L7 state is set up). */
  hasPayload(id: number): boolean {
    return this.phase[id] !== FRESH
  }

  /** On the flow's last record, its open transactions go out first (so its record counts them). */
  beforeExport(id: number, flow: FlowView): void {
    if (this.phase[id] !== FRESH && flow.endReason(id) !== (EndReason.ActiveTimeout as number))
      this.engine.end(id)
  }

  /** RecordKind.Transactions when a counting group got a transaction of the flow since its last record. */
  recordKind(id: number): number {
    return this.counted[id] !== 0 ? RecordKind.Transactions : 0
  }

  onPacket(id: number, packet: PacketInfo, dir: Dir, tsUs: number): void {
    let p = packet
    // Fragments go to reassembly (even those of a settled flow, so no datagram waits there in vain); the
    // whole datagram goes on in place of the fragment that completed it.
    if (p.isFragment) {
      const whole = this.reassembly.add(p, tsUs)
      if (whole === undefined) return
      p = whole
    }
    const phase = this.phase[id]
    if (phase === SETTLED) return
    const e = this.built!
    if (phase === FRESH) {
      // Nothing for the engine (which reassembles only flows a parser claimed) but a SYN's sequence number,
      // nor for a payload hook.
      if (p.payloadCaptured === 0) {
        if ((p.tcpFlags & SYN) !== 0 && p.protocol === TCP) e.onHandshake(id, dir as number, p.tcpSeq)
        return
      }
      e.onCreate(id, this.createdUs[id]!)
      const fc = this.firstPayloadConsumers
      for (let i = 0; i < fc.length; i++) fc[i]!.onFirstPayload!(id)
      this.phase[id] = LIVE
    }
    // A packet without payload of a flow not yet probed (a handshake, an ACK) has nothing for the engine
    // (which reassembles only flows a parser claimed) nor for a payload hook.
    if (p.payloadCaptured === 0 && e.isUnprobed(id)) {
      if ((p.tcpFlags & SYN) !== 0 && p.protocol === TCP) e.onHandshake(id, dir as number, p.tcpSeq)
      return
    }
    let parse = true
    if (this.gated) {
      const pi = e.parserOf(id)
      if (pi >= 0 && this.always[pi] === 0 && !this.wanted(pi, id)) parse = false
    }
    if (parse) {
      this.packets++
      e.onPacket(id, p, dir as number, tsUs)
    }
    const pc = this.payloadConsumers
    if (p.payloadCaptured > 0) for (let i = 0; i < pc.length; i++) pc[i]!.onPayload!(id, p, dir)
    if (this.settles && e.isDone(id)) {
      for (let i = 0; i < pc.length; i++) if (!pc[i]!.payloadDone!(id)) return
      this.phase[id] = SETTLED
    }
  }

  onReset(id: number): void {
    this.counted[id] = 0
  }

  onSwap(id: number): void {
    this.engine.onSwap(id)
  }

  write(_id: number, _flow: FlowView, _w: RecordWriter): void {}

  /** Flow `id` leaves: its open transactions go out (a no-op when it has no L7 state). */
  end(id: number): void {
    this.engine.end(id)
  }

  /** True while a flow's end emits its open transactions. */
  get finishing(): boolean {
    return this.built?.finishing ?? false
  }

  /** End of the run: every flow that still has L7 state emits its open transactions. */
  endAll(): void {
    this.engine.endAll()
  }

  private wanted(pi: number, id: number): boolean {
    for (const c of this.conditional[pi]!) if (c.wantsFlow!(id)) return true
    return false
  }

  private route(key: FlowKey, tx: unknown, tsUs: number, parser: string): void {
    const cs = this.routes.get(parser)
    if (cs === undefined) return
    const handedOff = key.claimedBy !== parser
    const id = key.flowId
    for (const c of cs)
      if (!handedOff || c.l7Handoffs) {
        if (c.clearCount !== undefined && id >= 0 && id < this.counted.length) this.counted[id]! += 1
        c.onL7Tx(key, tx, tsUs, parser)
      }
  }

  private build(): L7Engine<unknown> {
    const names: string[] = []
    for (const c of this.consumers)
      for (const n of c.l7Parsers) {
        if (L7_PARSERS[n] === undefined)
          throw new Error(`L7 group '${c.name}' asks for unknown parser '${n}'`)
        if (!names.includes(n)) names.push(n)
      }
    names.sort((a, b) => (PROBED_LAST.has(a) ? 1 : 0) - (PROBED_LAST.has(b) ? 1 : 0))
    for (const n of names) this.routes.set(n, [])
    for (const c of this.consumers) for (const n of c.l7Parsers) this.routes.get(n)!.push(c)
    // Hand-off targets: parsers some group takes handed-off transactions of; then the parsers leading there.
    const targets = names.filter((n) => this.routes.get(n)!.some((c) => c.l7Handoffs))
    for (const [n, p] of Object.entries(L7_PARSERS))
      if (!names.includes(n) && p.upgradesTo?.some((t) => targets.includes(t)) === true) {
        names.push(n)
        this.routes.set(n, [])
      }
    // The groups a flow of parser `n` may serve: its own, and those of the targets it may hand off to.
    const served = (n: string): L7Consumer[] => {
      const up = L7_PARSERS[n]!.upgradesTo ?? []
      const to = targets.filter((t) => t !== n && (up.includes(t) || up.includes('*')))
      return [
        ...new Set([
          ...this.routes.get(n)!,
          ...to.flatMap((t) => this.routes.get(t)!.filter((c) => c.l7Handoffs)),
        ]),
      ]
    }
    this.always = Uint8Array.from(names, (n) => (served(n).some((c) => c.wantsFlow === undefined) ? 1 : 0))
    this.conditional = names.map((n) => served(n).filter((c) => c.wantsFlow !== undefined))
    this.gated = this.always.includes(0)
    this.counting = this.consumers.filter((c) => c.clearCount !== undefined)
    this.payloadConsumers = this.consumers.filter((c) => c.onPayload !== undefined)
    this.firstPayloadConsumers = this.consumers.filter((c) => c.onFirstPayload !== undefined)
    this.settles = this.payloadConsumers.every((c) => c.payloadDone !== undefined)
    return new L7Engine<unknown>(
      names.map((n) => L7_PARSERS[n]!),
      (key, tx, tsUs, parser) => this.route(key, tx, tsUs, parser),
      { ...this.opts, handoffTargets: targets },
    )
  }
}

/**
 * Puts one L7 hub in front of the first L7 group of `features` and subscribes every L7 group to it
 * (nothing happens without L7 groups). Returns the feature list to use.
 */
export function withL7Hub(features: FlowFeature[], opts?: L7EngineOptions): FlowFeature[] {
  const first = features.findIndex(isL7Consumer)
  if (first < 0) return features
  const hub = new L7Hub(opts)
  for (const f of features) if (isL7Consumer(f)) hub.subscribe(f)
  return [...features.slice(0, first), hub, ...features.slice(first)]
}
