/**
 * The flow cache: bidirectional flows (RFC 5103) in typed arrays, with the expiry rules of RFC 5470 §5.1.1.
 *
 * Layout: the state of flow `id` is one 128-octet slot of a single buffer (key, hash, flags, list links and
 * times side by side, so a packet or an expiring flow touches two cache lines instead of one per array),
 * ids are reused through a free list; an open-addressing index (linear probing, backward-shift
 * deletion) maps a canonical key to its id. An index entry is one 32-bit word: id + 1, the distance from its
 * home slot and a few bits of the key's hash as a tag, so the index takes 4 octets per slot and is sized
 * by the flows held, not by the cache's capacity (the index lookup was the costliest cache miss of a packet,
 * and of a flow's removal; on the bench capture 1 MiB of (id, hash) pairs became 512 KiB). Three
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

export interface FlowCacheOptions {
  /** Inactive (idle) timeout in seconds, default 30. */
  inactiveTimeout: number
  /** Active timeout in seconds, default 300. */
  activeTimeout: number
  /** Seconds a TCP flow lingers after FIN from both sides or an RST before it is exported, default 2. */
  tcpEndLinger: number
  /** Most flows held at once, default 1,000,000. */
  maxFlows: number
  /**
   * Initial storage capacity (grows by doubling), default 65536 (at most maxFlows). Untouched slots cost
   * address space only; starting at 4096, the four doublings to 65536 held old and new arrays at once and
   * their growth of external memory set off a full (mark-compact) GC of 30-36 ms on the bench capture.
   */
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
/** Stands in for the first feature of an empty list (see FlowCache.packetFirst). */
const NO_FEATURE: FlowFeature = {
  name: '',
  fields: () => [],
  resize: () => {},
  onCreate: () => {},
  onPacket: () => {},
  onReset: () => {},
  onSwap: () => {},
  write: () => {},
}
const DEFAULT_INITIAL_CAPACITY = 65536
/** Most flows the index entry layout can name (id + 1 and the distance take at most 32 bits). */
export const MAX_FLOWS_LIMIT = 2 ** 28 - 1
/**
 * Index entries: bits [0, idBits) hold id + 1 (0 = empty slot), the next DIST_BITS the distance from the
 * entry's home slot (DIST_MAX = that many or more: the home is then found from the hash in the flow's slot),
 * the remaining high bits a tag from the hash's high bits (a tag that differs rules the entry out without
 * reading the flow's key).
 */
const DIST_BITS = 4
const DIST_MAX = (1 << DIST_BITS) - 1
/** The index grows (doubles) before it is fuller than this. */
const INDEX_MAX_LOAD = 0.5
const INDEX_MIN_SIZE = 16
/** The expiry lists, as expireDueNow names the one due first. */
const NONE = 0
const CLOSING = 1
const IDLE = 2
const ACTIVE = 3
const TCP = 6

