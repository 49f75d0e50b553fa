/**
 * The flow cache: bidirectional flows (RFC 5103) in typed arrays, with the expiry rules of RFC 5470 §5.1.1.
 *
 * Layout: flow state lives in dense arrays indexed by a flow id (reused through a free list); an
 * open-addressing index (linear probing, backward-shift deletion) maps a canonical key to its id. Three
 * intrusive doubly linked lists order the flows for expiry without scanning the table:
 *   - idle list, by last packet (touched flows move to the tail): inactive timeout and eviction when full;
 *   - active list, by start of the current record: active timeout;
 *   - closing list, by the time a TCP flow saw FIN in both directions or an RST: prompt end-of-flow export
 *     after a short linger that absorbs the final ACK and repeated RSTs.
 * Storage starts small and doubles up to `maxFlows`; when full, the least recently seen flow is exported
 * with flowEndReason lackOfResources. All times are packet times (µs) so an offline run is deterministic.
 */
import type { PacketInfo } from '../decode/packet.js'
import { Dir, EndReason, type FlowFeature, type FlowView } from './feature.js'
import { fillKey, hashKey, KEY_WORDS } from './flow-key.js'
import { resized } from '../util/typed-arrays.js'

export interface FlowCacheOptions {
  /** Inactive (idle) timeout in seconds, default 30. */
  inactiveTimeout: number
  /** Active timeout in seconds, default 300. */
  activeTimeout: number
  /** Seconds a TCP flow lingers after FIN from both sides or an RST before it is exported, default 2. */
  tcpEndLinger: number
  /** Most flows held at once, default 1,000,000. */
  maxFlows: number
  /** Initial storage capacity (grows by doubling), default 4096. */
  initialCapacity?: number
}

export const DEFAULT_CACHE_OPTIONS: FlowCacheOptions = {
  inactiveTimeout: 30,
  activeTimeout: 300,
  tcpEndLinger: 2,
  maxFlows: 1_000_000,
}

/** Called for each flow record that leaves the cache; the flow's state is valid during the call. */
export type ExpireHandler = (id: number, flow: FlowView) => void

const NIL = -1
const TCP = 6

// Per-flow state bits.
const F_INITIATOR_IS_A = 1 // the initiator is key endpoint A
const F_PENDING = 2 // counters were reset by an active-timeout export and no packet arrived since
const F_FIN_FWD = 4
const F_FIN_REV = 8
const F_CLOSING = 16 // on the closing list
const F_SYN_SEEN = 32 // a SYN from the initiator was seen (direction is certain)

// TCP flag bits (RFC 793 / 7125).
const TH_FIN = 0x01
const TH_SYN = 0x02
const TH_RST = 0x04
const TH_ACK = 0x10

export interface CacheCounters {
  flowsCreated: number
  /** Records exported, indexed by flowEndReason (1..5). */
  exportedByReason: Float64Array
  activeFlows: number
  peakActiveFlows: number
  /** Flows whose initiator was corrected by a late SYN. */
  directionSwaps: number
}

export class FlowCache implements FlowView {
  private readonly opts: FlowCacheOptions
  private readonly features: readonly FlowFeature[]
  /** The features told about every packet, and those with per-flow state (create, reset, swap). */
  private readonly packetFeatures: readonly FlowFeature[]
  private readonly stateFeatures: readonly FlowFeature[]
  /**
   * No flow is due before this packet time (a lower bound of the three list heads' due times), so
   * expireDue returns at once for earlier times. Reset to 0 whenever a head or its due time may move earlier.
   */
  private nextDueUs = 0
  private readonly onExpire: ExpireHandler

  private capacity = 0
  private used = 0 // high-water mark of ids handed out
  private freeHead = NIL
  private count = 0

  private keys = new Uint32Array(0)
  private hashes = new Uint32Array(0)
  private startUs_ = new Float64Array(0)
  private lastUs = new Float64Array(0)
  private closeUs = new Float64Array(0)
  private flags = new Uint8Array(0)
  private reason = new Uint8Array(0)
  // Lists: idle (i), active (a), closing (c).
  private iPrev = new Int32Array(0)
  private iNext = new Int32Array(0)
  private aPrev = new Int32Array(0)
  private aNext = new Int32Array(0)
  private cPrev = new Int32Array(0)
  private cNext = new Int32Array(0)
  private iHead = NIL
  private iTail = NIL
  private aHead = NIL
  private aTail = NIL
  private cHead = NIL
  private cTail = NIL

