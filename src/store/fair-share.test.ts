// The fair share of the store thread's queue (fair-share.ts, worker-store.ts, BatchWriter in store.ts): real
// IPFIX messages from two exporters go through the collector's fast path into the batch writer and a
// WorkerStore over a fake store thread that stores a fixed number of rows per round (slower than the input).
// Under overload the small exporter keeps every record while the flood loses and is counted; the queue stays
// within its ceiling; with one exporter the drops are those of the tail drop alone (figures measured with the
// WorkerStore before the fair share, over the same fake thread).
import { describe, expect, it } from 'vitest'
import { ipfixMessage } from '../../test/helpers/ipfix-messages.js'
import { FlowCollector } from '../collector/decode-message.js'
import type { SessionKey } from '../collector/session.js'
import { COLUMNS } from '../schema/columns.js'
import { FairShare } from './fair-share.js'
import { storeRecords } from './ingest.js'
import { BatchWriter } from './store.js'
import { fromWire, type Reply, type Request } from './worker-wire.js'
import { WorkerStore, type StoreThread } from './worker-store.js'

/** A store thread that holds every insert until `drain` stores up to `rows` rows of the oldest ones. */
class SlowThread implements StoreThread {
  private readonly waiting: Request[] = []
  private onReply: ((r: Reply) => void) | undefined
  /** Rows stored, by exporter column. */
  readonly storedBy = new Map<string, number>()

  postMessage(value: unknown): void {
    this.waiting.push(value as Request)
  }
  on(event: string, listener: (...a: never[]) => void): this {
    if (event === 'message') this.onReply = listener as (r: Reply) => void
    return this
  }
  terminate(): Promise<number> {
    return Promise.resolve(0)
  }

  /** Stores whole inserts, oldest first, while they fit in `rows` rows (at least one). */
  drain(rows: number): void {
    let left = rows
    while (this.waiting.length > 0) {
      const r = this.waiting[0]!
      const batch =
        r.op === 'insertTyped' ? fromWire(r.batch).toColumnBatch() : r.op === 'insert' ? r.batch : undefined
      const n = batch?.length ?? 0
      if (n > left && left < rows) break
      this.waiting.shift()
      left -= n
      for (const e of batch?.columns['exporter'] ?? [])
        this.storedBy.set(String(e), (this.storedBy.get(String(e)) ?? 0) + 1)
      this.onReply?.({ id: r.id, ok: true })
      if (left <= 0) break
    }
  }
}

const FIELDS = [
  { id: 8, pen: 0, length: 4 }, // sourceIPv4Address
  { id: 1, pen: 0, length: 8 }, // octetDeltaCount
]

function key(exporterAddress: string): SessionKey {
  return {
    protocol: 'udp',
    exporterAddress,
    exporterPort: 4000,
    collectorAddress: '127.0.0.1',
    collectorPort: 4739,
  }
}

/** An IPFIX message of `n` records (the template with the first one of a session). */
function message(n: number, seq: number): Buffer {
  const records = Array.from({ length: n }, (_, i) => [
    Uint8Array.of(10, 0, 0, i & 255),
    Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 100),
  ])
  return ipfixMessage({ templateId: 256, fields: FIELDS, records, withTemplate: seq === 0, sequence: seq })
}

interface Run {
  store: WorkerStore
  thread: SlowThread
  sent: Map<string, number>
  peakHeld: number
}

/**
 * Rounds of input: per round the flood sends 5 messages of 40 records (200) and, with `small`, the small
 * exporter one of 2 (1 %); the store takes 100 rows per round. Queue bound 2 000 rows, batches of 100.
 */
async function run(small: boolean, rounds = 200): Promise<Run> {
  const thread = new SlowThread()
  const store = WorkerStore.attach(thread, { maxQueuedRows: 2000 })
  const writer = new BatchWriter(
    store,
    COLUMNS.map((c) => c.name),
    { maxRows: 100, maxDelayMs: 3_600_000 },
  )
  const col = new FlowCollector()
  col.columnSink = writer
  const sent = new Map<string, number>()
  let peakHeld = 0
  const send = (exporter: string, n: number, seq: number): void => {
    storeRecords(writer, col.decode(message(n, seq), key(exporter)))
    sent.set(exporter, (sent.get(exporter) ?? 0) + n)
    peakHeld = Math.max(peakHeld, store.fairShare.held)
  }
  for (let round = 0; round < rounds; round++) {
    for (let m = 0; m < 5; m++) send('192.0.2.1', 40, round * 5 + m)
    if (small) send('198.51.100.7', 2, round)
    await writer.flush()
    thread.drain(100)
  }
  await writer.flush()
  return { store, thread, sent, peakHeld }
}

