/**
 * @module l7/engine
 * Connects L7 parsers (src/l7/parser.ts) to flows: content-based selection on the first payload packets,
 * TCP reassembly per direction (src/l7/reassembly.ts, RFC 9293), parser buffering by `needed`, parser
 * hand-off (an in-band upgrade such as STARTTLS: `switchTo`), and bounded, pooled per-flow state.
 *
 * One engine serves every L7 field group of a pipeline (src/flow/fields/l7-hub.ts): the parsers run once
 * per flow and each transaction goes to `onTx` with the name of the parser that made it.
 *
 * Cost model: a flow costs one byte of status and one probe per payload packet for its first
 * `probePackets` payload packets; a flow no parser claims is then marked and skipped with one typed-array
 * load per packet. Only claimed flows get a pooled slot (at most `maxFlows` at once), reassembly buffers
 * (charged to a per-flow and a total byte budget) and parser state. When the parser needs no more bytes
 * the flow's slot is released at once, so bulk transfers after the exchanges that matter cost nothing.
 *
 * Segments that arrive out of order before the claim (RFC 9293 allows any order): a TCP segment whose probe
 * fails is copied and held while the flow is unprobed (at most `probePackets` - 1 of them), unless it is
 * known to be in order: its direction's handshake was seen (onHandshake) and it starts at the next sequence
 * number expected. When a later packet claims the flow, the held segments of its direction that lie
 * after it go to the new slot's reassembler, so a request whose second segment came first is still read
 * whole. Holds are bounded per flow and in total, and end with the probing.
 */
import type { PacketInfo } from '../decode/packet.js'
import { resized, swapDirectionBits, swapEntries } from '../util/typed-arrays.js'
import { L7Dir, type AnyL7Parser, type L7Context, type L7Transport } from './parser.js'
import { Budget, newReassemblyStats, StreamReassembler, type ReassemblyStats } from './reassembly.js'

export interface L7EngineOptions {
  /** Flows with L7 state at once; further claimed flows are counted (`slotsExhausted`) and skipped. */
  maxFlows: number
  /** Reassembly and parser buffers per flow (both directions), bytes. */
  maxBytesPerFlow: number
  /** Reassembly and parser buffers of all flows, bytes. */
  maxBytesTotal: number
  /** Payload packets (both directions) looked at before a flow is declared not L7. */
  probePackets: number
  /**
   * Parsers that may take over a flow from another one (`switchTo`, src/l7/parser.ts); absent: all. A
   * hand-off to any other parser ends L7 work on the flow.
   */
  handoffTargets?: readonly string[]
}

export const DEFAULT_L7_OPTIONS: L7EngineOptions = {
  maxFlows: 65536,
  maxBytesPerFlow: 256 * 1024,
  maxBytesTotal: 256 * 1024 * 1024,
  probePackets: 4,
}

/** What happened to the flows of one parser. */
export interface L7ParserCounters {
  /** Flows this parser claimed by content. */
  flowsClaimed: number
  /** Flows handed to this parser by another one (an in-band upgrade such as STARTTLS). */
  handoffs: number
  bufferOverflows: number
  parserErrors: number
  /** Anomalies of this parser's flows (its own and the engine's). */
  anomalies: Map<string, number>
}

export interface L7Counters {
  flowsClaimed: number
  flowsRejected: number
  slotsExhausted: number
  bufferOverflows: number
  parserErrors: number
  handoffs: number
  anomalies: Map<string, number>
  reassembly: ReassemblyStats
  /** Per parser name. */
  byParser: Map<string, L7ParserCounters>
}

/** The 5-tuple of a claimed flow, initiator first, copied from the packet that claimed it. */
export interface FlowKey {
  ipVersion: number
  src: Uint32Array
  dst: Uint32Array
  srcPort: number
  dstPort: number
  protocol: number
  /** First packet of the flow (µs). */
  startUs: number
  /** The flow cache's id of the flow (valid until the flow leaves). */
  flowId: number
  /** The parser that claimed the flow by content (another one may serve it after a hand-off). */
  claimedBy: string
}

/**
 * Receives every transaction of every flow; `parser` is the name of the parser that produced it (one
 * engine runs several).
 */
export type TxHandler<Tx> = (key: FlowKey, tx: Tx, tsUs: number, parser: string) => void

const NO_BYTES = new Uint8Array(0)