  private index = new Int32Array(0)
  private indexMask = 0

  private readonly scratch = new Uint32Array(KEY_WORDS)
  readonly counters: CacheCounters = {
    flowsCreated: 0,
    exportedByReason: new Float64Array(6),
    activeFlows: 0,
    peakActiveFlows: 0,
    directionSwaps: 0,
  }

  constructor(opts: FlowCacheOptions, features: readonly FlowFeature[], onExpire: ExpireHandler) {
    if (!(opts.maxFlows >= 1)) throw new Error(`maxFlows must be at least 1 (got ${opts.maxFlows})`)
    this.opts = { ...opts }
    this.features = features
    this.packetFeatures = features.filter((f) => f.noPacketWork !== true)
    this.stateFeatures = features.filter((f) => f.noFlowState !== true)
    this.onExpire = onExpire
    this.grow(Math.min(opts.initialCapacity ?? 4096, opts.maxFlows))
  }

  get size(): number {
    return this.count
  }

  /** Account one decoded IP packet seen at `tsUs` on interface `ifIndex`. */
  update(p: PacketInfo, tsUs: number, ifIndex: number): void {
    const key = this.scratch
    const aToB = fillKey(p, key)
    const h = hashKey(key)
    let id = this.find(key, h)
    if (id !== NIL && (this.flags[id]! & F_CLOSING) !== 0 && p.protocol === TCP) {
      // A fresh SYN on a closed connection is a new connection reusing the ports.
      if ((p.tcpFlags & (TH_SYN | TH_ACK)) === TH_SYN) {
        this.expire(id, EndReason.EndOfFlow)
        id = NIL
      }
    }
    if (id === NIL) {
      id = this.create(key, h, aToB, p, tsUs, ifIndex)
    } else {
      this.touch(id, tsUs)
    }
    const f = this.flags[id]!
    let dir: Dir = ((f & F_INITIATOR_IS_A) !== 0) === aToB ? Dir.Forward : Dir.Reverse
    if (p.protocol === TCP) dir = this.tcpState(id, p, dir, tsUs)
    const features = this.packetFeatures
    for (let i = 0; i < features.length; i++) features[i]!.onPacket(id, p, dir, tsUs)
  }

  /**
   * Export flows whose timeouts have passed at packet time `nowUs`, earliest due first across the three
   * lists (ties: end of flow, idle, active), so records leave in the order their timeouts fell due.
   */
  expireDue(nowUs: number): void {
    if (nowUs < this.nextDueUs) return
    const inactiveUs = this.opts.inactiveTimeout * 1e6
    const activeUs = this.opts.activeTimeout * 1e6
    const lingerUs = this.opts.tcpEndLinger * 1e6
    for (;;) {
      const c = this.cHead
      const i = this.iHead
      const a = this.aHead
      const cDue = c !== NIL ? this.closeUs[c]! + lingerUs : Infinity
      const iDue = i !== NIL ? this.lastUs[i]! + inactiveUs : Infinity
      const aDue = a !== NIL ? this.startUs_[a]! + activeUs : Infinity
      if (cDue <= nowUs && cDue <= iDue && cDue <= aDue) this.expire(c, EndReason.EndOfFlow)
      else if (iDue <= nowUs && iDue <= aDue) {
        if ((this.flags[i]! & F_PENDING) !== 0) this.remove(i)
        else this.expire(i, EndReason.IdleTimeout)
      } else if (aDue <= nowUs) this.exportActive(a)
      else {
        this.nextDueUs = Math.min(cDue, iDue, aDue)
        return
      }
    }
  }

  /**
   * Export every flow (end of input or shutdown), oldest first. A TCP flow that already saw FIN from both
   * sides or an RST ended by itself and keeps endOfFlow; the others get `reason`.
   */
  flushAll(reason: EndReason = EndReason.ForcedEnd): void {
    while (this.iHead !== NIL) {
      const id = this.iHead
      const f = this.flags[id]!
      if ((f & F_PENDING) !== 0) this.remove(id)
      else this.expire(id, (f & F_CLOSING) !== 0 ? EndReason.EndOfFlow : reason)
    }
  }

  /**
   * Change the timeouts while flows are held (live settings): no flow is dropped. Each list keeps its order
   * (due time = list key + timeout), so only the cached earliest due time has to be recomputed.
   */
  setTimeouts(t: { activeTimeout: number; inactiveTimeout: number; tcpEndLinger?: number }): void {
    this.opts.activeTimeout = t.activeTimeout
    this.opts.inactiveTimeout = t.inactiveTimeout
    if (t.tcpEndLinger !== undefined) this.opts.tcpEndLinger = t.tcpEndLinger
    this.nextDueUs = 0
  }