describe('fair share of the store queue between exporters', () => {
  it("keeps a small exporter's records under a flood, drops and counts the flood's", async () => {
    const { store, thread, sent, peakHeld } = await run(true)
    const s = store.stats
    // Everything the small exporter sent reached the store (or waits in the queue, none dropped).
    const smallDropped = store.fairShare.topDropped().find((e) => e.exporter === '198.51.100.7')
    expect(smallDropped).toBeUndefined()
    while (store.stats.queued > 0) thread.drain(100)
    expect(thread.storedBy.get('198.51.100.7')).toBe(sent.get('198.51.100.7'))
    // The flood lost rows, every one of them counted against it; the totals add up.
    const flood = store.fairShare.topDropped()[0]!
    expect(flood).toMatchObject({ exporter: '192.0.2.1', domain: 7 })
    expect(flood.dropped).toBeGreaterThan(0)
    expect(thread.storedBy.get('192.0.2.1')! + flood.dropped).toBe(sent.get('192.0.2.1'))
    expect(s.dropped).toBe(flood.dropped)
    expect(s.stored).toBe(thread.storedBy.get('192.0.2.1')! + sent.get('198.51.100.7')!)
    // Memory: the queue never passed the bound plus the reserve; rows held (queue and writer) neither.
    expect(s.peakQueued).toBeLessThanOrEqual(2000 + 250)
    expect(peakHeld).toBeLessThanOrEqual(2000 + 250)
    expect(store.fairShare.held).toBe(0)
  })

  it('with one exporter drops as the tail drop alone did', async () => {
    const { store, thread, sent } = await run(false)
    const s = store.stats
    // Figures of the WorkerStore before the fair share, over the same input and fake thread.
    expect(s).toMatchObject({ stored: 20_000, queued: 1920, dropped: 18_080, droppedBatches: 181 })
    expect(s.peakQueued).toBe(2000)
    expect(s.droppedFairShare).toBe(0)
    while (store.stats.queued > 0) thread.drain(100)
    expect(thread.storedBy.get('192.0.2.1')! + s.dropped).toBe(sent.get('192.0.2.1'))
    expect(store.fairShare.topDropped()).toEqual([{ exporter: '192.0.2.1', domain: 7, dropped: 18_080 }])
  })
})

describe('FairShare', () => {
  it('refuses an exporter over its share past the bound, takes one within it up to the ceiling', () => {
    const f = new FairShare({ boundRows: 100, reserveRows: 10 })
    const a = f.share('a', 1)
    const b = f.share('b', 1)
    expect(f.admit(a, 100)).toBe(true) // alone and within the bound
    expect(f.admit(a, 5)).toBe(true) // alone: left to the queue's tail drop
    expect(f.ceilingRows).toBe(100)
    expect(f.admit(b, 5)).toBe(true) // past the bound, within its share (105 / 2)
    expect(f.ceilingRows).toBe(110)
    expect(f.admit(a, 1)).toBe(false) // over its share
    expect(f.admit(b, 1)).toBe(false) // within its share, but past the ceiling
    expect(a.dropped + b.dropped).toBe(2)
    f.release(new Map([[a, 105]]))
    expect(f.active).toBe(1)
    expect(f.held).toBe(5)
  })

  it('counts at most maxExporters one by one, the rest as "other"', () => {
    const f = new FairShare({ boundRows: 10, maxExporters: 2 })
    const a = f.share('a', 1)
    f.admit(a, 10)
    f.share('b', 1).dropped = 3
    // Full: b holds nothing and is forgotten (its drops go to "other") to make room for c.
    const c = f.share('c', 1)
    expect(c.exporter).toBe('c')
    expect(f.admit(c, 1)).toBe(true)
    // Full, and every exporter counted holds rows: d is counted as "other".
    expect(f.share('d', 1).exporter).toBe('other')
    expect(f.topDropped()).toEqual([{ exporter: 'other', domain: 0, dropped: 3 }])
  })
})
