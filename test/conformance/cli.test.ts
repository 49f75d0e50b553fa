// Conformance of the `flowtel probe` command line (bin/flowtel.js): wrong or missing options and unreadable
// input exit non-zero with a message naming the problem; a valid run exports to a loopback UDP collector
// and a JSON file. Uses dist/ when it is newer than src/ (CI builds it in `npm ci`); otherwise compiles
// src/ into a private folder under .tmp/ so the shared dist/ of a working checkout is left alone.
import { execFile } from 'node:child_process'
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../helpers/shared.js'
import {
  decodeStream,
  flowRecords,
  S,
  startUdpCollector,
  T0,
  tempDir,
  workload,
  writeCapture,
} from './harness.js'

const run = promisify(execFile)

/** Newest modification time (ms) of the files under `dir` accepted by `keep`. */
function newest(dir: string, keep: (name: string) => boolean): number {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) t = Math.max(t, newest(p, keep))
    else if (keep(e.name)) t = Math.max(t, statSync(p).mtimeMs)
  }
  return t
}

let bin = join(REPO_ROOT, 'bin/flowtel.js')
let buildDir = ''
let dir = ''
let cleanup: () => Promise<void> = () => Promise.resolve()
let capture = ''
let notCapture = ''

beforeAll(async () => {
  ;({ dir, cleanup } = await tempDir())
  capture = await writeCapture(dir, 'small.pcap', workload(30, 5, 4))
  notCapture = join(dir, 'notes.txt')
  await writeFile(notCapture, 'this is not a capture file\n'.repeat(10))
  const srcTime = newest(join(REPO_ROOT, 'src'), (n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))
  const main = join(REPO_ROOT, 'dist/cli/main.js')
  if (existsSync(main) && statSync(main).mtimeMs >= srcTime) return
  buildDir = join(REPO_ROOT, '.tmp', `cli-test-${process.pid}`)
  await mkdir(join(buildDir, 'bin'), { recursive: true })
  await run(process.execPath, [
    join(REPO_ROOT, 'node_modules/typescript/bin/tsc'),
    '-p',
    join(REPO_ROOT, 'tsconfig.build.json'),
    '--outDir',
    join(buildDir, 'dist'),
    '--sourceMap',
    'false',
  ]).catch((e: unknown) => {
    // Type errors still emit JavaScript; only fail when nothing was produced.
    if (!existsSync(join(buildDir, 'dist/cli/main.js'))) throw e
  })
  await copyFile(join(REPO_ROOT, 'bin/flowtel.js'), join(buildDir, 'bin/flowtel.js'))
  bin = join(buildDir, 'bin/flowtel.js')
}, 120_000)

afterAll(async () => {
  await cleanup()
  if (buildDir !== '') await rm(buildDir, { recursive: true, force: true })
})

interface Result {
  code: number
  stdout: string
  stderr: string
}

async function flowtel(...args: string[]): Promise<Result> {
  try {
    const r = await run(process.execPath, [bin, ...args], { timeout: 60_000, cwd: dir })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string }
    return {
      code: typeof err.code === 'number' ? err.code : -1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    }
  }
}

describe('flowtel probe: bad invocations', () => {
  it.each([
    ['no --read', () => ['probe', '--json', 'out.jsonl'], /give at least one --read/],
    ['no destination', () => ['probe', '--read', capture], /give --collector host:port and\/or --json/],
    [
      'non-numeric --active-timeout',
      () => ['probe', '--read', capture, '--json', 'o.jsonl', '--active-timeout', 'abc'],
      /--active-timeout must be a number of seconds, got "abc"/,
    ],
    [
      'negative --inactive-timeout',
      () => ['probe', '--read', capture, '--json', 'o.jsonl', '--inactive-timeout', '-5'],
      /--inactive-timeout must be between 1 and 86400 seconds/,
    ],
    [
      '--mtu too small',
      () => ['probe', '--read', capture, '--json', 'o.jsonl', '--mtu', '100'],
      /--mtu must be between 576 and 65535/,
    ],
    [
      'collector without a port',
      () => ['probe', '--read', capture, '--collector', '1.2.3.4'],
      /collector address "1\.2\.3\.4": expected host:port/,
    ],
    [
      'collector port out of range',
      () => ['probe', '--read', capture, '--collector', '127.0.0.1:70000'],
      /port 70000 outside 1\.\.65535/,
    ],
    [
      'unbracketed IPv6 collector',
      () => ['probe', '--read', capture, '--collector', '::1:4739'],
      /write IPv6 addresses in brackets, e\.g\. \[::1\]:4739/,
    ],
    [
      'unknown transport',
      () => ['probe', '--read', capture, '--collector', '127.0.0.1:4739', '--transport', 'sctp'],
      /--transport.*sctp.*(udp|choices)/,
    ],
    [
      'unknown --fields group',
      () => ['probe', '--read', capture, '--json', 'o.jsonl', '--fields', 'core,bogus'],
      /unknown field group 'bogus' \(known: core/,
    ],
    [
      'a file that is not a capture',
      () => ['probe', '--read', notCapture, '--json', 'o.jsonl'],
      /notes\.txt: not a pcap or pcapng file/,
    ],
    [
      'a missing capture file',
      () => ['probe', '--read', join(dir, 'missing.pcap'), '--json', 'o.jsonl'],
      /missing\.pcap/,
    ],
  ] as const)('%s exits non-zero with a clear message', async (_name, args, message) => {
    const r = await flowtel(...args(), '--no-progress')
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(message)
    // One short message, not a stack trace.
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})

describe('flowtel probe: a valid run', () => {
  it('exports to a loopback UDP collector and a JSON file, and prints a summary', async () => {
    const collector = await startUdpCollector('127.0.0.1')
    try {
      const r = await flowtel(
        'probe',
        '--read',
        capture,
        '--collector',
        `127.0.0.1:${collector.port}`,
        '--json',
        'flows.jsonl',
        '--inactive-timeout',
        '2',
        '--no-progress',
      )
      expect(r.code).toBe(0)
      expect(r.stderr).toMatch(/packets\s+101 \(101 IP/)
      const lines = (await readFile(join(dir, 'flows.jsonl'), 'utf8')).trim().split('\n')
      expect(lines).toHaveLength(31) // 30 flows and the clock
      await collector.waitForCount(2)
      // Datagrams may still be arriving after the process exits: wait until the decoded stream has every flow.
      const deadline = Date.now() + 10_000
      let flows = flowRecords(decodeStream(collector.datagrams).msgs)
      while (flows.length < 31 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        flows = flowRecords(decodeStream(collector.datagrams).msgs)
      }
      expect(flows.map((f) => JSON.stringify(f)).sort()).toEqual(
        lines.map((l) => JSON.stringify(JSON.parse(l))).sort(),
      )
      const first = JSON.parse(lines[0]!) as Record<string, unknown>
      expect(Date.parse(String(first.flowStartMilliseconds))).toBeGreaterThanOrEqual(T0 / 1000)
      expect(Date.parse(String(first.flowEndMilliseconds))).toBeLessThanOrEqual((T0 + 6 * S) / 1000)
    } finally {
      await collector.close()
    }
  })
})
