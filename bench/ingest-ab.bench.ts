// A/B CPU comparison of two builds of the collector on a busy machine (bench/probe-ab.bench.ts does the same
// for the probe): each round runs `flowtel collect --listen udp://… --store duckdb:…` of build A and of build B
// at the same time, both pinned to one core, and sends each datagram of the recorded IPFIX stream
// (bench/lib/ipfix-stream.ts) to both, from core 0, at RATE records/s; so both see the same contention.
// Printed per round and build: rows stored, CPU seconds of the receiving threads and of the whole process
// (/proc/PID/task/*/stat), as µs per stored record, and at the end the median B/A ratio of each. The
// receiving threads: the native UDP receiver (`flowtel-udp-rx`, recvmmsg) where the build has one, and the
// main thread, which decodes (store/fast-plan.ts) and hands batches to the store thread; the rest is the
// store thread (DuckDB's appender), DuckDB's own threads and V8's GC helpers. Prints only.
//
// npm run bench:ingest-ab -- <rootA> <rootB> [rounds]   (a root holds bench/lib/flowtel-cli.ts, src/ and
//                                                        node_modules, e.g. a `git archive` copy of a commit)
// Environment: RATE (default 20 000 records/s: both builds must keep up on one shared core), INGEST_FLOWS
// (default 300 000), BENCH_AB_CORE (the receivers' core, default 1).
import type { ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDbStore } from '../src/store/duckdb.js'
import { buildIpfixStream, type IpfixStream } from './lib/ipfix-stream.js'
import { collectArgv, freeUdpPort, hasTaskset, pinSelf, startPinned, waitForText } from './lib/ingest-race.js'

const args = process.argv.slice(2).filter((a) => a !== '--')
const [rootA, rootB, roundsArg] = args
if (rootA === undefined || rootB === undefined) {
  process.stderr.write('usage: npm run bench:ingest-ab -- <rootA> <rootB> [rounds]\n')
  process.exit(2)
}
const rounds = Number(roundsArg ?? 3)
const rate = Number(process.env['RATE'] ?? 20_000)
const flows = Number(process.env['INGEST_FLOWS'] ?? 300_000)
const core = process.env['BENCH_AB_CORE'] ?? '1'
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * CPU ms (user + system) of a process's receiving threads (the main thread, and the native UDP receiver
 * `flowtel-udp-rx` when the build has one) and of all its threads, from /proc.
 */
function threadCpu(pid: number): { main: number; all: number } {
  let main = 0
  let all = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
      const ms = (Number(f[11]) + Number(f[12])) * 10
      all += ms
      if (tid === String(pid) || s.includes('(flowtel-udp-rx)')) main += ms
    } catch {
      // the thread ended
    }
  }
  return { main, all }
}

interface Running {
  readonly child: ChildProcess
  readonly port: number
  readonly path: string
}

async function start(root: string, dir: string): Promise<Running> {
  const port = await freeUdpPort()
  const path = join(dir, 'ingest.duckdb')
  const child = startPinned(collectArgv(port, `duckdb:${path}`), root, core)
  await waitForText(child, /listening on/, 60_000).catch((e: Error) => {
    throw new Error(`${root}: collector did not start: ${e.message}`)
  })
  return { child, port, path }
}

/** Sends every datagram to each port in turn, paced to `rate` records/s. */
async function replay(stream: IpfixStream, ports: number[]): Promise<void> {
  const sock = createSocket('udp4')
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()))
  const t0 = process.hrtime.bigint()
  let sent = 0
  let inFlight = 0
  for (let d = 0; d < stream.datagrams.length; d++) {
    while (Number(process.hrtime.bigint() - t0) / 1e6 < (sent / rate) * 1000) await sleep(1)
    for (const port of ports) {
      inFlight++
      sock.send(stream.datagrams[d]!, port, '127.0.0.1', () => inFlight--)
    }
    sent += stream.records[d] ?? 0
    if (inFlight > 256) while (inFlight > 0) await new Promise((r) => setImmediate(r))
  }
  while (inFlight > 0) await new Promise((r) => setImmediate(r))
  sock.close()
}

/** Waits until neither process's CPU time grows (both drained their sockets and queues). */
async function idle(pids: number[]): Promise<void> {
  const total = (): number => pids.reduce((n, p) => n + threadCpu(p).all, 0)
  let last = total()
  let quiet = 0
  const end = Date.now() + 60_000
  while (quiet < 6 && Date.now() < end) {
    await sleep(250)
    const now = total()
    quiet = now - last < 30 ? quiet + 1 : 0
    last = now
  }
}

pinSelf(0)
const stream = buildIpfixStream(flows)
console.log(
  `ingest A/B: ${flows.toLocaleString('en-US')} records at ${rate.toLocaleString('en-US')}/s to both ` +
    `builds at once, ${hasTaskset ? `both on core ${core}` : 'not pinned (no taskset)'}\nA ${rootA}\nB ${rootB}`,
)
const ratios = { main: [] as number[], all: [] as number[] }
const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN
for (let round = 1; round <= rounds; round++) {
  const dirs = [
    mkdtempSync(join(tmpdir(), 'flowtel-ingest-ab-')),
    mkdtempSync(join(tmpdir(), 'flowtel-ingest-ab-')),
  ]
  const runs: Running[] = []
  try {
    runs.push(await start(rootA, dirs[0]!), await start(rootB, dirs[1]!))
    await sleep(500)
    const pids = runs.map((r) => r.child.pid ?? 0)
    const c0 = pids.map(threadCpu)
    await replay(
      stream,
      runs.map((r) => r.port),
    )
    await idle(pids)
    const c1 = pids.map(threadCpu)
    for (const r of runs) r.child.kill('SIGTERM')
    await Promise.all(runs.map((r) => new Promise((res) => r.child.once('exit', res))))
    const per: Array<{ main: number; all: number }> = []
    for (let i = 0; i < 2; i++) {
      const s = await DuckDbStore.open(runs[i]!.path)
      const stored = await s.count()
      await s.close()
      const main = (c1[i]!.main - c0[i]!.main) / stored
      const all = (c1[i]!.all - c0[i]!.all) / stored
      per.push({ main, all })
      console.log(
        `round ${round} ${i === 0 ? 'A' : 'B'}: stored ${stored.toLocaleString('en-US')} of ` +
          `${flows.toLocaleString('en-US')}, receiving threads ${(main * 1000).toFixed(2)} µs/record, ` +
          `process ${(all * 1000).toFixed(2)} µs/record = ${Math.round(1 / (all / 1000)).toLocaleString('en-US')} ` +
          `records/CPU s (load average ${loadavg()[0]?.toFixed(1) ?? '?'})`,
      )
    }
    ratios.main.push(per[1]!.main / per[0]!.main)
    ratios.all.push(per[1]!.all / per[0]!.all)
  } finally {
    for (const r of runs) if (r.child.exitCode === null) r.child.kill('SIGKILL')
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
}
console.log(
  `B/A CPU per stored record, median of ${rounds}: receiving threads ${med(ratios.main).toFixed(3)}, ` +
    `process ${med(ratios.all).toFixed(3)}`,
)
