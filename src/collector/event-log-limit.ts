/**
 * Bounds the template events and options data records `flowtel collect` logs to stderr: per exporter and kind
 * (the event with its status: `template/added`, `template/unchanged`, `withdrawal`, ..., or `options-data`),
 * the first `perWindow` events of each window of `windowMs` are logged and the rest only counted; when the
 * window ends, one summary says how many of that kind from that exporter were left out. A flood of template messages (many exporters, refreshes,
 * withdrawals, re-definitions, hostile input) so costs a few lines per exporter and kind per window, not one
 * per event. The exact counts stay in the collector's counters (decode-message.ts): this class limits the log
 * only. At most `maxKeys` (exporter, kind) pairs of named exporters are tracked; events of further exporters
 * share one pair per kind whose exporter is `*` (the kinds are the few the collector emits), so the limiter's
 * memory is bounded however many exporters there are.
 */

export interface EventLogLimitOptions {
  /** Events logged per (exporter, kind) per window; 0 logs every event. Default 20. */
  perWindow?: number
  /** Window length, in the clock's milliseconds. Default 60 000. */
  windowMs?: number
  /** (exporter, kind) pairs of named exporters tracked at most. Default 1024. */
  maxKeys?: number
}

/** The summary of one window in which events were left out of the log. */
export interface SuppressedEvents {
  readonly exporter: string
  readonly kind: string
  /** Events of the window not logged. */
  readonly suppressed: number
  /** Events of the window logged. */
  readonly logged: number
  /** Clock milliseconds from the window's start to its end (or to the last event, at drain). */
  readonly ms: number
}

interface Window {
  readonly exporter: string
  readonly kind: string
  start: number
  last: number
  logged: number
  suppressed: number
}

/** Exporter name of the shared pair once `maxKeys` is reached. */
export const OTHER_EXPORTERS = '*'

export class EventLogLimit {
  private readonly perWindow: number
  private readonly windowMs: number
  private readonly maxKeys: number
  /** Windows of named exporters, by `exporter kind`. */
  private readonly windows = new Map<string, Window>()
  /** Windows of the exporters beyond maxKeys, by kind. */
  private readonly others = new Map<string, Window>()
  /** Summaries of windows that ended, not yet taken by due(). */
  private ended: SuppressedEvents[] = []
  /** No window ends before this (a lower bound: a window restarted by admit() may end later). */
  private earliestEnd = Infinity
  /** due() looks through the windows again no sooner than this. */
  private sweepAfter = -Infinity

  constructor(opts: EventLogLimitOptions = {}) {
    this.perWindow = opts.perWindow ?? 20
    this.windowMs = opts.windowMs ?? 60_000
    this.maxKeys = Math.max(1, opts.maxKeys ?? 1024)
  }

  /** (exporter, kind) pairs tracked now. */
  get size(): number {
    return this.windows.size + this.others.size
  }

  /** One event of `kind` from `exporter` at clock time `now`: true when it is to be logged. */
  admit(exporter: string, kind: string, now: number): boolean {
    if (this.perWindow <= 0) return true
    let map = this.windows
    let key = `${exporter} ${kind}`
    let w = map.get(key)
    if (w === undefined && map.size >= this.maxKeys) {
      map = this.others
      exporter = OTHER_EXPORTERS
      key = kind
      w = map.get(key)
    }
    if (w !== undefined && now - w.start >= this.windowMs) {
      this.close(w, w.start + this.windowMs)
      w.start = now
      w.logged = w.suppressed = 0
    }
    if (w === undefined) {
      w = { exporter, kind, start: now, last: now, logged: 0, suppressed: 0 }
      map.set(key, w)
      if (now + this.windowMs < this.earliestEnd) this.earliestEnd = now + this.windowMs
    }
    w.last = now
    if (w.logged < this.perWindow) {
      w.logged++
      return true
    }
    w.suppressed++
    return false
  }

  /**
   * The summaries of the windows that ended by `now` (call it now and then: after each batch of events, from a
   * timer). Pairs whose window ended are forgotten, so quiet exporters cost nothing. The pairs are looked
   * through at most once per tenth of a window, so a summary may come that much after its window ended.
   */
  due(now: number): readonly SuppressedEvents[] {
    if (now >= this.earliestEnd && now >= this.sweepAfter) {
      this.sweepAfter = now + this.windowMs / 10
      this.earliestEnd = Infinity
      for (const map of [this.windows, this.others])
        for (const [key, w] of map) {
          if (now - w.start >= this.windowMs) {
            this.close(w, w.start + this.windowMs)
            map.delete(key)
          } else if (w.start + this.windowMs < this.earliestEnd) this.earliestEnd = w.start + this.windowMs
        }
    }
    return this.take()
  }

  /** At the end: the summaries of every window still open (up to its last event), and all pairs forgotten. */
  drain(): readonly SuppressedEvents[] {
    for (const map of [this.windows, this.others]) {
      for (const w of map.values()) this.close(w, w.last)
      map.clear()
    }
    this.earliestEnd = Infinity
    return this.take()
  }

  private close(w: Window, end: number): void {
    if (w.suppressed > 0)
      this.ended.push({
        exporter: w.exporter,
        kind: w.kind,
        suppressed: w.suppressed,
        logged: w.logged,
        ms: end - w.start,
      })
  }

  private take(): readonly SuppressedEvents[] {
    if (this.ended.length === 0) return NONE
    const out = this.ended
    this.ended = []
    return out
  }
}

const NONE: readonly SuppressedEvents[] = []
