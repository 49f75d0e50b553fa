// Live probe benchmark (issue 5): `tcpreplay --topspeed` of the benchmark capture onto a veth between two
// network namespaces; on the peer, the probe captures and meters live and exports IPFIX/UDP to a sink on the
// namespace's loopback. Reported: packets/s sent, captured and metered, packets lost, kernel drops and CPU per
// packet, for
//   service    the live probe service (probe/service.ts): one metering pipeline on the main thread;
//   pool N     live capture → WorkerPool of N metering threads (probe/workers) → one exporter, N = 1, 2.
// Prints figures only (median of runs).
//
// npm run bench:live-probe              full capture (bench/out/bench.pcap, built from ../shared when missing)
// npm run bench:live-probe -- --quick   one replica (bench/out/bench-r1.pcap)
// Environment: BENCH_RUNS (default 3), BENCH_BUFFER_MB (kernel buffer, default 32), BENCH_PPS (replay rate
// instead of --topspeed), BENCH_MODES=service,pool1,pool2. Needs root, tcpreplay and the built addon.
import { spawn } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { ensureBenchPcap, captureInfo } from './lib/bench-pcap.js'
import { which } from './lib/measure.js'
import { fixed, median, si, table } from './lib/report.js'
import type { ProbeReceiverResult } from './lib/live-probe-receiver.js'
import { NetnsPair, netnsSkipReason, REPO, run, spawnNodeInNetns } from '../test/helpers/netns.js'
import { pcapAddonAvailable, ADDON_MISSING_MESSAGE } from '../src/capture/pcap-addon.js'

const quick = process.argv.includes('--quick') || process.env['BENCH_QUICK'] === '1'
const runs = positiveInt(process.env['BENCH_RUNS'], 3)
const bufferBytes = positiveInt(process.env['BENCH_BUFFER_MB'], 32) * 1024 * 1024
const pps = process.env['BENCH_PPS'] !== undefined ? positiveInt(process.env['BENCH_PPS'], 0) : 0
const modes = (process.env['BENCH_MODES'] ?? 'service,pool1,pool2').split(',').map((s) => s.trim())
const shared = path.resolve(REPO, '../shared')
const capture = path.join(REPO, 'bench/out', quick ? 'bench-r1.pcap' : 'bench.pcap')
const cpus = os.cpus().length
const SINK_PORT = 4739

function positiveInt(v: string | undefined, dflt: number): number {
  const n = Number(v)
  return v !== undefined && Number.isSafeInteger(n) && n > 0 ? n : dflt
}

function parseTcpreplay(out: string): { sent: number; pps: number } {
  const actual = /Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds/.exec(out)
  const rated = /Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps/.exec(out)
  if (actual === null) throw new Error(`cannot read tcpreplay's output:\n${out}`)
  return { sent: Number(actual[1]), pps: rated === null ? NaN : Number(rated[1]) }
}

const SINK = `require('node:dgram').createSocket('udp4').on('message', () => {}).bind(${SINK_PORT}, '127.0.0.1')`

interface Row {
  mode: string
  sent: number
  sentPps: number
  rx: ProbeReceiverResult
}

