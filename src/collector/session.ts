/**
 * Transport sessions and sequence accounting (RFC 7011 §8, §10.3.2, §11.6; RFC 3954 §5.1; NetFlow v5).
 *
 * A transport session is (exporter address, exporter port, collector address, collector port, protocol):
 * templates never cross sessions (RFC 7011 §8). Sequence numbers are tracked per (session, observation
 * domain) modulo 2^32: a forward gap counts lost records, a backward step counts reordered (or duplicated)
 * records, and data is never dropped for it. A jump further than the configured windows does not move the
 * expectation at once (an attacker must not blind the check, §11.6): it is resynchronised only when several
 * messages in a row continue from the jump (an exporter restart, also one that restarts behind the
 * expectation), and counted as a reset. The trackers of a session are bounded (least recently used dropped).
 */

export type TransportProtocol = 'udp' | 'tcp' | 'file'

export interface SessionKey {
  readonly exporterAddress: string
  readonly exporterPort: number
  readonly collectorAddress: string
  readonly collectorPort: number
  readonly protocol: TransportProtocol
}

/** Stable text id of a session, used as a map key and in persisted template files. */
export function sessionId(s: SessionKey): string {
  return `${s.protocol}:${s.exporterAddress}:${s.exporterPort}>${s.collectorAddress}:${s.collectorPort}`
}

/** The session offline reads use: one file stream, as one exporter. */
export const FILE_SESSION: SessionKey = {
  exporterAddress: '0.0.0.0',
  exporterPort: 0,
  collectorAddress: '0.0.0.0',
  collectorPort: 0,
  protocol: 'file',
}

export interface SequenceOptions {
  /** Forward gaps above this many units are suspect (a restart or an attack), not loss. Default 2^24. */
  maxGap?: number
  /** Backward steps up to this many units are reordering; further back is a suspect jump. Default 2^16. */
  reorderWindow?: number
  /** Consecutive messages continuing each other off the expectation that mean a restart. Default 3. */
  resyncAfter?: number
  /**
   * Trackers (observation domains, sFlow sources) kept per session at most: the least recently used is
   * dropped and counted (`sequence_trackers_evicted`), so a sender that changes its domain in every message
   * cannot grow the session without bound (RFC 7011 §11.4). Default 4096.
   */
  maxTrackers?: number
}

export interface SequenceStats {
  /** Messages seen. */
  messages: number
  /** Units (records, or packets for NetFlow v9) the sequence numbers say were sent and never arrived. */
  lost: number
  /** Units that arrived after later ones (late, or duplicated). */
  reordered: number
  /** Messages whose sequence number was behind the expectation. */
  reorderedMessages: number
  /** Messages that started a gap. */
  gapEvents: number
  /** Suspect jumps (beyond the windows) seen, and how many were confirmed as a restart (resync). */
  jumps: number
  resets: number
  /** Messages whose own unit count is unknown (data waiting for a template): the next gap is not loss. */
  unverifiable: number
}

const TWO32 = 2 ** 32

/** Sequence state of one (session, observation domain). */
export class SequenceTracker {
  readonly stats: SequenceStats = {
    messages: 0,
    lost: 0,
    reordered: 0,
    reorderedMessages: 0,
    gapEvents: 0,
    jumps: 0,
    resets: 0,
    unverifiable: 0,
  }
  private expected: number | undefined
  /** Where the next message of a chain of off-expectation messages would start. */
  private candidate: number | undefined
  private chainMessages = 0
  private chainUnits = 0
  private chainBackward = 0
  private readonly resyncAfter: number
  /** The last message had an unknown unit count: `expected` is a lower bound. */
  private loose = false
  private readonly maxGap: number
  private readonly window: number

  constructor(opts: SequenceOptions = {}) {
    this.maxGap = opts.maxGap ?? 2 ** 24
    this.window = opts.reorderWindow ?? 2 ** 16
    this.resyncAfter = opts.resyncAfter ?? 3
  }