/** Room allocated ahead for pending input at most (beyond it the buffer grows as bytes come). */
const MAX_PENDING_ROOM = 1 << 16
/**
 * Pending input waits in a buffer from the engine's pools (a message cut across segments is the common case:
 * HTTP heads, TLS records): one pool per size in ROOM_SIZES, each keeping up to POOL_KEEP of its buffers
 * between uses (4.5 MiB at most in all), so held input costs neither an allocation nor zeroing once the
 * pools are warm. One size holds the largest TLS record the tls parser accepts (16384 + 2048 octets and its
 * header), so a record does not take twice its room. Larger input is allocated to size and left to the GC.
 */
const ROOM_SIZES = [4096, 8192, 18688, 32768, MAX_PENDING_ROOM]
const POOL_KEEP = [256, 64, 56, 32, 16]

/** Index in ROOM_SIZES of the smallest room that holds `size` bytes; -1 above MAX_PENDING_ROOM. */
function roomClass(size: number): number {
  for (let c = 0; c < ROOM_SIZES.length; c++) if (size <= ROOM_SIZES[c]!) return c
  return -1
}

/** Hand-offs per flow at most (a parser that hands back and forth is cut off). */
const MAX_HANDOFFS = 4

/** Bytes of failed-probe segments held per unprobed flow at most (see the file comment). */
const MAX_HELD_PER_FLOW = 64 * 1024
/** Share of `maxBytesTotal` that held failed-probe segments of all unprobed flows may take. */
const HELD_SHARE_OF_TOTAL = 1 / 16

/** A failed-probe TCP segment held for the parser that may claim its flow later. */
interface HeldSegment {
  dir: L7Dir
  seq: number
  data: Uint8Array
}

/** The held segments of an unprobed TCP flow whose probes failed. */
class Unclaimed {
  bytes = 0
  readonly segs: HeldSegment[] = []
}

function newParserCounters(): L7ParserCounters {
  return { flowsClaimed: 0, handoffs: 0, bufferOverflows: 0, parserErrors: 0, anomalies: new Map() }
}

/** (0, the value of an id the engine never saw, is NONE: end() of a flow that had no payload reads one byte.) */
const ST_NONE = 0
const ST_ACTIVE = 1
const ST_UNPROBED = 2

const TCP = 6
const UDP = 17
const SYN = 0x02

class Slot<Tx> implements L7Context<Tx> {
  parser: AnyL7Parser | undefined
  /** Index of `parser` in the engine's parser list (-1 when free or re-probing). */
  parserIndex = -1
  handoffs = 0
  /** After a hand-off to '': the parser that handed off (not a candidate), -1 otherwise; chunks tried. */
  reprobeFrom = -1
  reprobeTries = 0
  state: unknown
  transport: L7Transport = 'tcp'
  dead = false
  tsUs = 0
  readonly key: FlowKey = {
    ipVersion: 0,
    src: new Uint32Array(4),
    dst: new Uint32Array(4),
    srcPort: 0,
    dstPort: 0,
    protocol: 0,
    startUs: 0,
    flowId: -1,
    claimedBy: '',
  }
  readonly budget: Budget
  readonly streams: [StreamReassembler, StreamReassembler]
  /**
   * Unconsumed parser input per direction: an owned buffer whose first `held` bytes wait (the rest is room
   * for what follows, so a message spread over many segments is copied once, not once per segment), and
   * the total length the parser needs.
   */
  readonly pending: [Uint8Array | undefined, Uint8Array | undefined] = [undefined, undefined]
  readonly held = [0, 0]
  readonly need = [0, 0]
  /** Bytes per direction the parser skips next (L7Parser.skip): dropped without a parse call. */
  readonly skip = [0, 0]

  constructor(
    private readonly engine: L7Engine<Tx>,
    total: Budget,
    perFlow: number,
    stats: ReassemblyStats,
  ) {
    this.budget = new Budget(perFlow, total)
    this.streams = [
      new StreamReassembler(this.budget, stats, {
        data: (b) => this.data(L7Dir.ToServer, b),
        gap: (n) => this.gap(L7Dir.ToServer, n),
      }),
      new StreamReassembler(this.budget, stats, {
        data: (b) => this.data(L7Dir.ToClient, b),
        gap: (n) => this.gap(L7Dir.ToClient, n),
      }),
    ]
  }

  emit(tx: Tx): void {
    this.engine.onTx(this.key, tx, this.tsUs, this.parser?.name ?? '')
  }
  anomaly(name: string): void {
    this.engine.count(name, this.parserIndex)
  }

