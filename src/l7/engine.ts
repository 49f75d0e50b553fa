/**
 * @module l7/engine
 * Connects L7 parsers (src/l7/parser.ts) to flows: content-based selection on the first payload packets,
 * TCP reassembly per direction (src/l7/reassembly.ts, RFC 9293), parser buffering by `needed`, and
 * bounded, pooled per-flow state.
 *
 * Cost model: a flow costs one byte of status and one probe per payload packet for its first
 * `probePackets` payload packets; a flow no parser claims is then marked and skipped with one typed-array
 * load per packet. Only claimed flows get a pooled slot (at most `maxFlows` at once), reassembly buffers
 * (charged to a per-flow and a total byte budget) and parser state. When the parser needs no more bytes
 * the flow's slot is released at once, so bulk transfers after the exchanges that matter cost nothing.
 */
import type { PacketInfo } from '../decode/packet.js'
import { resized } from '../util/typed-arrays.js'
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
}

export const DEFAULT_L7_OPTIONS: L7EngineOptions = {
  maxFlows: 65536,
  maxBytesPerFlow: 256 * 1024,
  maxBytesTotal: 256 * 1024 * 1024,
  probePackets: 4,
}

export interface L7Counters {
  flowsClaimed: number
  flowsRejected: number
  slotsExhausted: number
  bufferOverflows: number
  parserErrors: number
  anomalies: Map<string, number>
  reassembly: ReassemblyStats
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
}

/** Receives every transaction of every flow. */
/** `parser` is the name of the parser that produced the transaction (one engine may run several). */
export type TxHandler<Tx> = (key: FlowKey, tx: Tx, tsUs: number, parser: string) => void

const ST_UNPROBED = 0
const ST_ACTIVE = 1
const ST_NONE = 2

const TCP = 6
const UDP = 17
const SYN = 0x02