  // FlowView -----------------------------------------------------------------------------------------
  startUs(id: number): number {
    return this.startUs_[id]!
  }
  endUs(id: number): number {
    return this.lastUs[id]!
  }
  endReason(id: number): number {
    return this.reason[id]!
  }
  ipVersion(id: number): number {
    return this.keys[id * KEY_WORDS + 9]! >>> 8
  }
  protocol(id: number): number {
    return this.keys[id * KEY_WORDS + 9]! & 0xff
  }
  address(id: number, dir: Dir, out: Uint32Array): number {
    const useA = ((this.flags[id]! & F_INITIATOR_IS_A) !== 0) === (dir === Dir.Forward)
    const base = id * KEY_WORDS + (useA ? 0 : 4)
    out[0] = this.keys[base]!
    out[1] = this.keys[base + 1]!
    out[2] = this.keys[base + 2]!
    out[3] = this.keys[base + 3]!
    return this.ipVersion(id)
  }
  port(id: number, dir: Dir): number {
    const proto = this.protocol(id)
    if (proto === 1 || proto === 58) return 0
    const useA = ((this.flags[id]! & F_INITIATOR_IS_A) !== 0) === (dir === Dir.Forward)
    const ports = this.keys[id * KEY_WORDS + 8]!
    return useA ? ports >>> 16 : ports & 0xffff
  }
  vlanId(id: number): number {
    return this.keys[id * KEY_WORDS + 10]! & 0xffff
  }
  innerVlanId(id: number): number {
    return this.keys[id * KEY_WORDS + 10]! >>> 16
  }
  tunnelId(id: number): number {
    return this.keys[id * KEY_WORDS + 11]!
  }
  tunnelType(id: number): number {
    return this.keys[id * KEY_WORDS + 12]!
  }

  // Internals ----------------------------------------------------------------------------------------

  /** TCP initiator and end-of-connection tracking. Returns the (possibly corrected) direction. */
  private tcpState(id: number, p: PacketInfo, dir: Dir, tsUs: number): Dir {
    const fl = p.tcpFlags
    let f = this.flags[id]!
    if ((fl & (TH_SYN | TH_ACK)) === TH_SYN && (f & F_SYN_SEEN) === 0) {
      if (dir === Dir.Reverse) {
        // The SYN sender is the initiator (RFC 5103 §5): turn the flow around.
        f ^= F_INITIATOR_IS_A
        for (let i = 0; i < this.stateFeatures.length; i++) this.stateFeatures[i]!.onSwap(id)
        this.counters.directionSwaps++
        dir = Dir.Forward
      }
      f |= F_SYN_SEEN
    }
    if ((fl & TH_FIN) !== 0) f |= dir === Dir.Forward ? F_FIN_FWD : F_FIN_REV
    const closed = (fl & TH_RST) !== 0 || (f & (F_FIN_FWD | F_FIN_REV)) === (F_FIN_FWD | F_FIN_REV)
    if (closed && (f & F_CLOSING) === 0) {
      f |= F_CLOSING
      this.closeUs[id] = tsUs
      this.cAppend(id)
    }
    this.flags[id] = f
    return dir
  }

  private create(
    key: Uint32Array,
    h: number,
    aToB: boolean,
    p: PacketInfo,
    tsUs: number,
    ifIndex: number,
  ): number {
    if (this.count >= this.opts.maxFlows && this.iHead !== NIL) {
      const victim = this.iHead
      if ((this.flags[victim]! & F_PENDING) !== 0) this.remove(victim)
      else this.expire(victim, EndReason.LackOfResources)
    }
    let id: number
    if (this.freeHead !== NIL) {
      id = this.freeHead
      this.freeHead = this.iNext[id]!
    } else {
      if (this.used >= this.capacity) this.grow(Math.min(this.capacity * 2, this.opts.maxFlows))
      id = this.used++
    }
    this.keys.set(key, id * KEY_WORDS)
    this.hashes[id] = h
    this.insertIndex(id, h)
    // The first packet's sender is the initiator; a SYN/ACK seen first means its receiver initiated.
    let initiatorIsA = aToB
    let f = 0
    if (p.protocol === TCP) {
      const syn = p.tcpFlags & (TH_SYN | TH_ACK)
      if (syn === (TH_SYN | TH_ACK)) initiatorIsA = !aToB
      if (syn === TH_SYN) f |= F_SYN_SEEN
    }
    if (initiatorIsA) f |= F_INITIATOR_IS_A
    this.flags[id] = f
    this.reason[id] = 0
    this.startUs_[id] = tsUs
    this.lastUs[id] = tsUs
    this.iAppend(id)
    this.aAppend(id)
    this.count++
    this.counters.flowsCreated++
    this.counters.activeFlows = this.count
    if (this.count > this.counters.peakActiveFlows) this.counters.peakActiveFlows = this.count
    const dir = initiatorIsA === aToB ? Dir.Forward : Dir.Reverse
    for (let i = 0; i < this.stateFeatures.length; i++)
      this.stateFeatures[i]!.onCreate(id, p, dir, tsUs, ifIndex)
    return id
  }

