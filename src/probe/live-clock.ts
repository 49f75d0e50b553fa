/**
 * The live probe's sense of time on a quiet link.
 *
 * Flow timeouts run on packet time (pipeline.ts): kernel timestamps of the packets. On a link without
 * packets time would stand still and no flow would ever expire, so once a second the service advances the
 * pipeline to the wall clock. Kernel timestamps lag the wall clock by the batch delay (libpcap buffer
 * timeout, batch flush, event loop), so the wall clock is taken `lagUs` (1 s) back; and the clock is only
 * advanced when no batch arrived since the previous tick, so time never runs ahead of packets still queued
 * behind a busy capture (a busy link advances time by its own packets, which is exact).
 */

export const DEFAULT_CLOCK_LAG_US = 1_000_000

export class LiveClock {
  private batchesSinceTick = 0

  constructor(
    /** Wall clock in µs since the epoch (tests inject one). */
    private readonly wallUs: () => number = () => Date.now() * 1000,
    private readonly lagUs = DEFAULT_CLOCK_LAG_US,
  ) {}

  /** A capture handed a batch over. */
  sawBatch(): void {
    this.batchesSinceTick++
  }

  /** Called once a second: the time to advance to, or undefined while batches keep arriving. */
  tick(): number | undefined {
    const busy = this.batchesSinceTick > 0
    this.batchesSinceTick = 0
    return busy ? undefined : this.wallUs() - this.lagUs
  }

  /** The wall clock µs (for the start time of the service and generation deadlines before any packet). */
  nowUs(): number {
    return this.wallUs()
  }
}