  reset(): void {
    this.streams[0].reset()
    this.streams[1].reset()
    this.dropPending(0)
    this.dropPending(1)
    // What a parser charged (L7Context.budget) and did not release goes back to the total, counted, so one
    // parser's slip cannot shrink the budget of every later flow.
    const left = this.budget.used
    if (left !== 0) {
      this.anomaly('l7_budget_not_released')
      this.budget.release(left)
    }
    this.skip[0] = 0
    this.skip[1] = 0
    this.parser = undefined
    this.parserIndex = -1
    this.handoffs = 0
    this.reprobeFrom = -1
    this.reprobeTries = 0
    this.state = undefined
    this.dead = false
  }

  private dropPending(d: number): void {
    const b = this.pending[d]
    if (b !== undefined) {
      this.budget.release(this.held[d]!)
      this.engine.recycle(b)
    }
    this.pending[d] = undefined
    this.held[d] = 0
    this.need[d] = 0
  }

  /** Keeps `rest` (charged to the budget already) as direction `d`'s pending input, with room for `need`. */
  private hold(d: L7Dir, rest: Uint8Array, need: number): void {
    const buf = this.engine.room(Math.max(rest.byteLength, Math.min(need, MAX_PENDING_ROOM)))
    buf.set(rest)
    this.pending[d] = buf
    this.held[d] = rest.byteLength
    this.need[d] = need
  }

  /** Parser input for direction `d` (a reassembled TCP chunk or a UDP datagram). */
  data(d: L7Dir, bytes: Uint8Array): void {
    const parser = this.parser
    if (this.dead) return
    if (parser === undefined) {
      if (this.reprobeFrom >= 0) this.reprobe(d, bytes)
      return
    }
    let buf = bytes
    const skip = this.skip[d]!
    if (skip > 0) {
      if (buf.byteLength <= skip) {
        this.skip[d] = skip - buf.byteLength
        return
      }
      this.skip[d] = 0
      buf = buf.subarray(skip)
    }
    const old = this.pending[d]
    /** The pending buffer `buf` views once complete: back to the pool after the parse. */
    let spent: Uint8Array | undefined
    if (old !== undefined) {
      // `old` is charged to the budget already; charge the new bytes too while they wait together.
      if (!this.budget.reserve(buf.byteLength)) return this.overflow()
      const held = this.held[d]!
      const total = held + buf.byteLength
      let into = old
      if (total > old.byteLength) {
        into = this.engine.room(Math.max(total, Math.min(2 * old.byteLength, MAX_PENDING_ROOM)))
        into.set(old.subarray(0, held))
        this.engine.recycle(old)
        this.pending[d] = into
      }
      into.set(buf, held)
      this.held[d] = total
      if (total < this.need[d]!) return
      this.pending[d] = undefined
      this.held[d] = 0
      this.need[d] = 0
      this.budget.release(total)
      buf = into.subarray(0, total)
      spent = into
    }
    const r = parser.parse(this.state, d, buf, this)
    if (r.kind === 'ok') {
      if (parser.skip !== undefined) this.skip[d] = parser.skip(this.state, d)
    } else if (r.kind === 'incomplete') {
      const rest = buf.byteLength - r.consumed
      if (!this.budget.reserve(rest)) return this.overflow()
      this.hold(d, buf.subarray(r.consumed), r.needed)
    } else if (r.kind === 'error') {
      this.anomaly(r.anomaly)
      this.engine.counters.parserErrors++
      this.engine.parserCounters(this.parserIndex).parserErrors++
      this.dead = true
    } else if (r.kind === 'switch') {
      return this.handOff(r.to, d, buf.subarray(r.consumed))
    }
    if (spent !== undefined) this.engine.recycle(spent)
    if (!parser.wantsMore(this.state)) this.dead = true
    if (this.dead) this.stop()
  }

  /** L7 work on the flow is over: reassembly stops and releases what it holds. */
  private stop(): void {
    this.dead = true
    this.streams[0].clear()
    this.streams[1].clear()
  }

  /** Parser `index` serves the flow from now on (a claim or a hand-off). */
  begin(index: number): void {
    const p = this.engine.parserAt(index)
    this.parser = p
    this.parserIndex = index
    this.state = p.newState(this.transport)
    this.reprobeFrom = -1
  }