class Slot<Tx> implements L7Context<Tx> {
  parser: AnyL7Parser | undefined
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
  }
  readonly budget: Budget
  readonly streams: [StreamReassembler, StreamReassembler]
  /** Unconsumed parser input per direction (owned copies) and the total length the parser needs. */
  readonly pending: [Uint8Array | undefined, Uint8Array | undefined] = [undefined, undefined]
  readonly need = [0, 0]

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
    this.engine.count(name)
  }

  reset(): void {
    this.streams[0].reset()
    this.streams[1].reset()
    this.dropPending(0)
    this.dropPending(1)
    this.parser = undefined
    this.state = undefined
    this.dead = false
  }

  private dropPending(d: number): void {
    const p = this.pending[d]
    if (p !== undefined) this.budget.release(p.byteLength)
    this.pending[d] = undefined
    this.need[d] = 0
  }

  /** Parser input for direction `d` (a reassembled TCP chunk or a UDP datagram). */
  data(d: L7Dir, bytes: Uint8Array): void {
    const parser = this.parser
    if (this.dead || parser === undefined) return
    let buf = bytes
    const old = this.pending[d]
    if (old !== undefined) {
      // `old` is charged to the budget already; charge the new bytes too while they wait together.
      if (!this.budget.reserve(bytes.byteLength)) return this.overflow()
      const merged = new Uint8Array(old.byteLength + bytes.byteLength)
      merged.set(old)
      merged.set(bytes, old.byteLength)
      this.pending[d] = merged
      if (merged.byteLength < this.need[d]!) return
      this.pending[d] = undefined
      this.need[d] = 0
      this.budget.release(merged.byteLength)
      buf = merged
    }
    const r = parser.parse(this.state, d, buf, this)
    if (r.kind === 'incomplete') {
      const rest = buf.byteLength - r.consumed
      if (!this.budget.reserve(rest)) return this.overflow()
      this.pending[d] = buf.slice(r.consumed)
      this.need[d] = r.needed
    } else if (r.kind === 'error') {
      this.anomaly(r.anomaly)
      this.engine.counters.parserErrors++
      this.dead = true
    }
    if (!parser.wantsMore(this.state)) this.dead = true
    if (this.dead) {
      this.streams[0].clear()
      this.streams[1].clear()
    }
  }

  gap(d: L7Dir, size: number): void {
    if (this.dead || this.parser === undefined) return
    this.dropPending(d)
    this.parser.gap?.(this.state, d, size, this)
  }

  private overflow(): void {
    this.anomaly('l7_buffer_overflow')
    this.engine.counters.bufferOverflows++
    this.dead = true
    this.streams[0].clear()
    this.streams[1].clear()
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
    anomalies: new Map(),
    reassembly: newReassemblyStats(),
  }
  readonly total: Budget
  private status = new Uint8Array(0)
  private tries = new Uint8Array(0)
  private slotOf = new Int32Array(0)
  private startUs = new Float64Array(0)
  private readonly slots: Slot<Tx>[] = []
  private readonly free: number[] = []
  private readonly byPort = new Map<number, AnyL7Parser[]>()

  constructor(
    private readonly parsers: readonly AnyL7Parser[],
    readonly onTx: TxHandler<Tx>,
    private readonly opts: L7EngineOptions = DEFAULT_L7_OPTIONS,
  ) {
    this.total = new Budget(opts.maxBytesTotal)
    for (const p of parsers)
      for (const port of p.ports) {
        const l = this.byPort.get(port) ?? []
        l.push(p)
        this.byPort.set(port, l)
      }
  }

  count(name: string): void {
    this.counters.anomalies.set(name, (this.counters.anomalies.get(name) ?? 0) + 1)
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
  }

  onCreate(id: number, tsUs: number): void {
    this.status[id] = ST_UNPROBED
    this.tries[id] = 0
    this.slotOf[id] = -1
    this.startUs[id] = tsUs
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
    const o = p.payloadOffset
    let slot: Slot<Tx>
    if (st === ST_UNPROBED) {
      if (n === 0) return
      const bytes = p.buf.subarray(o, Math.min(o + n, p.buf.byteLength))
      const transport: L7Transport = proto === TCP ? 'tcp' : 'udp'
      const parser = this.match(bytes, dir, transport, p.srcPort, p.dstPort)
      if (parser === undefined) {
        if (++this.tries[id]! >= this.opts.probePackets) {
          this.status[id] = ST_NONE
          this.counters.flowsRejected++
        }
        return
      }
      const s = this.allocate()
      if (s === undefined) {
        this.status[id] = ST_NONE
        this.counters.slotsExhausted++
        return
      }
      slot = this.slots[s]!
      this.slotOf[id] = s
      this.status[id] = ST_ACTIVE
      this.counters.flowsClaimed++
      slot.parser = parser
      slot.transport = transport
      slot.state = parser.newState(transport)
      const k = slot.key
      k.ipVersion = p.ipVersion
      k.protocol = proto
      k.startUs = this.startUs[id]!
      k.flowId = id
      const fwd = dir === L7Dir.ToServer
      k.src.set(fwd ? p.src : p.dst)
      k.dst.set(fwd ? p.dst : p.src)
      k.srcPort = fwd ? p.srcPort : p.dstPort
      k.dstPort = fwd ? p.dstPort : p.srcPort
    } else {
      slot = this.slots[this.slotOf[id]!]!
    }
    slot.tsUs = tsUs
    if (proto === UDP) {
      if (n > 0) slot.data(dir, p.buf.subarray(o, Math.min(o + n, p.buf.byteLength)))
    } else {
      const r = slot.streams[dir]
      let seq = p.tcpSeq >>> 0
      if ((p.tcpFlags & SYN) !== 0) {
        seq = (seq + 1) >>> 0
        r.start(seq)
      }
      if (n > 0) {
        r.push(seq, p.buf.subarray(o, Math.min(o + n, p.buf.byteLength)))
        if (p.payloadLength > n) r.lost((seq + n) >>> 0, p.payloadLength - n)
      }
    }
    if (slot.dead) this.release(id, true)
  }

  /** The initiator turned out to be the other side: swap the per-direction state of flow `id`. */
  onSwap(id: number): void {
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
    if (this.status[id] === ST_ACTIVE) this.release(id, true)
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
    if (finish) slot.finish()
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

  /** Parsers whose ports match go first (a hint); the first whose probe accepts the bytes wins. */
  private match(
    bytes: Uint8Array,
    dir: L7Dir,
    transport: L7Transport,
    sport: number,
    dport: number,
  ): AnyL7Parser | undefined {
    const hinted = this.byPort.get(dport) ?? this.byPort.get(sport)
    if (hinted !== undefined)
      for (const p of hinted) if (p.transports.includes(transport) && p.probe(bytes, dir, transport)) return p
    for (const p of this.parsers)
      if (p.transports.includes(transport) && p.probe(bytes, dir, transport)) return p
    return undefined
  }
}
