// What the live benchmarks (live-capture.bench.ts, live-probe.bench.ts) share: the environment options, the
// skip reasons, the benchmark capture, two network namespaces joined by a veth (jumbo MTU, made and removed
// here), `tcpreplay` of the capture from namespace a, and the wait until a receiver's count stops moving.
// Nothing is sent outside the namespaces.
import os from 'node:os'
import path from 'node:path'
import { ensureBenchPcap, captureInfo } from './bench-pcap.js'
import { which } from './measure.js'
import { NetnsPair, netnsSkipReason, REPO, run, type NodeChild } from '../../test/helpers/netns.js'
import { pcapAddonAvailable, ADDON_MISSING_MESSAGE } from '../../src/capture/pcap-addon.js'

export function positiveInt(v: string | undefined, dflt: number): number {
  const n = Number(v)
  return v !== undefined && Number.isSafeInteger(n) && n > 0 ? n : dflt
}

/** BENCH_* environment and --quick, as both live benchmarks read them. */
export const liveBenchOptions = {
  quick: process.argv.includes('--quick') || process.env['BENCH_QUICK'] === '1',
  runs: positiveInt(process.env['BENCH_RUNS'], 3),
  bufferBytes: positiveInt(process.env['BENCH_BUFFER_MB'], 32) * 1024 * 1024,
  /** Replay rate in packets/s, 0 for --topspeed. */
  pps: process.env['BENCH_PPS'] !== undefined ? positiveInt(process.env['BENCH_PPS'], 0) : 0,
  cpus: os.cpus().length,
}

export interface Replay {
  sent: number
  failed: number
  seconds: number
  pps: number
}

export function parseTcpreplay(out: string): Replay {
  const actual = /Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds/.exec(out)
  const rated = /Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps/.exec(out)
  const failed = /Failed packets:\s+(\d+)/.exec(out)
  if (actual === null) throw new Error(`cannot read tcpreplay's output:\n${out}`)
  return {
    sent: Number(actual[1]),
    seconds: Number(actual[3]),
    pps: rated === null ? NaN : Number(rated[1]),
    failed: failed === null ? 0 : Number(failed[1]),
  }
}

/** Why the live benchmarks cannot run here (root, the addon, tcpreplay), or null. */
export function liveBenchSkipReason(): string | null {
  return (
    netnsSkipReason() ??
    (pcapAddonAvailable() ? null : ADDON_MISSING_MESSAGE) ??
    (which('tcpreplay') === undefined ? 'tcpreplay is not installed' : null)
  )
}

/** The benchmark capture (bench/out/bench.pcap, or bench-r1.pcap with --quick), built when missing. */
export async function benchCapture(): Promise<{ path: string; packets: number; fileBytes: number }> {
  const file = path.join(REPO, 'bench/out', liveBenchOptions.quick ? 'bench-r1.pcap' : 'bench.pcap')
  const shared = path.resolve(REPO, '../shared')
  await ensureBenchPcap(
    path.join(shared, 'bench/make-bench-pcap.sh'),
    path.join(shared, 'pcaps'),
    file,
    liveBenchOptions.quick ? 1 : 30,
  )
  const info = await captureInfo(file)
  return { path: file, packets: info.packets, fileBytes: info.fileBytes }
}

/** Two namespaces and a veth (a0 in a, b0 in b, MTU 9000 so the capture's jumbo frames fit). */
export class BenchNet {
  readonly pair = new NetnsPair()
  readonly a0 = this.pair.ifname('a', 0)
  readonly b0 = this.pair.ifname('b', 0)

  constructor(private readonly subnet: string) {}

  async create(): Promise<void> {
    await this.pair.create()
    await this.pair.veth(0, `${this.subnet}.1/24`, `${this.subnet}.2/24`)
    await run('ip', ['-n', this.pair.a, 'link', 'set', this.a0, 'mtu', '9000'])
    await run('ip', ['-n', this.pair.b, 'link', 'set', this.b0, 'mtu', '9000'])
  }

  destroy(): Promise<void> {
    return this.pair.destroy()
  }

  /** `taskset -c core` when there are several CPUs and taskset exists, else nothing. */
  pin(core: number): string[] {
    return liveBenchOptions.cpus > 1 && which('taskset') !== undefined ? ['taskset', '-c', String(core)] : []
  }

  /** Replays the capture from namespace a onto the veth (topspeed or BENCH_PPS), sender pinned to CPU 0. */
  async replay(capture: { path: string; fileBytes: number }): Promise<Replay> {
    const { pps } = liveBenchOptions
    const rate = pps > 0 ? [`--pps=${pps}`] : ['--topspeed']
    // Read the capture into memory first, so the sender is not slowed by the disk.
    const preload = capture.fileBytes < os.freemem() / 4 ? ['--preload-pcap'] : []
    const out = await run('ip', [
      'netns',
      'exec',
      this.pair.a,
      ...this.pin(0),
      'tcpreplay',
      ...rate,
      ...preload,
      '-i',
      this.a0,
      capture.path,
    ])
    return parseTcpreplay(out)
  }
}

/** Asks the receiver for its count ("count" → "COUNT n") until it stops moving. */
export async function waitUntilStill(child: NodeChild, everyMs = 400): Promise<number> {
  let prev = -1
  for (let i = 0; i < 600; i++) {
    child.send('count')
    const n = Number((await child.nextLine((l) => l.startsWith('COUNT '))).slice(6))
    if (n === prev) return n
    prev = n
    await new Promise((res) => setTimeout(res, everyMs))
  }
  return prev
}