  /**
   * The flow continues as protocol `to` ('' = whatever the following bytes look like): the old parser
   * emits what it holds open, then a fresh state of the new one gets the bytes the old one left unconsumed,
   * the other direction's (which arrived earlier) first, then `rest` of direction `d`. A target the engine
   * does not hand flows to (no field group wants it) ends L7 work on the flow, as if the parser were done.
   */
  private handOff(to: string, d: L7Dir, rest: Uint8Array): void {
    const from = this.parserIndex
    this.parser!.finish(this.state, this)
    const o = d === L7Dir.ToServer ? L7Dir.ToClient : L7Dir.ToServer
    const pending = this.pending[o]
    const held = pending?.subarray(0, this.held[o])
    if (held !== undefined) this.budget.release(held.byteLength)
    this.pending[o] = undefined
    this.held[o] = 0
    this.need[o] = 0
    // What the old parser meant to skip is the new parser's to read.
    this.skip[0] = 0
    this.skip[1] = 0
    this.parser = undefined
    this.parserIndex = -1
    this.state = undefined
    if (++this.handoffs > MAX_HANDOFFS) {
      this.anomaly('l7_handoff_loop')
      return this.stop()
    }
    if (to === '') {
      this.reprobeFrom = from
      this.reprobeTries = 0
    } else {
      const next = this.engine.handoffTarget(to)
      if (next < 0) return this.stop()
      this.begin(next)
      this.engine.countHandoff(next)
    }
    if (held !== undefined) this.data(o, held)
    if (!this.dead && rest.byteLength > 0) this.data(d, rest)
  }

  /** After a hand-off to '': the first bytes a hand-off target recognises choose the parser. */
  private reprobe(d: L7Dir, bytes: Uint8Array): void {
    const k = this.key
    const next = this.engine.matchHandoff(bytes, d, this.transport, k.srcPort, k.dstPort, this.reprobeFrom)
    if (next < 0) {
      if (++this.reprobeTries >= this.engine.probePackets) this.stop()
      return
    }
    this.begin(next)
    this.engine.countHandoff(next)
    this.data(d, bytes)
  }

  gap(d: L7Dir, size: number): void {
    if (this.dead || this.parser === undefined) return
    // A gap inside bytes the parser skips anyway changes nothing but how many are left to skip.
    const skip = this.skip[d]!
    if (skip > size && this.parser.gapsInSkip !== true) {
      this.skip[d] = skip - size
      return
    }
    this.skip[d] = 0
    this.dropPending(d)
    this.parser.gap?.(this.state, d, size, this)
  }

  private overflow(): void {
    this.anomaly('l7_buffer_overflow')
    this.engine.counters.bufferOverflows++
    this.engine.parserCounters(this.parserIndex).bufferOverflows++
    this.stop()
  }

  /** End of the flow: deliver what reassembly holds, then let the parser emit its open transactions. */
  finish(): void {
    if (!this.dead) {
      this.streams[0].flush()
      this.streams[1].flush()
    }
    this.parser?.finish(this.state, this)
  }
}

export class L7Engine<Tx> {
  readonly counters: L7Counters = {
    flowsClaimed: 0,
    flowsRejected: 0,
    slotsExhausted: 0,
    bufferOverflows: 0,
    parserErrors: 0,
    handoffs: 0,
    anomalies: new Map(),
    reassembly: newReassemblyStats(),
    byParser: new Map(),
  }
  readonly total: Budget
  /** True while a flow's end (or a restart after a direction swap) emits its open transactions. */
  finishing = false
  private status = new Uint8Array(0)
  private tries = new Uint8Array(0)
  private slotOf = new Int32Array(0)
  private startUs = new Float64Array(0)
  private readonly slots: Slot<Tx>[] = []
  /** Per flow id: 1 + index in `unclaimed` of its pre-claim state, 0 for none. */
  private unclaimedOf = new Int32Array(0)
  private readonly unclaimed: Unclaimed[] = []
  private readonly unclaimedFree: number[] = []
  /** Bytes held by all unprobed flows (see holdUnclaimed). */
  readonly held: Budget
  /**
   * Per flow id and direction (2 id + dir): the next sequence number expected of an unprobed flow, valid where
   * `expectKnown` has the direction's bit (its SYN was seen: onHandshake, before or after onCreate; cleared
   * by forgetHandshake when a new flow takes the id).
   */
  private expect = new Uint32Array(0)
  private expectKnown = new Uint8Array(0)
  /** Pending-input buffers not in use, per size class (see roomClass). */
  private readonly pools: Uint8Array[][] = POOL_KEEP.map(() => [])
  private readonly free: number[] = []
  /** Parser indexes per well-known port (the hint), and the per-parser counters by index. */
  private readonly byPort = new Map<number, number[]>()
  /** Per parser index: 1 when it runs over TCP, and over UDP (tested before its probe). */
  private readonly onTcp: Uint8Array
  private readonly onUdp: Uint8Array
  private readonly perParser: L7ParserCounters[]
  /** Per parser index: 1 when flows may be handed to it. */
  private readonly targets: Uint8Array
  /** Where counts of a flow without a parser would go (none do today). */
  private readonly unattributed = newParserCounters()
  /** The packet buffer payload views were last made of, and its ArrayBuffer and offset (see payloadOf). */
  private viewedBuf: Uint8Array = NO_BYTES
  private viewedAb: ArrayBufferLike = NO_BYTES.buffer
  private viewedBase = 0

