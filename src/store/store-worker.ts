/**
 * The store thread (worker_threads): opens the store of `workerData.url` for writing and runs what the
 * main thread's WorkerStore (worker-store.ts) asks, one request at a time in arrival order, so a query
 * sees every row queued before it. Typed inserts that queued up behind a slow one go in as one insert where
 * the store has insertTypedMany (ClickHouse). Inserts are acknowledged once stored; a failed insert is kept and tried
 * again before the next request (and every RETRY_MS while nothing else comes), its rows still counted as
 * queued by the main thread, so the queue bound holds while a store is down. Once the main thread sets the
 * shared abandon flag (its close deadline passed), inserts not yet begun are acknowledged as abandoned
 * instead of stored, and the store closes without a checkpoint (DuckDB replays its log at the next open), so
 * the close that follows comes in bounded time.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { openStoreForWrite } from './open.js'
import type { FlowStore } from './store.js'
import { fromWire, type Reply, type Request } from './worker-wire.js'

const RETRY_MS = 1000
/** Rows of typed batches waiting in a row merged into one insert at most (stores with insertTypedMany). */
const MERGE_ROWS = 131_072

const port = parentPort
if (port === null) throw new Error('store-worker: not started as a worker thread')

const data = workerData as { url: string; control: SharedArrayBuffer }
/** [0] set to 1 by the main thread: abandon the inserts not yet begun. */
const control = new Int32Array(data.control)
const abandoning = (): boolean => Atomics.load(control, 0) === 1

let store: FlowStore
try {
  store = await openStoreForWrite(String(data.url))
} catch (e) {
  port.postMessage({ id: 0, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies Reply)
  process.exit(0)
}
port.postMessage({ id: 0, ok: true } satisfies Reply)

/** Inserts that failed, oldest first: [request ids, run]. */
const failed: Array<[number[], () => Promise<void>]> = []
let retryTimer: NodeJS.Timeout | undefined

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** Acknowledges the requests `ids` as abandoned (not stored: the close deadline passed). */
function abandon(ids: readonly number[]): void {
  for (const id of ids)
    port!.postMessage({
      id,
      ok: false,
      error: 'abandoned at the close deadline',
      abandoned: true,
    } satisfies Reply)
}

/** Tries the failed inserts again, in order; stops at the first that fails again. */
async function retry(): Promise<void> {
  if (abandoning()) {
    for (const [ids] of failed.splice(0)) abandon(ids)
    return
  }
  while (failed.length > 0) {
    const [ids, run] = failed[0]!
    try {
      await run()
    } catch (e) {
      port!.postMessage({ id: -1, ok: false, error: message(e) } satisfies Reply)
      return
    }
    failed.shift()
    for (const id of ids) port!.postMessage({ id, ok: true } satisfies Reply)
  }
}

function scheduleRetry(): void {
  if (retryTimer !== undefined || failed.length === 0) return
  retryTimer = setTimeout(() => {
    retryTimer = undefined
    chain = chain.then(retry).then(scheduleRetry)
  }, RETRY_MS)
}

/** Runs an insert of the requests `ids` (acknowledged once stored), or keeps it for retry() when it fails. */
async function insert(ids: number[], run: () => Promise<void>): Promise<void> {
  if (abandoning()) abandon(ids)
  else if (failed.length > 0) failed.push([ids, run])
  else
    try {
      await run()
      for (const id of ids) port!.postMessage({ id, ok: true } satisfies Reply)
    } catch (e) {
      failed.push([ids, run])
      port!.postMessage({ id: -1, ok: false, error: message(e) } satisfies Reply)
    }
  scheduleRetry()
}

async function handle(m: Request): Promise<void> {
  await retry()
  if (m.op === 'insert' || m.op === 'insertTyped') {
    const run =
      m.op === 'insert'
        ? () => store.insert(m.batch)
        : () => {
            const b = fromWire(m.batch)
            return store.insertTyped !== undefined ? store.insertTyped(b) : store.insert(b.toColumnBatch())
          }
    await insert([m.id], run)
    return
  }
  try {
    let value: unknown
    switch (m.op) {
      case 'query':
        value = await store.query(m.query)
        break
      case 'insertOptions':
        value = await store.insertOptions(m.rows)
        break
      case 'options':
        value = await store.options(m.query)
        break
      case 'retain':
        value = await store.retain(m.policy)
        break
      case 'count':
        value = await store.count()
        break
      case 'migrate':
        value = await store.migrate()
        break
      case 'close':
        if (retryTimer !== undefined) clearTimeout(retryTimer)
        // Inserts that still fail are given up (their ids acknowledged as failed).
        for (const [ids] of failed)
          for (const id of ids) port!.postMessage({ id, ok: false, error: 'store failing at close' })
        failed.length = 0
        // Past the deadline, the checkpoint (seconds and hundreds of MB per million rows not yet
        // checkpointed: duckdb.ts CHECKPOINT_ROWS) is left to the next open, so the shutdown stays bounded.
        value = await store.close({ checkpoint: !abandoning() })
        break
    }
    port!.postMessage({ id: m.id, ok: true, value } satisfies Reply)
  } catch (e) {
    port!.postMessage({ id: m.id, ok: false, error: message(e) } satisfies Reply)
  }
  if (m.op === 'close') port!.close()
}

/**
 * Typed inserts waiting in a row, `m` first, taken off `inbox` up to MERGE_ROWS rows, as one insert: while
 * the store is slower than the stream (a ClickHouse insert takes a while), the batches that queued up
 * meanwhile go in together instead of one request each.
 */
async function insertMerged(m: Extract<Request, { op: 'insertTyped' }>): Promise<void> {
  await retry()
  const group = [m]
  let rows = m.batch.length
  for (
    let next = inbox[0];
    next?.op === 'insertTyped' && rows + next.batch.length <= MERGE_ROWS;
    next = inbox[0]
  ) {
    inbox.shift()
    group.push(next)
    rows += next.batch.length
  }
  const batches = group.map((g) => fromWire(g.batch))
  await insert(
    group.map((g) => g.id),
    () => store.insertTypedMany!(batches), // drain() merges only for stores that offer it
  )
}

/** Requests not yet handled, in arrival order. */
const inbox: Request[] = []
let draining = false

async function drain(): Promise<void> {
  for (let m = inbox.shift(); m !== undefined; m = inbox.shift()) {
    if (m.op === 'insertTyped' && store.insertTypedMany !== undefined) await insertMerged(m)
    else await handle(m)
  }
  draining = false
}

let chain: Promise<void> = Promise.resolve()
port.on('message', (m: Request) => {
  inbox.push(m)
  if (draining) return
  draining = true
  chain = chain.then(drain)
})