// Slot layout, in 32-bit words (u32/i32 views) and 64-bit words (f64 view, index = id * SLOT_F64 + D_*).
const SLOT_WORDS = 32
const SLOT_F64 = SLOT_WORDS / 2
/** Words 0..12: the canonical key (flow-key.ts); 13: its hash; 14: state bits; 15: flowEndReason. */
const W_HASH = KEY_WORDS
const W_FLAGS = KEY_WORDS + 1
const W_REASON = KEY_WORDS + 2
/** List links (i32): idle, active and closing lists, previous and next. */
const W_IPREV = 16
const W_INEXT = 17
const W_APREV = 18
const W_ANEXT = 19
const W_CPREV = 20
const W_CNEXT = 21
/** Times (f64, µs): start of the current record, last packet, TCP close. Words 24..29. */
const D_START = 12
const D_LAST = 13
const D_CLOSE = 14

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
   * The first of each list (`core`, present in every pipeline) gets a call site of its own, which then sees
   * one class only and is inlined; the others (the L7 hub, `app`, ...) go through the loops over the rest.
   * With one shared polymorphic call site, the L7 groups' code filled the inlining budget of update() and
   * create(), so parts of the cache's own work (key, index, lists) became calls, for every flow.
   */
  private readonly packetFirst: FlowFeature
  private readonly packetRest: readonly FlowFeature[]
  private readonly stateFirst: FlowFeature
  private readonly stateRest: readonly FlowFeature[]
  /**
   * No flow is due before this packet time (a lower bound of the three list heads' due times), so
   * expireDue returns at once for earlier times. Reset to 0 whenever a head or its due time may move earlier.
   */
  private nextDueUs = 0
  /** The time expireDueNow works at. */
  private dueCheckUs = 0
  /**
   * Time of the packet being accounted: the internal steps of update() read it here, since a time passed
   * as an argument to a call that is not inlined is boxed as a heap number (µs is not a small integer).
   */
  private packetUs = 0
  /** When the record being exported fell due (see exportDueUs). */
  private dueUs = 0
  private readonly onExpire: ExpireHandler

  private capacity = 0
  private used = 0 // high-water mark of ids handed out
  private freeHead = NIL
  private count = 0

  /** The slots, through three views of one buffer. */
  private u32 = new Uint32Array(0)
  private i32 = new Int32Array(0)
  private f64 = new Float64Array(0)
  private iHead = NIL
  private iTail = NIL
  private aHead = NIL
  private aTail = NIL
  private cHead = NIL
  private cTail = NIL

  private index = new Int32Array(0)
  private indexMask = 0
  /** The index doubles when a new flow would make it hold more entries than this. */
  private indexLimit = 0
  /** Entry layout (see DIST_BITS): id bits, their mask, the tag's shift right from the hash and its field. */
  private readonly idBits: number
  private readonly idMask: number
  private readonly tagRight: number
  private readonly tagField: number
  /**
   * The empty index slot where the last unsuccessful find() stopped, or NIL: create() puts the new flow
   * there instead of probing again. Any change to the index (deletion, rebuild) clears it.
   */
  private emptySlot = NIL

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
    if (opts.maxFlows > MAX_FLOWS_LIMIT)
      throw new Error(`maxFlows must be at most ${MAX_FLOWS_LIMIT} (got ${opts.maxFlows})`)
    // id + 1 <= maxFlows; the tag takes what the id and the distance leave (hashKey gives 30 bits).
    this.idBits = 32 - Math.clz32(opts.maxFlows)
    this.idMask = 2 ** this.idBits - 1
    const tagBits = 32 - DIST_BITS - this.idBits
    this.tagRight = 30 - tagBits
    this.tagField = tagBits === 0 ? 0 : (-1 << (this.idBits + DIST_BITS)) | 0
    this.opts = { ...opts }
    this.features = features
    this.packetFeatures = features.filter((f) => f.noPacketWork !== true)
    this.stateFeatures = features.filter((f) => f.noFlowState !== true)
    this.packetFirst = this.packetFeatures[0] ?? NO_FEATURE
    this.packetRest = this.packetFeatures.slice(1)
    this.stateFirst = this.stateFeatures[0] ?? NO_FEATURE
    this.stateRest = this.stateFeatures.slice(1)
    this.onExpire = onExpire
    this.grow(Math.min(opts.initialCapacity ?? DEFAULT_INITIAL_CAPACITY, opts.maxFlows))
    this.growIndex()
  }

  get size(): number {
    return this.count
  }

  /** Account one decoded IP packet seen at `tsUs` on interface `ifIndex`. */
  update(p: PacketInfo, tsUs: number, ifIndex: number): void {
    this.packetUs = tsUs
    const key = this.scratch
    const aToB = fillKey(p, key)
    const h = hashKey(key)
    let id = this.find(key, h)
    if (id !== NIL && (this.u32[id * SLOT_WORDS + W_FLAGS]! & F_CLOSING) !== 0 && p.protocol === TCP) {
      // A fresh SYN on a closed connection is a new connection reusing the ports.
      if ((p.tcpFlags & (TH_SYN | TH_ACK)) === TH_SYN) {
        this.dueUs = tsUs
        this.expire(id, EndReason.EndOfFlow)
        id = NIL
      }
    }
    if (id === NIL) {
      id = this.create(key, h, aToB, p, ifIndex)
    } else {
      this.touch(id)
    }
    const f = this.u32[id * SLOT_WORDS + W_FLAGS]!
    let dir: Dir = ((f & F_INITIATOR_IS_A) !== 0) === aToB ? Dir.Forward : Dir.Reverse
    if (p.protocol === TCP) dir = this.tcpState(id, p, dir)
    this.packetFirst.onPacket(id, p, dir, tsUs)
    const rest = this.packetRest
    for (let i = 0; i < rest.length; i++) rest[i]!.onPacket(id, p, dir, tsUs)
  }

  /**
   * Export flows whose timeouts have passed at packet time `nowUs`, earliest due first across the three
   * lists (ties: end of flow, idle, active), so records leave in the order their timeouts fell due.
   */
  expireDue(nowUs: number): void {
    // Small enough to be inlined into the packet loop: the usual case (nothing due) then makes no call,
    // and no call means no heap number boxed for the time argument.
    if (nowUs >= this.nextDueUs) {
      this.dueCheckUs = nowUs
      this.expireDueNow()
    }
  }

  /** expireDue at `dueCheckUs` (a field, not an argument: see expireDue). */
  private expireDueNow(): void {
    const nowUs = this.dueCheckUs
    const inactiveUs = this.opts.inactiveTimeout * 1e6
    const activeUs = this.opts.activeTimeout * 1e6
    const lingerUs = this.opts.tcpEndLinger * 1e6
    for (;;) {
      // The list whose head is due first; ties go to end of flow, then idle, then active. (No Infinity
      // stand-in for an empty list: a phi of it with the sums made the optimizer box every sum.)
      const c = this.cHead
      const i = this.iHead
      const a = this.aHead
      const f64 = this.f64
      let first = NONE
      let due = 0
      if (c !== NIL) {
        due = f64[c * SLOT_F64 + D_CLOSE]! + lingerUs
        first = CLOSING
      }
      if (i !== NIL) {
        const d = f64[i * SLOT_F64 + D_LAST]! + inactiveUs
        if (first === NONE || d < due) {
          due = d
          first = IDLE
        }
      }
      if (a !== NIL) {
        const d = f64[a * SLOT_F64 + D_START]! + activeUs
        if (first === NONE || d < due) {
          due = d
          first = ACTIVE
        }
      }
      if (first === NONE) {
        this.nextDueUs = Number.POSITIVE_INFINITY
        return
      }
      if (due > nowUs) {
        this.nextDueUs = due
        return
      }
      this.dueUs = due
      if (first === CLOSING) this.expire(c, EndReason.EndOfFlow)
      else if (first === IDLE) {
        if ((this.u32[i * SLOT_WORDS + W_FLAGS]! & F_PENDING) !== 0) this.remove(i)
        else this.expire(i, EndReason.IdleTimeout)
      } else this.exportActive(a)
    }
  }

  /**
   * Export every flow (end of input or shutdown), oldest first. A TCP flow that already saw FIN from both
   * sides or an RST ended by itself and keeps endOfFlow; the others get `reason`.
   */
  flushAll(reason: EndReason = EndReason.ForcedEnd, max = Infinity): boolean {
    this.dueUs = Number.POSITIVE_INFINITY
    for (let n = 0; this.iHead !== NIL; n++) {
      if (n >= max) return false
      const id = this.iHead
      const f = this.u32[id * SLOT_WORDS + W_FLAGS]!
      if ((f & F_PENDING) !== 0) this.remove(id)
      else this.expire(id, (f & F_CLOSING) !== 0 ? EndReason.EndOfFlow : reason)
    }
    return true
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
    return this.f64[id * SLOT_F64 + D_START]!
  }
  endUs(id: number): number {
    return this.f64[id * SLOT_F64 + D_LAST]!
  }
  endReason(id: number): number {
    return this.u32[id * SLOT_WORDS + W_REASON]!
  }
  exportDueUs(): number {
    return this.dueUs
  }
  ipVersion(id: number): number {
    return this.u32[id * SLOT_WORDS + 9]! >>> 8
  }
  protocol(id: number): number {
    return this.u32[id * SLOT_WORDS + 9]! & 0xff
  }
  address(id: number, dir: Dir, out: Uint32Array): number {
    const useA = ((this.u32[id * SLOT_WORDS + W_FLAGS]! & F_INITIATOR_IS_A) !== 0) === (dir === Dir.Forward)
    const base = id * SLOT_WORDS + (useA ? 0 : 4)
    const u32 = this.u32
    out[0] = u32[base]!
    out[1] = u32[base + 1]!
    out[2] = u32[base + 2]!
    out[3] = u32[base + 3]!
    return this.ipVersion(id)
  }
  port(id: number, dir: Dir): number {
    const proto = this.protocol(id)
    if (proto === 1 || proto === 58) return 0
    const useA = ((this.u32[id * SLOT_WORDS + W_FLAGS]! & F_INITIATOR_IS_A) !== 0) === (dir === Dir.Forward)
    const ports = this.u32[id * SLOT_WORDS + 8]!
    return useA ? ports >>> 16 : ports & 0xffff
  }
  vlanId(id: number): number {
    return this.u32[id * SLOT_WORDS + 10]! & 0xffff
  }
  innerVlanId(id: number): number {
    return this.u32[id * SLOT_WORDS + 10]! >>> 16
  }
  tunnelId(id: number): number {
    return this.u32[id * SLOT_WORDS + 11]!
  }
  tunnelType(id: number): number {
    return this.u32[id * SLOT_WORDS + 12]!
  }

  // Internals ----------------------------------------------------------------------------------------

  /** TCP initiator and end-of-connection tracking. Returns the (possibly corrected) direction. */
  private tcpState(id: number, p: PacketInfo, dir: Dir): Dir {
    const fl = p.tcpFlags
    let f = this.u32[id * SLOT_WORDS + W_FLAGS]!
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
      this.f64[id * SLOT_F64 + D_CLOSE] = this.packetUs
      this.cAppend(id)
    }
    this.u32[id * SLOT_WORDS + W_FLAGS] = f
    return dir
  }

  private create(key: Uint32Array, h: number, aToB: boolean, p: PacketInfo, ifIndex: number): number {
    const tsUs = this.packetUs
    if (this.count >= this.opts.maxFlows && this.iHead !== NIL) {
      this.dueUs = tsUs
      const victim = this.iHead
      if ((this.u32[victim * SLOT_WORDS + W_FLAGS]! & F_PENDING) !== 0) this.remove(victim)
      else this.expire(victim, EndReason.LackOfResources)
    }
    // Before an id is taken: the rebuild tells live slots by their idle-list links, which a slot not yet
    // set up does not have.
    if (this.count >= this.indexLimit) this.growIndex()
    let id: number
    if (this.freeHead !== NIL) {
      id = this.freeHead
      this.freeHead = this.i32[id * SLOT_WORDS + W_INEXT]!
    } else {
      if (this.used >= this.capacity) this.grow(Math.min(this.capacity * 2, this.opts.maxFlows))
      id = this.used++
    }
    const u32 = this.u32
    const base = id * SLOT_WORDS
    for (let i = 0; i < KEY_WORDS; i++) u32[base + i] = key[i]!
    u32[base + W_HASH] = h
    const slot = this.emptySlot
    if (slot !== NIL) {
      this.setEntry(slot, id, h)
      this.emptySlot = NIL
    } else this.insertIndex(id, h)
    // The first packet's sender is the initiator; a SYN/ACK seen first means its receiver initiated.
    let initiatorIsA = aToB
    let f = 0
    if (p.protocol === TCP) {
      const syn = p.tcpFlags & (TH_SYN | TH_ACK)
      if (syn === (TH_SYN | TH_ACK)) initiatorIsA = !aToB
      if (syn === TH_SYN) f |= F_SYN_SEEN
    }
    if (initiatorIsA) f |= F_INITIATOR_IS_A
    this.u32[id * SLOT_WORDS + W_FLAGS] = f
    this.u32[id * SLOT_WORDS + W_REASON] = 0
    this.f64[id * SLOT_F64 + D_START] = tsUs
    this.f64[id * SLOT_F64 + D_LAST] = tsUs
    this.iAppend(id)
    this.aAppend(id)
    this.count++
    this.counters.flowsCreated++
    this.counters.activeFlows = this.count
    if (this.count > this.counters.peakActiveFlows) this.counters.peakActiveFlows = this.count
    const dir = initiatorIsA === aToB ? Dir.Forward : Dir.Reverse
    this.stateFirst.onCreate(id, p, dir, tsUs, ifIndex)
    const rest = this.stateRest
    for (let i = 0; i < rest.length; i++) rest[i]!.onCreate(id, p, dir, tsUs, ifIndex)
    return id
  }

  private touch(id: number): void {
    const tsUs = this.packetUs
    const f = this.u32[id * SLOT_WORDS + W_FLAGS]!
    if ((f & F_PENDING) !== 0) {
      // First packet after an active-timeout export starts the next record of this flow.
      this.u32[id * SLOT_WORDS + W_FLAGS] = f & ~F_PENDING
      this.f64[id * SLOT_F64 + D_START] = tsUs
      this.f64[id * SLOT_F64 + D_LAST] = tsUs
      this.nextDueUs = 0 // its idle timeout may have moved earlier
      this.aAppend(id)
    } else {
      if (tsUs < this.f64[id * SLOT_F64 + D_START]!) {
        this.f64[id * SLOT_F64 + D_START] = tsUs
        this.nextDueUs = 0 // the active timeout of this flow (maybe the head) moved earlier
      }
      if (tsUs > this.f64[id * SLOT_F64 + D_LAST]!) this.f64[id * SLOT_F64 + D_LAST] = tsUs
    }
    // Move to the idle list's tail.
    if (this.iTail !== id) {
      this.iUnlink(id)
      this.iAppend(id)
    }
  }

  /** Export the flow's record and free it. */
  private expire(id: number, reason: EndReason): void {
    this.u32[id * SLOT_WORDS + W_REASON] = reason
    this.counters.exportedByReason[reason]! += 1
    this.onExpire(id, this)
    this.remove(id)
  }

  /** Active timeout: export the record so far, keep the flow (direction, L2 facts) with zeroed counters. */
  private exportActive(id: number): void {
    this.u32[id * SLOT_WORDS + W_REASON] = EndReason.ActiveTimeout
    this.counters.exportedByReason[EndReason.ActiveTimeout]! += 1
    this.onExpire(id, this)
    this.aUnlink(id)
    this.u32[id * SLOT_WORDS + W_FLAGS] = this.u32[id * SLOT_WORDS + W_FLAGS]! | F_PENDING
    for (let i = 0; i < this.stateFeatures.length; i++) this.stateFeatures[i]!.onReset(id)
  }

  private remove(id: number): void {
    const f = this.u32[id * SLOT_WORDS + W_FLAGS]!
    this.removeIndex(id)
    this.iUnlink(id)
    if ((f & F_PENDING) === 0) this.aUnlink(id)
    if ((f & F_CLOSING) !== 0) this.cUnlink(id)
    this.u32[id * SLOT_WORDS + W_FLAGS] = 0
    this.i32[id * SLOT_WORDS + W_INEXT] = this.freeHead
    this.freeHead = id
    this.count--
    this.counters.activeFlows = this.count
  }

  // The index: see DIST_BITS for an entry's layout. Probing compares tags first, so a lookup reads the key
  // of a flow only when the tag matches (1 in 2^tagBits for another flow, with a million-flow cache 1 in 256).

  /** The tag field of hash `h` (0 when the layout leaves no tag bits). */
  private tagOf(h: number): number {
    return ((h >>> this.tagRight) << (this.idBits + DIST_BITS)) & this.tagField
  }

  private find(key: Uint32Array, h: number): number {
    const mask = this.indexMask
    const u32 = this.u32
    const index = this.index
    const idMask = this.idMask
    const tagField = this.tagField
    const tag = this.tagOf(h)
    let slot = h & mask
    while (true) {
      const e = index[slot]!
      if (e === 0) {
        this.emptySlot = slot
        return NIL
      }
      if ((e & tagField) === tag) {
        const id = (e & idMask) - 1
        const base = id * SLOT_WORDS
        let same = true
        for (let i = 0; i < KEY_WORDS; i++) {
          if (u32[base + i] !== key[i]) {
            same = false
            break
          }
        }
        if (same) return id
      }
      slot = (slot + 1) & mask
    }
  }

  /** Write the entry of flow `id` (hash `h`) into the empty index slot `slot`. */
  private setEntry(slot: number, id: number, h: number): void {
    const dist = (slot - h) & this.indexMask
    this.index[slot] = this.tagOf(h) | ((dist < DIST_MAX ? dist : DIST_MAX) << this.idBits) | (id + 1)
  }

  private insertIndex(id: number, h: number): void {
    const mask = this.indexMask
    const index = this.index
    let slot = h & mask
    while (index[slot] !== 0) slot = (slot + 1) & mask
    this.setEntry(slot, id, h)
  }

  /** How far the entry `e` at index slot `slot` is from its home slot. */
  private distance(e: number, slot: number): number {
    const d = (e >>> this.idBits) & DIST_MAX
    if (d < DIST_MAX) return d
    const id = (e & this.idMask) - 1
    return (slot - this.u32[id * SLOT_WORDS + W_HASH]!) & this.indexMask
  }

  /** Linear-probing deletion by backward shift (no tombstones, so lookups never degrade). */
  private removeIndex(id: number): void {
    this.emptySlot = NIL
    const mask = this.indexMask
    const index = this.index
    const idMask = this.idMask
    const idBits = this.idBits
    const entryId = id + 1
    let slot = this.u32[id * SLOT_WORDS + W_HASH]! & mask
    while ((index[slot]! & idMask) !== entryId) slot = (slot + 1) & mask
    let hole = slot
    let next = (hole + 1) & mask
    while (true) {
      const e = index[next]!
      if (e === 0) break
      // An entry may fill the hole when the hole lies between its home slot and where it is.
      const d = this.distance(e, next)
      const back = (next - hole) & mask
      if (d >= back) {
        const nd = d - back
        index[hole] = (e & ~(DIST_MAX << idBits)) | ((nd < DIST_MAX ? nd : DIST_MAX) << idBits)
        hole = next
      }
      next = (next + 1) & mask
    }
    index[hole] = 0
  }

  /** Double the index (or make the first one) and put every live flow back in. */
  private growIndex(): void {
    let size = this.index.length === 0 ? INDEX_MIN_SIZE : this.index.length * 2
    while (this.count + 1 > size * INDEX_MAX_LOAD) size *= 2
    this.emptySlot = NIL
    this.index = new Int32Array(size)
    this.indexMask = size - 1
    this.indexLimit = Math.floor(size * INDEX_MAX_LOAD)
    for (let id = 0; id < this.used; id++) {
      if (this.isLive(id)) this.insertIndex(id, this.u32[id * SLOT_WORDS + W_HASH]!)
    }
  }

  private grow(capacity: number): void {
    const used = this.used
    const buf = new ArrayBuffer(capacity * SLOT_WORDS * 4)
    const u32 = new Uint32Array(buf)
    u32.set(this.u32.subarray(0, Math.min(used, capacity) * SLOT_WORDS))
    this.u32 = u32
    this.i32 = new Int32Array(buf)
    this.f64 = new Float64Array(buf)
    for (const f of this.features) f.resize(capacity, used)
    this.capacity = capacity
  }

  /** A slot is live when it is on the idle list (every live flow is, free slots are not). */
  private isLive(id: number): boolean {
    return this.iHead === id || this.i32[id * SLOT_WORDS + W_IPREV] !== NIL
  }

  // Intrusive lists. A free or unlinked slot has prev = NIL and is not the head.
  private iAppend(id: number): void {
    const i32 = this.i32
    const tail = this.iTail
    i32[id * SLOT_WORDS + W_IPREV] = tail
    i32[id * SLOT_WORDS + W_INEXT] = NIL
    if (tail !== NIL) i32[tail * SLOT_WORDS + W_INEXT] = id
    else {
      this.iHead = id
      this.nextDueUs = 0
    }
    this.iTail = id
  }
  private iUnlink(id: number): void {
    const i32 = this.i32
    const b = id * SLOT_WORDS
    const p = i32[b + W_IPREV]!
    const n = i32[b + W_INEXT]!
    if (p !== NIL) i32[p * SLOT_WORDS + W_INEXT] = n
    else {
      this.iHead = n
      this.nextDueUs = 0
    }
    if (n !== NIL) i32[n * SLOT_WORDS + W_IPREV] = p
    else this.iTail = p
    i32[b + W_IPREV] = NIL
    i32[b + W_INEXT] = NIL
  }
  private aAppend(id: number): void {
    const i32 = this.i32
    const tail = this.aTail
    i32[id * SLOT_WORDS + W_APREV] = tail
    i32[id * SLOT_WORDS + W_ANEXT] = NIL
    if (tail !== NIL) i32[tail * SLOT_WORDS + W_ANEXT] = id
    else {
      this.aHead = id
      this.nextDueUs = 0
    }
    this.aTail = id
  }
  private aUnlink(id: number): void {
    const i32 = this.i32
    const b = id * SLOT_WORDS
    const p = i32[b + W_APREV]!
    const n = i32[b + W_ANEXT]!
    if (p !== NIL) i32[p * SLOT_WORDS + W_ANEXT] = n
    else {
      this.aHead = n
      this.nextDueUs = 0
    }
    if (n !== NIL) i32[n * SLOT_WORDS + W_APREV] = p
    else this.aTail = p
    i32[b + W_APREV] = NIL
    i32[b + W_ANEXT] = NIL
  }
  private cAppend(id: number): void {
    const i32 = this.i32
    const tail = this.cTail
    i32[id * SLOT_WORDS + W_CPREV] = tail
    i32[id * SLOT_WORDS + W_CNEXT] = NIL
    if (tail !== NIL) i32[tail * SLOT_WORDS + W_CNEXT] = id
    else {
      this.cHead = id
      this.nextDueUs = 0
    }
    this.cTail = id
  }
  private cUnlink(id: number): void {
    const i32 = this.i32
    const b = id * SLOT_WORDS
    const p = i32[b + W_CPREV]!
    const n = i32[b + W_CNEXT]!
    if (p !== NIL) i32[p * SLOT_WORDS + W_CNEXT] = n
    else {
      this.cHead = n
      this.nextDueUs = 0
    }
    if (n !== NIL) i32[n * SLOT_WORDS + W_CPREV] = p
    else this.cTail = p
    i32[b + W_CPREV] = NIL
    i32[b + W_CNEXT] = NIL
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