  constructor(
    private readonly parsers: readonly AnyL7Parser[],
    readonly onTx: TxHandler<Tx>,
    private readonly opts: L7EngineOptions = DEFAULT_L7_OPTIONS,
  ) {
    this.total = new Budget(opts.maxBytesTotal)
    this.held = new Budget(Math.floor(opts.maxBytesTotal * HELD_SHARE_OF_TOTAL))
    parsers.forEach((p, i) => {
      for (const port of p.ports) {
        const l = this.byPort.get(port) ?? []
        l.push(i)
        this.byPort.set(port, l)
      }
    })
    this.onTcp = Uint8Array.from(parsers, (p) => (p.transports.includes('tcp') ? 1 : 0))
    this.onUdp = Uint8Array.from(parsers, (p) => (p.transports.includes('udp') ? 1 : 0))
    const t = opts.handoffTargets
    this.targets = Uint8Array.from(parsers, (p) => (t === undefined || t.includes(p.name) ? 1 : 0))
    this.perParser = parsers.map((p) => {
      const c = newParserCounters()
      this.counters.byParser.set(p.name, c)
      return c
    })
  }

  /**
   * A buffer of at least `size` bytes for pending input (its content is whatever it held before: only the
   * bytes written into it are read).
   */
  room(size: number): Uint8Array {
    const c = roomClass(size)
    // Not zeroed (only the bytes written into it are read).
    if (c < 0) return Buffer.allocUnsafe(size)
    return this.pools[c]!.pop() ?? new Uint8Array(ROOM_SIZES[c]!)
  }

  /** Pending-input buffer `b` is no longer used: pooled when it is a class's size and that pool has room. */
  recycle(b: Uint8Array): void {
    const n = b.byteLength
    const c = roomClass(n)
    if (c >= 0 && n === ROOM_SIZES[c] && b.byteOffset === 0) {
      const pool = this.pools[c]!
      if (pool.length < POOL_KEEP[c]!) pool.push(b)
    }
  }

  /** Counts anomaly `name` (of a flow of parser `parserIndex`, -1 when none). */
  count(name: string, parserIndex = -1): void {
    const a = this.counters.anomalies
    a.set(name, (a.get(name) ?? 0) + 1)
    const pc = this.perParser[parserIndex]
    if (pc !== undefined) pc.anomalies.set(name, (pc.anomalies.get(name) ?? 0) + 1)
  }

  /** The parsers this engine runs, in probe order. */
  get parserList(): readonly AnyL7Parser[] {
    return this.parsers
  }

  parserAt(index: number): AnyL7Parser {
    return this.parsers[index]!
  }

  /** Index of the parser called `name`, -1 when this engine does not run it. */
  parserIndexNamed(name: string): number {
    return this.parsers.findIndex((p) => p.name === name)
  }

  get probePackets(): number {
    return this.opts.probePackets
  }

  /** Index of hand-off target `name`, -1 when the engine hands no flows to it. */
  handoffTarget(name: string): number {
    const i = this.parserIndexNamed(name)
    return i >= 0 && this.targets[i] === 1 ? i : -1
  }

  countHandoff(index: number): void {
    this.counters.handoffs++
    this.parserCounters(index).handoffs++
  }

  /** The hand-off target (other than `except`) whose probe accepts `bytes` (ports first); -1 for none. */
  matchHandoff(
    bytes: Uint8Array,
    dir: L7Dir,
    transport: L7Transport,
    sport: number,
    dport: number,
    except: number,
  ): number {
    return this.match(bytes, dir, transport, sport, dport, this.targets, except)
  }

  parserCounters(index: number): L7ParserCounters {
    return this.perParser[index] ?? this.unattributed
  }

  /** Index of the parser serving flow `id` now, -1 when the flow has no L7 state. */
  parserOf(id: number): number {
    if (this.status[id] !== ST_ACTIVE) return -1
    return this.slots[this.slotOf[id]!]?.parserIndex ?? -1
  }

