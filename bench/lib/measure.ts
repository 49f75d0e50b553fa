// Runs one benchmark command to completion, pinned to a core with taskset when available, and reports its
// wall time, CPU seconds (user+sys, all threads) and peak RSS, from GNU time -v or else by polling /proc.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'

export interface Measurement {
  readonly argv: readonly string[]
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly timedOut: boolean
  readonly wallS: number
  readonly userS: number
  readonly sysS: number
  /** Peak resident set size in bytes (NaN when unknown). */
  readonly maxRssBytes: number
  /** How CPU and RSS were measured. */
  readonly method: 'gnu-time' | 'proc-poll'
  readonly pinnedCore: number | undefined
  readonly stdout: string
  readonly stderr: string
}

export interface MeasureOptions {
  /** Core to pin to (ignored when taskset is absent). */
  readonly core?: number
  readonly timeoutMs?: number
  readonly cwd?: string
}

export function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' })
  const p = r.stdout.trim()
  return r.status === 0 && p !== '' ? p : undefined
}

const GNU_TIME = '/usr/bin/time'
export const hasGnuTime = existsSync(GNU_TIME) && spawnSync(GNU_TIME, ['-v', 'true']).status === 0
export const tasksetPath = which('taskset')

/** Runs argv; SIGTERM on timeout and SIGKILL 5 s later. Never rejects for a non-zero exit. */
export async function measure(argv: readonly string[], opts: MeasureOptions = {}): Promise<Measurement> {
  const pinned = tasksetPath !== undefined && opts.core !== undefined ? opts.core : undefined
  const timeFile = path.join(tmpdir(), `flowtel-bench-time-${process.pid}-${Date.now()}.txt`)
  const full: string[] = []
  if (pinned !== undefined && tasksetPath) full.push(tasksetPath, '-c', String(pinned))
  if (hasGnuTime) full.push(GNU_TIME, '-v', '-o', timeFile)
  full.push(...argv)
  const [cmd, ...args] = full
  if (cmd === undefined) throw new Error('measure: empty argv')

  const started = process.hrtime.bigint()
  const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout = tail(stdout + b.toString())))
  child.stderr.on('data', (b: Buffer) => (stderr = tail(stderr + b.toString())))

  // Without GNU time, poll /proc for the peak RSS and CPU ticks (taskset execs, so the pid is the tool's).
  let polledHwmKb = NaN
  let polledTicks = { user: 0, sys: 0 }
  const poll = hasGnuTime
    ? undefined
    : setInterval(() => {
        void readProc(child.pid).then((p) => {
          if (!p) return
          if (Number.isNaN(polledHwmKb) || p.hwmKb > polledHwmKb) polledHwmKb = p.hwmKb
          polledTicks = p.ticks
        })
      }, 20)

  let timedOut = false
  let killTimer: NodeJS.Timeout | undefined
  const termTimer = setTimeout(
    () => {
      timedOut = true
      signalGroup(child.pid, 'SIGTERM')
      killTimer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), 5_000)
    },
    opts.timeoutMs ?? 30 * 60_000,
  )

  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.once('error', reject)
      child.once('close', (c, s) => resolve({ code: c, signal: s }))
    },
  )
  const wallS = Number(process.hrtime.bigint() - started) / 1e9
  clearTimeout(termTimer)
  if (killTimer) clearTimeout(killTimer)
  if (poll) clearInterval(poll)

  let userS = NaN
  let sysS = NaN
  let maxRssBytes = NaN
  if (hasGnuTime) {
    const text = await readFile(timeFile, 'utf8').catch(() => '')
    await rm(timeFile, { force: true })
    userS = numAfter(text, 'User time (seconds):')
    sysS = numAfter(text, 'System time (seconds):')
    maxRssBytes = numAfter(text, 'Maximum resident set size (kbytes):') * 1024
  } else {
    const hz = 100 // USER_HZ on Linux.
    userS = polledTicks.user / hz
    sysS = polledTicks.sys / hz
    maxRssBytes = polledHwmKb * 1024
  }
  return {
    argv,
    code,
    signal,
    timedOut,
    wallS,
    userS,
    sysS,
    maxRssBytes,
    method: hasGnuTime ? 'gnu-time' : 'proc-poll',
    pinnedCore: pinned,
    stdout,
    stderr,
  }
}

async function readProc(
  pid: number | undefined,
): Promise<{ hwmKb: number; ticks: { user: number; sys: number } } | undefined> {
  if (pid === undefined) return undefined
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const hwm = /VmHWM:\s+(\d+)\s+kB/.exec(status)
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { hwmKb: Number(hwm?.[1] ?? NaN), ticks: { user: Number(rest[11]), sys: Number(rest[12]) } }
  } catch {
    return undefined
  }
}

function numAfter(text: string, label: string): number {
  const i = text.indexOf(label)
  if (i < 0) return NaN
  return Number.parseFloat(text.slice(i + label.length).trim())
}

/** Keeps the last 256 KiB of a stream (summaries come at the end). */
function tail(s: string): string {
  return s.length > 262_144 ? s.slice(-262_144) : s
}

function signalGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return
  try {
    process.kill(-pid, sig)
  } catch {
    // Already gone.
  }
}