  private touch(id: number, tsUs: number): void {
    const f = this.flags[id]!
    if ((f & F_PENDING) !== 0) {
      // First packet after an active-timeout export starts the next record of this flow.
      this.flags[id] = f & ~F_PENDING
      this.startUs_[id] = tsUs
      this.lastUs[id] = tsUs
      this.nextDueUs = 0 // its idle timeout may have moved earlier
      this.aAppend(id)
    } else {
      if (tsUs < this.startUs_[id]!) {
        this.startUs_[id] = tsUs
        this.nextDueUs = 0 // the active timeout of this flow (maybe the head) moved earlier
      }
      if (tsUs > this.lastUs[id]!) this.lastUs[id] = tsUs
    }
    // Move to the idle list's tail.
    if (this.iTail !== id) {
      this.iUnlink(id)
      this.iAppend(id)
    }
  }

  /** Export the flow's record and free it. */
  private expire(id: number, reason: EndReason): void {
    this.reason[id] = reason
    this.counters.exportedByReason[reason]! += 1
    this.onExpire(id, this)
    this.remove(id)
  }

  /** Active timeout: export the record so far, keep the flow (direction, L2 facts) with zeroed counters. */
  private exportActive(id: number): void {
    this.reason[id] = EndReason.ActiveTimeout
    this.counters.exportedByReason[EndReason.ActiveTimeout]! += 1
    this.onExpire(id, this)
    this.aUnlink(id)
    this.flags[id] = this.flags[id]! | F_PENDING
    for (let i = 0; i < this.stateFeatures.length; i++) this.stateFeatures[i]!.onReset(id)
  }

  private remove(id: number): void {
    const f = this.flags[id]!
    this.removeIndex(id)
    this.iUnlink(id)
    if ((f & F_PENDING) === 0) this.aUnlink(id)
    if ((f & F_CLOSING) !== 0) this.cUnlink(id)
    this.flags[id] = 0
    this.iNext[id] = this.freeHead
    this.freeHead = id
    this.count--
    this.counters.activeFlows = this.count
  }

  // The index holds (id, hash) pairs per slot, so probing and backward-shift deletion compare hashes
  // without touching the per-flow arrays (one cache line per few slots instead of one per flow).
  private find(key: Uint32Array, h: number): number {
    const mask = this.indexMask
    const keys = this.keys
    const index = this.index
    const hs = h | 0
    let slot = h & mask
    while (true) {
      const id = index[slot * 2]!
      if (id === NIL) return NIL
      if (index[slot * 2 + 1] === hs) {
        const base = id * KEY_WORDS
        let same = true
        for (let i = 0; i < KEY_WORDS; i++) {
          if (keys[base + i] !== key[i]) {
            same = false
            break
          }
        }
        if (same) return id
      }
      slot = (slot + 1) & mask
    }
  }

  private insertIndex(id: number, h: number): void {
    const mask = this.indexMask
    const index = this.index
    let slot = h & mask
    while (index[slot * 2] !== NIL) slot = (slot + 1) & mask
    index[slot * 2] = id
    index[slot * 2 + 1] = h | 0
  }

  /** Linear-probing deletion by backward shift (no tombstones, so lookups never degrade). */
  private removeIndex(id: number): void {
    const mask = this.indexMask
    const index = this.index
    let slot = this.hashes[id]! & mask
    while (index[slot * 2] !== id) slot = (slot + 1) & mask
    let hole = slot
    let next = (hole + 1) & mask
    while (true) {
      const other = index[next * 2]!
      if (other === NIL) break
      const otherHash = index[next * 2 + 1]!
      const home = otherHash & mask
      // Move `other` into the hole if its home slot is not cyclically within (hole, next].
      const inRange = hole <= next ? home > hole && home <= next : home > hole || home <= next
      if (!inRange) {
        index[hole * 2] = other
        index[hole * 2 + 1] = otherHash
        hole = next
      }
      next = (next + 1) & mask
    }
    index[hole * 2] = NIL
  }