  /**
   * True when packets of flow `id` can no longer do L7 work until it leaves: no parser claimed it (or none
   * could: not TCP or UDP), or its parser needed no more bytes. (A flow whose initiator turns out to be the
   * other side is probed again only while it has L7 state: see onSwap.)
   */
  isDone(id: number): boolean {
    return this.status[id] === ST_NONE
  }

  /** True while no payload of flow `id` has been probed yet (or all probed so far were refused). */
  isUnprobed(id: number): boolean {
    return this.status[id] === ST_UNPROBED
  }

  /** Slots in use (flows with L7 state). */
  get activeFlows(): number {
    return this.slots.length - this.free.length
  }

  resize(capacity: number, used: number): void {
    this.status = resized(this.status, capacity, used)
    this.tries = resized(this.tries, capacity, used)
    this.slotOf = resized(this.slotOf, capacity, used)
    this.startUs = resized(this.startUs, capacity, used)
    this.unclaimedOf = resized(this.unclaimedOf, capacity, used)
    this.expect = resized(this.expect, 2 * capacity, 2 * used)
    this.expectKnown = resized(this.expectKnown, capacity, used)
  }

  /** Flow `id` brings its first payload (its L7 state starts; its handshake may have come before). */
  onCreate(id: number, tsUs: number): void {
    this.dropUnclaimed(id)
    this.status[id] = ST_UNPROBED
    this.tries[id] = 0
    this.slotOf[id] = -1
    this.startUs[id] = tsUs
  }

  /** A new flow takes id `id`: no SYN of it was seen yet. */
  forgetHandshake(id: number): void {
    this.expectKnown[id] = 0
  }

  /**
   * A SYN of flow `id` without payload, before or after onCreate, while the flow is unprobed: its
   * direction's stream starts after `seq`.
   */
  onHandshake(id: number, dir: L7Dir, seq: number): void {
    this.expectKnown[id]! |= 1 << dir
    this.expect[2 * id + dir] = seq + 1
  }

  onPacket(id: number, p: PacketInfo, dir: L7Dir, tsUs: number): void {
    const st = this.status[id]
    if (st === ST_NONE) return
    const proto = p.protocol
    if ((proto !== TCP && proto !== UDP) || (p.isFragment && p.fragOffset > 0)) {
      if (proto !== TCP && proto !== UDP) this.status[id] = ST_NONE
      return
    }
    const n = p.payloadCaptured
    let slot: Slot<Tx>
    let bytes: Uint8Array | undefined
    if (st === ST_UNPROBED) {
      if (n === 0) return
      bytes = this.payloadOf(p)
      const claimed = this.claim(id, p, dir, bytes)
      if (claimed === undefined) return
      slot = claimed
    } else {
      slot = this.slots[this.slotOf[id]!]!
    }
    slot.tsUs = tsUs
    if (proto === UDP) {
      if (n > 0) slot.data(dir, bytes ?? this.payloadOf(p))
    } else {
      const r = slot.streams[dir]
      let seq = p.tcpSeq >>> 0
      if ((p.tcpFlags & SYN) !== 0) {
        seq = (seq + 1) >>> 0
        r.start(seq)
      }
      if (n > 0) {
        // Body bytes the parser skips (in order, nothing held): sequence numbers advance, nothing is read.
        const skip = slot.skip[dir]!
        const len = bytes === undefined ? Math.min(n, p.buf.byteLength - p.payloadOffset) : 0
        if (len > 0 && skip >= len && r.advance(seq, len)) slot.skip[dir] = skip - len
        else r.push(seq, bytes ?? this.payloadOf(p))
        if (p.payloadLength > n) r.lost((seq + n) >>> 0, p.payloadLength - n)
      }
    }
    if (slot.dead) this.release(id, true)
  }

