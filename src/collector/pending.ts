/**
 * Data Sets that arrive before their template (RFC 7011 §8 MAY buffer, §9.3; RFC 5153 §3.1/§4.1 discard after a
 * configurable wait), kept as copies and handed back when the template arrives. Bounded by set count, bytes
 * and age (RFC 7011 §11.4: a state-exhaustion vector): when full the oldest set is evicted; every set that
 * leaves without being decoded is counted (`pending_evicted`, `pending_expired`). Sets are indexed by key and
 * by session, so taking a key's sets or dropping a session's costs what they hold, not what the store holds.
 */
import { SetIndex } from '../util/set-index.js'

/** What a deferred set needs to be decoded later as if it had been decoded on arrival. */
export interface MessageContext {
  readonly version: 9 | 10
  readonly session: string
  readonly exporter: string
  readonly domain: number
  /** Export time in seconds (IPFIX Export Time, NetFlow v9 UNIX secs). */
  readonly exportTime: number
  readonly sequence: number
  /** NetFlow v9 sysUpTime in ms (for FIRST/LAST_SWITCHED); 0 for IPFIX. */
  readonly sysUptime: number
}

export interface PendingSet {
  readonly key: string
  readonly templateId: number
  readonly body: Uint8Array
  readonly ctx: MessageContext
  readonly arrivedAt: number
}

export interface PendingOptions {
  /** Sets kept at most. Default 10 000. */
  maxSets?: number
  /** Bytes kept at most. Default 16 MiB. */
  maxBytes?: number
  /** Age after which a set is dropped, in ms. Default 1 800 000 (30 min, RFC 5153 §4.1). */
  maxAgeMs?: number
}

export class PendingStore {
  readonly counters: Record<string, number> = {}
  /** Insertion (arrival) order, for eviction and expiry. */
  private readonly sets = new Map<number, PendingSet>()
  private readonly byKey = new Map<string, number[]>()
  /** Set ids of each session, so dropSession costs what the session holds. */
  private readonly bySession = new SetIndex<string, number>()
  private nextId = 0
  private bytesHeld = 0
  private readonly maxSets: number
  private readonly maxBytes: number
  readonly maxAgeMs: number

  constructor(opts: PendingOptions = {}) {
    this.maxSets = opts.maxSets ?? 10_000
    this.maxBytes = opts.maxBytes ?? 16 * 1024 * 1024
    this.maxAgeMs = opts.maxAgeMs ?? 1_800_000
  }

  private count(name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n
  }

  get size(): number {
    return this.sets.size
  }

  get bytes(): number {
    return this.bytesHeld
  }

  /** Keeps a copy of `body` under `key`; false (counted) when it can never fit. */
  add(key: string, templateId: number, body: Uint8Array, ctx: MessageContext, now: number): boolean {
    if (this.maxSets <= 0 || body.byteLength > this.maxBytes) {
      this.count('pending_rejected')
      return false
    }
    this.expire(now)
    while (this.sets.size >= this.maxSets || this.bytesHeld + body.byteLength > this.maxBytes) {
      const first = this.sets.keys().next()
      if (first.done) break
      this.drop(first.value)
      this.count('pending_evicted')
    }
    const id = this.nextId++
    this.sets.set(id, { key, templateId, body: body.slice(), ctx, arrivedAt: now })
    let list = this.byKey.get(key)
    if (list === undefined) this.byKey.set(key, (list = []))
    list.push(id)
    this.bySession.add(ctx.session, id)
    this.bytesHeld += body.byteLength
    this.count('pending_added')
    return true
  }

  /** Takes every set waiting for `key`, oldest first. */
  take(key: string): PendingSet[] {
    const ids = this.byKey.get(key)
    if (ids === undefined) return []
    this.byKey.delete(key)
    const out: PendingSet[] = []
    for (const id of ids) {
      const s = this.sets.get(id)
      if (s === undefined) continue
      this.sets.delete(id)
      this.bySession.delete(s.ctx.session, id)
      this.bytesHeld -= s.body.byteLength
      out.push(s)
    }
    return out
  }

  /** Drops sets older than maxAgeMs; returns how many. */
  expire(now: number): number {
    let n = 0
    for (const [id, s] of this.sets) {
      if (now - s.arrivedAt <= this.maxAgeMs) break // arrival order: the rest are younger
      this.drop(id)
      n++
    }
    if (n > 0) this.count('pending_expired', n)
    return n
  }

  /** Drops everything waiting for templates of `session` (its templates are gone for good). */
  dropSession(session: string): number {
    const ids = this.bySession.members(session)
    for (const id of ids) this.drop(id)
    if (ids.length > 0) this.count('pending_session_closed', ids.length)
    return ids.length
  }

  private drop(id: number): void {
    const s = this.sets.get(id)
    if (s === undefined) return
    this.sets.delete(id)
    this.bySession.delete(s.ctx.session, id)
    this.bytesHeld -= s.body.byteLength
    const ids = this.byKey.get(s.key)
    if (ids !== undefined) {
      const i = ids.indexOf(id)
      if (i >= 0) ids.splice(i, 1)
      if (ids.length === 0) this.byKey.delete(s.key)
    }
  }
}
