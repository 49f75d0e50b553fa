// Ingest side by side: one recorded IPFIX stream (ipfix-stream.ts) replayed over loopback UDP at a set rate
// to a receiver pinned to one core (taskset -c 1; the sender is pinned to core 0), which is then left to
// drain (its CPU time stops growing), stopped with SIGTERM (both flush on it) and asked how many rows it
// stored. Receivers: nfcapd (nfdump's collector, counted with `nfdump -I`) and `flowtel collect` into
// DuckDB or ClickHouse. Besides stored/sent, the receiver's CPU seconds (all threads, from /proc) give
// records per CPU second, a figure that holds on a loaded machine where wall-clock rates do not.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus } from 'node:os'
import { join } from 'node:path'
import type { IpfixStream } from './ipfix-stream.js'

export const hasTaskset = spawnSync('sh', ['-c', 'command -v taskset']).status === 0

/** Pins this process (the sender) to core 0, so the receivers have core 1 to themselves. */
export function pinSelf(core = 0): void {
  if (hasTaskset) spawnSync('taskset', ['-a', '-pc', String(core), String(process.pid)])
}

/**
 * Undoes pinSelf: every core again (for the query part, where DuckDB runs in this process). The machine's
 * cores, not availableParallelism(): that one follows this process's affinity, which is one core here.
 */
export function unpinSelf(): void {
  if (hasTaskset) spawnSync('taskset', ['-a', '-pc', `0-${cpus().length - 1}`, String(process.pid)])
}

/** CPU milliseconds (user + system, all threads) a process has used, from /proc/PID/stat. */
export function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    const ticks = Number(f[11]) + Number(f[12])
    return Number.isFinite(ticks) ? ticks * 10 : NaN
  } catch {
    return NaN
  }
}

export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4')
    s.once('error', reject)
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port
      s.close(() => resolve(port))
    })
  })
}

/** Unused for TCP as well (nothing listens on it): kept for receivers that need both. */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0))
    })
  })
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export interface Receiver {
  readonly name: string
  /** Starts listening on 127.0.0.1:port; resolves when it is ready. */
  start(port: number, dir: string): Promise<RunningReceiver>
}

export interface RunningReceiver {
  readonly pid: number
  /** SIGTERM, wait for exit, then count what was stored. */
  stopAndCount(): Promise<number>
}

/** Spawns argv pinned to `core` (when taskset exists), in `cwd` when given, with stdout and stderr piped. */
export function startPinned(argv: string[], cwd?: string, core = '1'): ChildProcess {
  const cmd = hasTaskset ? ['taskset', '-c', core, ...argv] : argv
  return spawn(cmd[0]!, cmd.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd !== undefined ? { cwd } : {}),
  })
}

/** Resolves once the child's stdout or stderr has printed `re`; rejects after `ms` or when it exits first. */
export function waitForText(child: ChildProcess, re: RegExp, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = ''
    const t = setTimeout(() => reject(new Error(`no ${String(re)} within ${ms} ms: ${text}`)), ms)
    const on = (d: Buffer): void => {
      text += d.toString()
      if (re.test(text)) {
        clearTimeout(t)
        resolve()
      }
    }
    child.stdout?.on('data', on)
    child.stderr?.on('data', on)
    child.once('exit', (code) => {
      clearTimeout(t)
      reject(new Error(`exited (${code}) before ${String(re)}: ${text}`))
    })
  })
}

function exited(child: ChildProcess, ms = 120_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL')
      resolve()
    }, ms)
    child.once('exit', () => {
      clearTimeout(t)
      resolve()
    })
  })
}

export const nfcapdReceiver: Receiver = {
  name: 'nfcapd',
  async start(port, dir) {
    const flowDir = join(dir, 'nfcapd')
    mkdirSync(flowDir, { recursive: true })
    const child = startPinned([
      'nfcapd',
      '-w',
      flowDir,
      '-b',
      '127.0.0.1',
      '-p',
      String(port),
      '-t',
      '3600',
      '-B',
      String(4 << 20),
    ])
    await waitForText(child, /Startup nfcapd/, 10_000)
    return {
      pid: child.pid ?? 0,
      async stopAndCount() {
        child.kill('SIGTERM')
        await exited(child)
        const r = spawnSync('nfdump', ['-R', flowDir, '-I'], { encoding: 'utf8' })
        const m = /^Flows:\s+(\d+)/m.exec(r.stdout)
        if (m === null) throw new Error(`nfdump -I: no flow count in ${r.stdout}${r.stderr}`)
        return Number(m[1])
      },
    }
  },
}

