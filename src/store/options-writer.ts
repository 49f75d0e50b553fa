/**
 * Stores the options data the collector decodes (store/options-rows.ts) in the options table of a store:
 * rows are de-duplicated by the recorder and written in the background, one write at a time, in order; a
 * failed write keeps its rows for the next one. `close` waits for everything.
 */
import type { DecodeOutput } from '../collector/decode-message.js'
import { OptionsRecorder, type OptionRow, type OptionsRecorderOptions } from './options-rows.js'
import type { FlowStore } from './store.js'

export class OptionsWriter {
  readonly recorder: OptionsRecorder
  private chain: Promise<void> = Promise.resolve()
  private retry: OptionRow[] = []
  readonly stats = { rows: 0, writes: 0, errors: 0 }

  constructor(
    private readonly store: FlowStore,
    opts: OptionsRecorderOptions & { onError?: (e: unknown) => void } = {},
  ) {
    this.recorder = new OptionsRecorder(opts)
    this.onError = opts.onError
  }

  private readonly onError: ((e: unknown) => void) | undefined

  /** Takes the options records of one decode output; the write starts in the background. */
  add(o: DecodeOutput, nowMs = Date.now()): void {
    if (this.recorder.add(o, nowMs) > 0) void this.flush()
  }

  /** Writes what is queued; resolves when it and every earlier write are done (errors are reported). */
  flush(): Promise<void> {
    this.chain = this.chain.then(async () => {
      const rows = [...this.retry, ...this.recorder.take()]
      this.retry = []
      if (rows.length === 0) return
      try {
        await this.store.insertOptions(rows)
        this.stats.rows += rows.length
        this.stats.writes++
      } catch (e) {
        this.stats.errors++
        this.retry = rows.length <= 100_000 ? rows : rows.slice(-100_000)
        this.onError?.(e)
      }
    })
    return this.chain
  }
}