async function main(): Promise<void> {
  const skip =
    netnsSkipReason() ??
    (pcapAddonAvailable() ? null : ADDON_MISSING_MESSAGE) ??
    (which('tcpreplay') === undefined ? 'tcpreplay is not installed' : null)
  if (skip !== null) {
    console.log(`live probe benchmark skipped: ${skip}`)
    return
  }
  await ensureBenchPcap(
    path.join(shared, 'bench/make-bench-pcap.sh'),
    path.join(shared, 'pcaps'),
    capture,
    quick ? 1 : 30,
  )
  const info = await captureInfo(capture)
  const pair = new NetnsPair()
  const results: Row[] = []
  try {
    await pair.create()
    await pair.veth(0, '10.79.1.1/24', '10.79.1.2/24')
    const a0 = pair.ifname('a', 0)
    const b0 = pair.ifname('b', 0)
    await run('ip', ['-n', pair.a, 'link', 'set', a0, 'mtu', '9000'])
    await run('ip', ['-n', pair.b, 'link', 'set', b0, 'mtu', '9000'])
    const sink = spawn('ip', ['netns', 'exec', pair.b, process.execPath, '-e', SINK], { stdio: 'ignore' })
    const pin = (core: number): string[] =>
      cpus > 1 && which('taskset') !== undefined ? ['taskset', '-c', String(core)] : []
    console.error(
      `live probe bench: ${capture} (${info.packets} packets), ${runs} run(s), ${cpus} CPUs, ` +
        `kernel buffer ${bufferBytes >> 20} MiB, ${pps > 0 ? `${pps} pps` : 'topspeed'}`,
    )
    try {
      for (let r = 0; r < runs; r++) {
        for (const mode of modes) {
          const workers = mode.startsWith('pool') ? Number(mode.slice(4)) : 1
          const args = [
            mode.startsWith('pool') ? 'pool' : 'service',
            b0,
            String(SINK_PORT),
            String(bufferBytes),
          ]
          if (mode.startsWith('pool')) args.push(String(workers))
          const child = spawnNodeInNetns(pair.b, path.join(REPO, 'bench/lib/live-probe-receiver.ts'), args)
          await child.waitForLine((l) => l === 'READY')
          const rate = pps > 0 ? [`--pps=${pps}`] : ['--topspeed']
          const out = await run('ip', [
            'netns',
            'exec',
            pair.a,
            ...pin(0),
            'tcpreplay',
            ...rate,
            '-i',
            a0,
            capture,
          ])
          const replay = parseTcpreplay(out)
          let prev = -1
          for (let i = 0; i < 600; i++) {
            child.send('count')
            const n = Number((await child.nextLine((l) => l.startsWith('COUNT '))).slice(6))
            if (n === prev) break
            prev = n
            await new Promise((res) => setTimeout(res, 500))
          }
          child.send('stop')
          const line = await child.nextLine((l) => l.startsWith('RESULT '), 600_000)
          await child.done
          const rx = JSON.parse(line.slice(7)) as ProbeReceiverResult
          results.push({ mode, sent: replay.sent, sentPps: replay.pps, rx })
          console.error(
            `  run ${r + 1} ${mode}: sent ${replay.sent} at ${si(replay.pps)} pps, captured ${rx.captured}, ` +
              `metered ${rx.metered} (${si(rx.metered / rx.spanS)} pps), kernel drops ${rx.kernelDrops}, ` +
              `CPU ${fixed(rx.cpuS)} s`,
          )
        }
      }
    } finally {
      sink.kill()
    }
  } finally {
    await pair.destroy()
  }
  const rows = modes.map((mode) => {
    const mine = results.filter((x) => x.mode === mode)
    const m = (f: (x: Row) => number): number => median(mine.map(f))
    return [
      mode === 'service' ? 'service (1 thread)' : `pool, ${mode.slice(4)} worker(s)`,
      String(mine.length),
      si(m((x) => x.sentPps)),
      si(m((x) => x.rx.metered / x.rx.spanS)),
      fixed(100 * m((x) => x.rx.captured / (x.sent || 1)), 1) + ' %',
      String(m((x) => Math.max(0, x.sent - x.rx.captured))),
      String(m((x) => x.rx.kernelDrops)),
      fixed(
        m((x) => (1e6 * x.rx.cpuS) / Math.max(1, x.rx.metered)),
        2,
      ),
    ]
  })
  console.log(
    `\nLive probe on a veth, ${path.basename(capture)} (${info.packets} packets), ` +
      `${pps > 0 ? `tcpreplay --pps=${pps}` : 'tcpreplay --topspeed'}, median of ${runs}, ${cpus} CPUs`,
  )
  console.log(
    table(
      ['probe', 'runs', 'sent pps', 'metered pps', 'captured', 'lost', 'kernel drops', 'CPU µs/packet'],
      rows,
    ),
  )
}

await main()