/** `flowtel collect` listening on 127.0.0.1:port and storing into `storeUrl`, without its summary. */
export function collectArgv(port: number, storeUrl: string, extra: readonly string[] = []): string[] {
  return [
    process.execPath,
    '--import',
    'tsx',
    'bench/lib/flowtel-cli.ts',
    'collect',
    '--listen',
    `udp://127.0.0.1:${port}`,
    '--store',
    storeUrl,
    ...extra,
    '--no-summary',
  ]
}

/**
 * `flowtel collect` from the sources (tsx), storing into `storeUrl(dir)`; `count` reads the store back.
 * FLOWTEL_CLI_ROOT=DIR runs the checkout in DIR instead (another commit, for a before/after figure; it needs
 * bench/lib/flowtel-cli.ts and node_modules).
 */
export function flowtelReceiver(
  name: string,
  storeUrl: (dir: string) => string,
  count: (url: string) => Promise<number>,
  batchRows = 10_000,
): Receiver {
  return {
    name,
    async start(port, dir) {
      const url = storeUrl(dir)
      const child = startPinned(
        collectArgv(port, url, ['--batch-rows', String(batchRows)]),
        process.env['FLOWTEL_CLI_ROOT'],
      )
      await waitForText(child, /listening on/, 60_000)
      return {
        pid: child.pid ?? 0,
        async stopAndCount() {
          child.kill('SIGTERM')
          await exited(child)
          return count(url)
        },
      }
    },
  }
}

export interface RaceResult {
  readonly receiver: string
  readonly offeredRate: number
  /** Records per second the sender achieved. */
  readonly sentRate: number
  readonly sent: number
  readonly stored: number
  readonly cpuMs: number
  /** CPU ms until the receiver exited after SIGTERM (its final flush, commit and checkpoint included). */
  readonly cpuToExitMs: number
  /** The receiver's peak resident memory (VmHWM), KiB, until the stream was stored. */
  readonly peakRssKiB: number
  /** The same until it exited (its last commit and the checkpoint at close included). */
  readonly peakRssToExitKiB: number
}

/** Peak resident set (VmHWM) of a process in KiB, from /proc/PID/status; NaN when unreadable. */
export function peakRssKiB(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m !== null ? Number(m[1]) : NaN
  } catch {
    return NaN
  }
}

/** Sends the stream to 127.0.0.1:port at `rate` records/s (paced per millisecond). */
async function replay(stream: IpfixStream, port: number, rate: number): Promise<number> {
  const sock = createSocket('udp4')
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject)
    sock.connect(port, '127.0.0.1', () => resolve())
  })
  const t0 = process.hrtime.bigint()
  const elapsedMs = (): number => Number(process.hrtime.bigint() - t0) / 1e6
  let sent = 0
  let inFlight = 0
  for (let d = 0; d < stream.datagrams.length; d++) {
    const due = (sent / rate) * 1000
    while (elapsedMs() < due) await sleep(1)
    inFlight++
    sock.send(stream.datagrams[d]!, () => inFlight--)
    sent += stream.records[d] ?? 0
    if (inFlight > 256) while (inFlight > 0) await new Promise((r) => setImmediate(r))
  }
  while (inFlight > 0) await new Promise((r) => setImmediate(r))
  const ms = elapsedMs()
  sock.close()
  return sent / (ms / 1000)
}

/** Waits until the process's CPU time stops growing (it has drained its socket and buffers). */
async function idle(pid: number, maxMs = 60_000): Promise<void> {
  const end = Date.now() + maxMs
  let last = cpuMs(pid)
  let quiet = 0
  while (Date.now() < end && quiet < 6) {
    await sleep(250)
    const now = cpuMs(pid)
    quiet = now - last < 20 ? quiet + 1 : 0
    last = now
  }
}

export async function race(
  receiver: Receiver,
  stream: IpfixStream,
  rate: number,
  dir: string,
): Promise<RaceResult> {
  const port = await freeUdpPort()
  const r = await receiver.start(port, dir)
  await sleep(300)
  const c0 = cpuMs(r.pid)
  const sentRate = await replay(stream, port, rate)
  await idle(r.pid)
  const c1 = cpuMs(r.pid)
  const peak = peakRssKiB(r.pid)
  // CPU and peak memory until the process exits (its last commit and checkpoint included): sampled while
  // it stops.
  let last = c1
  let lastPeak = peak
  const poll = setInterval(() => {
    const now = cpuMs(r.pid)
    if (Number.isFinite(now)) last = now
    const p = peakRssKiB(r.pid)
    if (Number.isFinite(p)) lastPeak = p
  }, 10)
  const stored = await r.stopAndCount()
  clearInterval(poll)
  return {
    receiver: receiver.name,
    offeredRate: rate,
    sentRate,
    sent: stream.totalRecords,
    stored,
    cpuMs: c1 - c0,
    cpuToExitMs: last - c0,
    peakRssKiB: peak,
    peakRssToExitKiB: lastPeak,
  }
}