  private grow(capacity: number): void {
    const used = this.used
    this.keys = resized(this.keys, capacity * KEY_WORDS, used * KEY_WORDS)
    this.hashes = resized(this.hashes, capacity, used)
    this.startUs_ = resized(this.startUs_, capacity, used)
    this.lastUs = resized(this.lastUs, capacity, used)
    this.closeUs = resized(this.closeUs, capacity, used)
    this.flags = resized(this.flags, capacity, used)
    this.reason = resized(this.reason, capacity, used)
    this.iPrev = resized(this.iPrev, capacity, used)
    this.iNext = resized(this.iNext, capacity, used)
    this.aPrev = resized(this.aPrev, capacity, used)
    this.aNext = resized(this.aNext, capacity, used)
    this.cPrev = resized(this.cPrev, capacity, used)
    this.cNext = resized(this.cNext, capacity, used)
    for (const f of this.features) f.resize(capacity, used)
    this.capacity = capacity
    // Index: at most half full.
    let size = 16
    while (size < capacity * 2) size *= 2
    if (size * 2 !== this.index.length) {
      this.index = new Int32Array(size * 2).fill(NIL)
      this.indexMask = size - 1
      for (let id = 0; id < used; id++) {
        if (this.isLive(id)) this.insertIndex(id, this.hashes[id]!)
      }
    }
  }

  /** A slot is live when it is on the idle list (every live flow is, free slots are not). */
  private isLive(id: number): boolean {
    return this.iHead === id || this.iPrev[id] !== NIL
  }

  // Intrusive lists. A free or unlinked slot has prev = NIL and is not the head.
  private iAppend(id: number): void {
    this.iPrev[id] = this.iTail
    this.iNext[id] = NIL
    if (this.iTail !== NIL) this.iNext[this.iTail] = id
    else {
      this.iHead = id
      this.nextDueUs = 0
    }
    this.iTail = id
  }
  private iUnlink(id: number): void {
    const p = this.iPrev[id]!
    const n = this.iNext[id]!
    if (p !== NIL) this.iNext[p] = n
    else {
      this.iHead = n
      this.nextDueUs = 0
    }
    if (n !== NIL) this.iPrev[n] = p
    else this.iTail = p
    this.iPrev[id] = NIL
    this.iNext[id] = NIL
  }
  private aAppend(id: number): void {
    this.aPrev[id] = this.aTail
    this.aNext[id] = NIL
    if (this.aTail !== NIL) this.aNext[this.aTail] = id
    else {
      this.aHead = id
      this.nextDueUs = 0
    }
    this.aTail = id
  }
  private aUnlink(id: number): void {
    const p = this.aPrev[id]!
    const n = this.aNext[id]!
    if (p !== NIL) this.aNext[p] = n
    else {
      this.aHead = n
      this.nextDueUs = 0
    }
    if (n !== NIL) this.aPrev[n] = p
    else this.aTail = p
    this.aPrev[id] = NIL
    this.aNext[id] = NIL
  }
  private cAppend(id: number): void {
    this.cPrev[id] = this.cTail
    this.cNext[id] = NIL
    if (this.cTail !== NIL) this.cNext[this.cTail] = id
    else {
      this.cHead = id
      this.nextDueUs = 0
    }
    this.cTail = id
  }
  private cUnlink(id: number): void {
    const p = this.cPrev[id]!
    const n = this.cNext[id]!
    if (p !== NIL) this.cNext[p] = n
    else {
      this.cHead = n
      this.nextDueUs = 0
    }
    if (n !== NIL) this.cPrev[n] = p
    else this.cTail = p
    this.cPrev[id] = NIL
    this.cNext[id] = NIL
  }

  // Live settings (probe/service.ts) ----------------------------------------------------------------

  /**
   * True when the cache holds the flow of decoded packet `p` (either direction). The live service asks the
   * previous settings generation this before a packet goes to the current one (see probe/pipeline.ts).
   */
  has(p: PacketInfo): boolean {
    const key = this.scratch
    fillKey(p, key)
    return this.find(key, hashKey(key)) !== NIL
  }
}