  /** The sequence number the next in-order message should carry (undefined before the first). */
  get next(): number | undefined {
    return this.expected
  }

  /**
   * One message with sequence number `seq` that carries `units` units (records; packets for NetFlow v9);
   * `units` undefined when not known yet (data sets waiting for their template).
   */
  observe(seq: number, units: number | undefined): void {
    const s = this.stats
    s.messages++
    seq = seq >>> 0
    if (units === undefined) s.unverifiable++
    const n = units ?? 0
    const exp = this.expected
    if (exp === undefined) {
      this.accept(seq, n, units === undefined)
      return
    }
    const d = (seq - exp + TWO32) % TWO32
    if (d === 0) {
      this.accept(seq, n, units === undefined)
      return
    }
    if (d < TWO32 / 2) {
      // Ahead of the expectation.
      if (this.loose) {
        this.accept(seq, n, units === undefined) // the previous message's records fill the gap
        return
      }
      if (d <= this.maxGap) {
        s.lost += d
        s.gapEvents++
        this.accept(seq, n, units === undefined)
        return
      }
    } else {
      const back = TWO32 - d
      if (back <= this.window) {
        s.reordered += n
        s.reorderedMessages++
        this.chain(seq, n, true) // a late message: the expectation stays, unless a restart chain forms
        return
      }
    }
    this.chain(seq, n, false)
  }

  /**
   * A message off the expectation (behind it, or beyond the windows). Messages that continue each other form
   * a chain; a chain of `resyncAfter` messages is an exporter restart: resynchronise, and take back the
   * reordering counted for it.
   */
  private chain(seq: number, n: number, backward: boolean): void {
    const s = this.stats
    if (this.candidate === seq) {
      this.chainMessages++
      if (backward) this.chainUnits += n
    } else {
      this.chainMessages = 1
      this.chainUnits = backward ? n : 0
      this.chainBackward = 0
      if (!backward) s.jumps++
    }
    if (backward) this.chainBackward++
    this.candidate = (seq + n) % TWO32
    if (this.chainMessages >= this.resyncAfter) {
      s.resets++
      s.reordered -= this.chainUnits
      s.reorderedMessages -= this.chainBackward
      this.accept(seq, n, false)
    }
  }

  private accept(seq: number, n: number, loose: boolean): void {
    this.expected = (seq + n) % TWO32
    this.candidate = undefined
    this.chainMessages = 0
    this.loose = loose
  }
}

/** Per-session state held by the collector: sequence trackers per observation domain, last activity. */
export class TransportSession {
  readonly id: string
  /** Trackers by `kind/domain`, least recently used first. */
  readonly sequences = new Map<string, SequenceTracker>()
  lastSeen = 0
  private readonly maxTrackers: number

  constructor(
    readonly key: SessionKey,
    private readonly seqOpts: SequenceOptions = {},
    private readonly count: (name: string) => void = () => {},
  ) {
    this.id = sessionId(key)
    this.maxTrackers = Math.max(1, seqOpts.maxTrackers ?? 4096)
  }

  /** The tracker for one domain: `kind` separates IPFIX, NetFlow v9 and v5 numbering (different units). */
  sequence(kind: string, domain: number): SequenceTracker {
    const l = this.last
    if (l !== undefined && l.kind === kind && l.domain === domain) return l.tracker
    const k = `${kind}/${domain}`
    let t = this.sequences.get(k)
    if (t !== undefined)
      this.sequences.delete(k) // re-inserted last: the map stays in least-recently-used order
    else {
      if (this.sequences.size >= this.maxTrackers) {
        const oldest = this.sequences.keys().next()
        if (!oldest.done) {
          this.sequences.delete(oldest.value)
          this.count('sequence_trackers_evicted')
        }
      }
      t = new SequenceTracker(this.seqOpts)
    }
    this.sequences.set(k, t)
    this.last = { kind, domain, tracker: t }
    return t
  }

  /** The tracker sequence() returned last (the most recently used: never the one evicted next). */
  private last: { kind: string; domain: number; tracker: SequenceTracker } | undefined
}