  /**
   * Probes the payload `bytes` of unprobed flow `id`: the slot of the parser that claims the flow, set up
   * (the held segments of a TCP flow wait in its reassembler for the claiming packet), or undefined.
   */
  private claim(id: number, p: PacketInfo, dir: L7Dir, bytes: Uint8Array): Slot<Tx> | undefined {
    const proto = p.protocol
    const transport: L7Transport = proto === TCP ? 'tcp' : 'udp'
    const pi = this.match(bytes, dir, transport, p.srcPort, p.dstPort)
    if (pi < 0) {
      if (++this.tries[id]! >= this.opts.probePackets) {
        this.status[id] = ST_NONE
        this.counters.flowsRejected++
        this.dropUnclaimed(id)
      } else if (proto === TCP) this.holdUnclaimed(id, dir, p.tcpSeq >>> 0, p.payloadLength, bytes)
      return undefined
    }
    const s = this.allocate()
    if (s === undefined) {
      this.status[id] = ST_NONE
      this.counters.slotsExhausted++
      this.dropUnclaimed(id)
      return undefined
    }
    const slot = this.slots[s]!
    this.slotOf[id] = s
    this.status[id] = ST_ACTIVE
    this.counters.flowsClaimed++
    this.perParser[pi]!.flowsClaimed++
    slot.transport = transport
    slot.begin(pi)
    const k = slot.key
    k.claimedBy = this.parsers[pi]!.name
    k.ipVersion = p.ipVersion
    k.protocol = proto
    k.startUs = this.startUs[id]!
    k.flowId = id
    const fwd = dir === L7Dir.ToServer
    const src = fwd ? p.src : p.dst
    const dst = fwd ? p.dst : p.src
    // (Element by element: TypedArray.set costs more for four words.)
    for (let i = 0; i < 4; i++) {
      k.src[i] = src[i]!
      k.dst[i] = dst[i]!
    }
    k.srcPort = fwd ? p.srcPort : p.dstPort
    k.dstPort = fwd ? p.dstPort : p.srcPort
    if (this.unclaimedOf[id] !== 0) {
      // The stream starts at the claiming packet (after its SYN, if any), which onPacket pushes next.
      const seq = (p.tcpFlags & SYN) !== 0 ? (p.tcpSeq + 1) >>> 0 : p.tcpSeq >>> 0
      this.replayUnclaimed(id, slot, dir, seq)
    }
    return slot
  }

  /**
   * A failed probe of TCP flow `id`: its segment is held, within the bounds, since the segment that claims
   * the flow may come later and lie before it; not when its direction's handshake was seen and it is in
   * order (or behind), since a claim can then only come from later bytes.
   */
  private holdUnclaimed(id: number, dir: L7Dir, seq: number, wire: number, bytes: Uint8Array): void {
    if ((this.expectKnown[id]! & (1 << dir)) !== 0) {
      const k = 2 * id + dir
      const rel = (seq - this.expect[k]!) | 0
      if (rel <= 0) {
        if (rel === 0) this.expect[k] = seq + wire
        return
      }
    }
    let u = this.unclaimedOf[id]! - 1
    if (u < 0) {
      u = this.unclaimedFree.pop() ?? this.unclaimed.push(new Unclaimed()) - 1
      this.unclaimedOf[id] = u + 1
    }
    const h = this.unclaimed[u]!
    const n = bytes.byteLength
    if (h.bytes + n > MAX_HELD_PER_FLOW || !this.held.reserve(n)) {
      this.count('l7_unclaimed_not_held')
      return
    }
    h.bytes += n
    // From Node's shared slab for small sizes: no ArrayBuffer of its own per held segment.
    const data = Buffer.allocUnsafe(n)
    data.set(bytes)
    h.segs.push({ dir, seq, data })
  }

  /**
   * Flow `id` was just claimed by a segment of direction `dir` at `seq`: its held segments of that direction
   * that lie after it wait in the new slot's reassembler, which starts at `seq`. The others are dropped, as they
   * were before holding: earlier bytes of the claiming direction, and the other direction's bytes, which came
   * before the claim and may belong to what preceded the protocol (an RDP X.224 exchange before TLS).
   */
  private replayUnclaimed(id: number, slot: Slot<Tx>, dir: L7Dir, seq: number): void {
    const segs = this.unclaimed[this.unclaimedOf[id]! - 1]!.segs
    if (segs.length > 1) segs.sort((a, b) => ((a.seq - seq) | 0) - ((b.seq - seq) | 0))
    const r = slot.streams[dir]
    r.start(seq)
    // They lie after the claiming segment, so they only wait: nothing is delivered yet. (A segment the
    // capture cut short leaves a hole that the reassembler declares as a gap when it is reached.)
    for (const g of segs) if (g.dir === dir && ((g.seq - seq) | 0) > 0) r.push(g.seq, g.data)
    this.dropUnclaimed(id)
  }

  /** Forget flow `id`'s pre-claim state, if any, and release what it held. */
  private dropUnclaimed(id: number): void {
    const u = this.unclaimedOf[id]! - 1
    if (u < 0) return
    this.unclaimedOf[id] = 0
    const h = this.unclaimed[u]!
    this.held.release(h.bytes)
    h.bytes = 0
    h.segs.length = 0
    this.unclaimedFree.push(u)
  }

