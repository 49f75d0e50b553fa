/**
 * Fair share of the store thread's queue between exporters (worker-store.ts): rows an exporter (source
 * address and observation domain, as the collector keys them) has waiting for the store, from the moment the
 * batch writer takes them (store.ts, BatchWriter) until the thread stores them or they are dropped. While the
 * rows held stay within the bound, every exporter's rows are taken. Past it, with two or more exporters
 * holding rows, the rows of an exporter holding more than its share (bound / exporters holding rows) are
 * refused before they are buffered (counted, per exporter), and an exporter within its share is still taken
 * up to the ceiling (bound + reserve), so a small exporter is not starved by a flood and memory stays
 * bounded. With one exporter holding rows nothing is refused here: the queue's tail drop at the bound
 * decides, as it did before this policy. Per-exporter counters are kept for `maxExporters` exporters at
 * most; a new one past that is counted under "other", and an exporter holding nothing can be forgotten (its
 * drops then move to "other").
 */

/** One exporter's rows: held (buffered or queued, not yet stored), dropped (refused or tail-dropped). */
export interface ExporterShare {
  readonly exporter: string
  readonly domain: number
  held: number
  dropped: number
}

/** Rows of a batch by exporter (what the batch writer hands over with each batch). */
export type ShareOwners = Map<ExporterShare, number>

export interface FairShareOptions {
  /** Rows held at most before the fair share applies (the queue's row bound). */
  boundRows: number
  /** Rows above the bound still taken for exporters within their share. Default bound / 8. */
  reserveRows?: number
  /** Exporters counted one by one at most (more go to "other"). Default 1024. */
  maxExporters?: number
}

export class FairShare {
  readonly boundRows: number
  readonly reserveRows: number
  private readonly maxExporters: number
  /** Exporters by address, then observation domain (no key string built per data set). */
  private readonly byExporter = new Map<string, Map<number, ExporterShare>>()
  private tracked = 0
  private readonly other: ExporterShare = { exporter: 'other', domain: 0, held: 0, dropped: 0 }
  /** Rows held by all exporters, exporters holding any, rows refused by the fair share (not tail drops). */
  held = 0
  active = 0
  refused = 0

  constructor(opts: FairShareOptions) {
    this.boundRows = opts.boundRows
    this.reserveRows = opts.reserveRows ?? Math.ceil(opts.boundRows / 8)
    this.maxExporters = opts.maxExporters ?? 1024
  }

  /** The queue's row bound now: the bound plus the reserve while two or more exporters hold rows. */
  get ceilingRows(): number {
    return this.active >= 2 ? this.boundRows + this.reserveRows : this.boundRows
  }

  /** The counters of an exporter (created on first use; "other" past maxExporters). */
  share(exporter: string, domain: number): ExporterShare {
    let domains = this.byExporter.get(exporter)
    const known = domains?.get(domain)
    if (known !== undefined) return known
    if (this.tracked >= this.maxExporters && !this.forgetOne()) return this.other
    if (domains === undefined) {
      domains = new Map()
      this.byExporter.set(exporter, domains)
    }
    const s: ExporterShare = { exporter, domain, held: 0, dropped: 0 }
    domains.set(domain, s)
    this.tracked++
    return s
  }

  /** Forgets an exporter holding nothing (its drops move to "other"); false when all hold rows. */
  private forgetOne(): boolean {
    // Every exporter counted holds rows: nothing to forget (and no scan per data set of "other").
    if (this.active - (this.other.held > 0 ? 1 : 0) >= this.tracked) return false
    for (const [exporter, domains] of this.byExporter)
      for (const [domain, s] of domains)
        if (s.held === 0) {
          this.other.dropped += s.dropped
          domains.delete(domain)
          if (domains.size === 0) this.byExporter.delete(exporter)
          this.tracked--
          return true
        }
    return false
  }

  /**
   * True when `rows` rows of exporter `s` may be buffered (they are then held until released); false when
   * refused by the fair share (counted as dropped for `s` and in `refused`).
   */
  admit(s: ExporterShare, rows: number): boolean {
    if (this.held + rows > this.boundRows) {
      const active = this.active + (s.held === 0 ? 1 : 0)
      if (active >= 2) {
        const fair = s.held + rows <= this.boundRows / active
        if (!fair || this.held + rows > this.boundRows + this.reserveRows) {
          s.dropped += rows
          this.refused += rows
          return false
        }
      }
    }
    if (s.held === 0) this.active++
    s.held += rows
    this.held += rows
    return true
  }

  /** The rows of a batch left the queue (stored, failed, abandoned or dropped): no longer held. */
  release(owners: ShareOwners): void {
    for (const [s, rows] of owners) {
      s.held -= rows
      this.held -= rows
      if (s.held === 0) this.active--
    }
  }

  /** The rows of a batch dropped whole at the queue (tail drop): counted per exporter and released. */
  dropped(owners: ShareOwners): void {
    for (const [s, rows] of owners) s.dropped += rows
    this.release(owners)
  }

  /** The `n` exporters that lost the most rows, and "other" for the rest (for status and summary). */
  topDropped(n = 10): { exporter: string; domain: number; dropped: number }[] {
    const all: ExporterShare[] = []
    for (const domains of this.byExporter.values())
      for (const s of domains.values()) if (s.dropped > 0) all.push(s)
    all.sort((a, b) => b.dropped - a.dropped)
    const top = all.slice(0, n).map((s) => ({ exporter: s.exporter, domain: s.domain, dropped: s.dropped }))
    let rest = this.other.dropped
    for (const s of all.slice(n)) rest += s.dropped
    if (rest > 0) top.push({ exporter: 'other', domain: 0, dropped: rest })
    return top
  }
}
