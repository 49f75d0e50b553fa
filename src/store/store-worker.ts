/**
 * The store thread (worker_threads): opens the store of `workerData.url` for writing and runs what the
 * main thread's WorkerStore (worker-store.ts) asks, one request at a time in arrival order, so a query
 * sees every row queued before it. Inserts are acknowledged once stored; a failed insert is kept and tried
 * again before the next request (and every RETRY_MS while nothing else comes), its rows still counted as
 * queued by the main thread, so the queue bound holds while a store is down.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { openStoreForWrite } from './open.js'
import type { FlowStore } from './store.js'
import { fromWire, type Reply, type Request } from './worker-wire.js'

const RETRY_MS = 1000

const port = parentPort
if (port === null) throw new Error('store-worker: not started as a worker thread')

let store: FlowStore
try {
  store = await openStoreForWrite(String((workerData as { url: string }).url))
} catch (e) {
  port.postMessage({ id: 0, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies Reply)
  process.exit(0)
}
port.postMessage({ id: 0, ok: true } satisfies Reply)

/** Inserts that failed, oldest first: [request id, run]. */
const failed: Array<[number, () => Promise<void>]> = []
let retryTimer: NodeJS.Timeout | undefined

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** Tries the failed inserts again, in order; stops at the first that fails again. */
async function retry(): Promise<void> {
  while (failed.length > 0) {
    const [id, run] = failed[0]!
    try {
      await run()
    } catch (e) {
      port!.postMessage({ id: -1, ok: false, error: message(e) } satisfies Reply)
      return
    }
    failed.shift()
    port!.postMessage({ id, ok: true } satisfies Reply)
  }
}

function scheduleRetry(): void {
  if (retryTimer !== undefined || failed.length === 0) return
  retryTimer = setTimeout(() => {
    retryTimer = undefined
    chain = chain.then(retry).then(scheduleRetry)
  }, RETRY_MS)
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
    if (failed.length > 0) failed.push([m.id, run])
    else
      try {
        await run()
        port!.postMessage({ id: m.id, ok: true } satisfies Reply)
      } catch (e) {
        failed.push([m.id, run])
        port!.postMessage({ id: -1, ok: false, error: message(e) } satisfies Reply)
      }
    scheduleRetry()
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
        for (const [id] of failed) port!.postMessage({ id, ok: false, error: 'store failing at close' })
        failed.length = 0
        value = await store.close()
        break
    }
    port!.postMessage({ id: m.id, ok: true, value } satisfies Reply)
  } catch (e) {
    port!.postMessage({ id: m.id, ok: false, error: message(e) } satisfies Reply)
  }
  if (m.op === 'close') port!.close()
}

let chain: Promise<void> = Promise.resolve()
port.on('message', (m: Request) => {
  chain = chain.then(() => handle(m))
})