  /**
   * The captured payload of `p` as a plain Uint8Array view. Made directly from the ArrayBuffer it costs less
   * than `buf.subarray` (which builds a Buffer, the packet buffer's class, through its species constructor);
   * the ArrayBuffer is looked up once per packet buffer (a batch), since reading `.buffer` costs as much as
   * making the view.
   */
  private payloadOf(p: PacketInfo): Uint8Array {
    const b = p.buf
    if (b !== this.viewedBuf) {
      this.viewedBuf = b
      this.viewedAb = b.buffer
      this.viewedBase = b.byteOffset
    }
    const o = p.payloadOffset
    const end = Math.min(o + p.payloadCaptured, b.byteLength)
    return end <= o ? NO_BYTES : new Uint8Array(this.viewedAb, this.viewedBase + o, end - o)
  }

  /** The initiator turned out to be the other side: swap the per-direction state of flow `id`. */
  onSwap(id: number): void {
    if (this.status[id] === ST_UNPROBED && this.unclaimedOf[id] !== 0) {
      const h = this.unclaimed[this.unclaimedOf[id]! - 1]!
      for (const g of h.segs) g.dir = g.dir === L7Dir.ToServer ? L7Dir.ToClient : L7Dir.ToServer
    }
    swapDirectionBits(this.expectKnown, id)
    swapEntries(this.expect, 2 * id, 2 * id + 1)
    if (this.status[id] !== ST_ACTIVE) return
    // A swap after L7 work started is rare (a SYN seen late); restarting is simpler than swapping streams.
    // The open transactions leave first, keyed the way the flow is now oriented.
    const slot = this.slots[this.slotOf[id]!]
    if (slot !== undefined) {
      const k = slot.key
      const src = Uint32Array.from(k.src)
      k.src.set(k.dst)
      k.dst.set(src)
      const port = k.srcPort
      k.srcPort = k.dstPort
      k.dstPort = port
    }
    this.release(id, true)
    this.status[id] = ST_UNPROBED
    this.tries[id] = 0
  }

  /** Flow `id` leaves for good: flush its reassembly, emit its open transactions, free its slot. */
  end(id: number): void {
    const st = this.status[id]
    if (st === ST_ACTIVE) this.release(id, true)
    else if (st === ST_UNPROBED && this.unclaimedOf[id] !== 0) this.dropUnclaimed(id)
    this.status[id] = ST_NONE
  }

  /** End of the run: finish every flow that still has L7 state. */
  endAll(): void {
    for (let id = 0; id < this.status.length; id++) if (this.status[id] === ST_ACTIVE) this.end(id)
  }

  private release(id: number, finish: boolean): void {
    const s = this.slotOf[id]!
    const slot = this.slots[s]
    this.status[id] = ST_NONE
    this.slotOf[id] = -1
    if (slot === undefined) return
    if (finish) {
      this.finishing = true
      try {
        slot.finish()
      } finally {
        this.finishing = false
      }
    }
    slot.reset()
    this.free.push(s)
  }

  private allocate(): number | undefined {
    const f = this.free.pop()
    if (f !== undefined) return f
    if (this.slots.length >= this.opts.maxFlows) return undefined
    this.slots.push(new Slot(this, this.total, this.opts.maxBytesPerFlow, this.counters.reassembly))
    return this.slots.length - 1
  }

  /**
   * Parsers whose ports match go first (a hint); the first whose probe accepts the bytes wins. Returns its
   * index, -1 for none.
   */
  private match(
    bytes: Uint8Array,
    dir: L7Dir,
    transport: L7Transport,
    sport: number,
    dport: number,
    only?: Uint8Array,
    except = -1,
  ): number {
    const ps = this.parsers
    const on = transport === 'tcp' ? this.onTcp : this.onUdp
    const hinted = this.byPort.get(dport) ?? this.byPort.get(sport)
    if (hinted !== undefined)
      for (const i of hinted) {
        if (i === except || (only !== undefined && only[i] !== 1)) continue
        if (on[i] === 1 && ps[i]!.probe(bytes, dir, transport)) return i
      }
    // Probes are pure: a hinted parser that said no is not asked again.
    for (let i = 0; i < ps.length; i++) {
      if (i === except || (only !== undefined && only[i] !== 1)) continue
      if (on[i] === 1 && (hinted === undefined || !hinted.includes(i)) && ps[i]!.probe(bytes, dir, transport))
        return i
    }
    return -1
  }
}
