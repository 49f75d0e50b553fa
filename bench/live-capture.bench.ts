// Live capture benchmark: `tcpreplay --topspeed` of the benchmark capture onto a veth between two network
// namespaces, captured on the peer by (a) flowtel's own N-API addon (native/pcap, batches) and (b) the npm
// `cap` package (one callback per packet; measured only when installed: `npm install --no-save cap`).
// Reports packets/s sent and received, packets lost and kernel drops, median of several runs. Prints only.
//
// npm run bench:live                 full capture (bench/out/bench.pcap, ~3.7 M packets; built when missing)
// npm run bench:live -- --quick      one replica (bench/out/bench-r1.pcap, ~120 k packets)
// Environment: BENCH_RUNS=N (default 3), BENCH_TOOLS=flowtel,cap, BENCH_BUFFER_MB (kernel buffer, default 32),
// BENCH_PPS=N (replay at N packets/s instead of --topspeed). Needs root, tcpreplay and the built addon.
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ensureBenchPcap, captureInfo } from './lib/bench-pcap.js'
import { which } from './lib/measure.js'
import { fixed, median, si, table } from './lib/report.js'
import type { ReceiverResult } from './lib/live-receiver.js'
import { NetnsPair, netnsSkipReason, REPO, run, spawnNodeInNetns } from '../test/helpers/netns.js'
import { pcapAddonAvailable, ADDON_MISSING_MESSAGE, loadPcapAddon } from '../src/capture/pcap-addon.js'

const quick = process.argv.includes('--quick') || process.env['BENCH_QUICK'] === '1'
const runs = positiveInt(process.env['BENCH_RUNS'], 3)
const bufferBytes = positiveInt(process.env['BENCH_BUFFER_MB'], 32) * 1024 * 1024
const pps = process.env['BENCH_PPS'] !== undefined ? positiveInt(process.env['BENCH_PPS'], 0) : 0
const only = process.env['BENCH_TOOLS']?.split(',').map((s) => s.trim())
const shared = path.resolve(REPO, '../shared')
const outDir = path.join(REPO, 'bench/out')
const capture = path.join(outDir, quick ? 'bench-r1.pcap' : 'bench.pcap')
const cpus = os.cpus().length

function positiveInt(v: string | undefined, dflt: number): number {
  const n = Number(v)
  return v !== undefined && Number.isSafeInteger(n) && n > 0 ? n : dflt
}

interface Replay {
  sent: number
  failed: number
  seconds: number
  pps: number
}

interface RunResult {
  tool: string
  replay: Replay
  rx: ReceiverResult
}

function parseTcpreplay(out: string): Replay {
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

async function main(): Promise<void> {
  const skip =
    netnsSkipReason() ??
    (pcapAddonAvailable() ? null : ADDON_MISSING_MESSAGE) ??
    (which('tcpreplay') === undefined ? 'tcpreplay is not installed' : null)
  if (skip !== null) {
    console.log(`live capture benchmark skipped: ${skip}`)
    return
  }
  await ensureBenchPcap(
    path.join(shared, 'bench/make-bench-pcap.sh'),
    path.join(shared, 'pcaps'),
    capture,
    quick ? 1 : 30,
  )
  const info = await captureInfo(capture)
  const tools = ['flowtel', 'cap'].filter((t) => only === undefined || only.includes(t))
  let capSkip: string | null = null
  try {
    createRequire(import.meta.url)('cap')
  } catch {
    capSkip = 'npm package `cap` not installed (npm install --no-save cap)'
  }
  const active = tools.filter((t) => t !== 'cap' || capSkip === null)

  const pair = new NetnsPair()
  const cleanup = (): void => {
    void pair.destroy()
  }
  process.once('SIGINT', cleanup)
  const results: RunResult[] = []
  try {
    await pair.create()
    await pair.veth(0, '10.79.0.1/24', '10.79.0.2/24')
    const a0 = pair.ifname('a', 0)
    const b0 = pair.ifname('b', 0)
    // Jumbo frames in the capture must fit (tcpreplay counts what does not as failed).
    await run('ip', ['-n', pair.a, 'link', 'set', a0, 'mtu', '9000'])
    await run('ip', ['-n', pair.b, 'link', 'set', b0, 'mtu', '9000'])
    const pin = (core: number): string[] =>
      cpus > 1 && which('taskset') ? ['taskset', '-c', String(core)] : []

    console.error(
      `live capture bench: ${capture} (${info.packets} packets), ${runs} run(s), kernel buffer ${bufferBytes >> 20} MiB, ` +
        `libpcap ${loadPcapAddon().libVersion()}, ${pps > 0 ? `${pps} pps` : 'topspeed'}`,
    )
    for (let r = 0; r < runs; r++) {
      for (const tool of active) {
        const child = spawnNodeInNetns(
          pair.b,
          path.join(REPO, 'bench/lib/live-receiver.ts'),
          [tool, b0, String(bufferBytes)],
          pin(cpus - 1),
        )
        await child.waitForLine((l) => l === 'READY')
        const rate = pps > 0 ? [`--pps=${pps}`] : ['--topspeed']
        // Read the capture into memory first, so the sender is not slowed by the disk.
        const preload = info.fileBytes < os.freemem() / 4 ? ['--preload-pcap'] : []
        const out = await run('ip', [
          'netns',
          'exec',
          pair.a,
          ...pin(0),
          'tcpreplay',
          ...rate,
          ...preload,
          '-i',
          a0,
          capture,
        ])
        const replay = parseTcpreplay(out)
        // Wait until the receiver has taken everything the kernel holds (its count stops moving).
        let prev = -1
        for (let i = 0; i < 600; i++) {
          child.send('count')
          const line = await child.nextLine((l) => l.startsWith('COUNT '))
          const n = Number(line.slice(6))
          if (n === prev) break
          prev = n
          await new Promise((res) => setTimeout(res, 400))
        }
        child.send('stop')
        const line = await child.nextLine((l) => l.startsWith('RESULT '))
        await child.done
        const rx = JSON.parse(line.slice(7)) as ReceiverResult
        results.push({ tool, replay, rx })
        console.error(
          `  run ${r + 1} ${tool}: sent ${replay.sent} at ${si(replay.pps)} pps, received ${rx.packets} ` +
            `(${si(rx.packets / rx.spanS)} pps), kernel drops ${rx.kernelDrops ?? 'n/a'}, ` +
            `receiver CPU ${fixed(rx.cpuS)} s`,
        )
      }
    }
  } finally {
    process.off('SIGINT', cleanup)
    await pair.destroy()
  }

  const rows: string[][] = []
  for (const tool of tools) {
    const mine = results.filter((x) => x.tool === tool)
    if (mine.length === 0) {
      rows.push([tool, '-', '-', '-', '-', '-', '-', '-', capSkip ?? 'not run'])
      continue
    }
    const m = (f: (x: RunResult) => number): number => median(mine.map(f))
    rows.push([
      tool,
      String(mine.length),
      si(m((x) => x.replay.pps)),
      si(m((x) => x.rx.packets / x.rx.spanS)),
      fixed(100 * m((x) => x.rx.packets / (x.replay.sent || 1)), 1) + ' %',
      String(m((x) => Math.max(0, x.replay.sent - x.rx.packets))),
      mine[0]!.rx.kernelDrops === null ? 'n/a' : String(m((x) => x.rx.kernelDrops ?? 0)),
      fixed(
        m((x) => (1e6 * x.rx.cpuS) / Math.max(1, x.rx.packets)),
        2,
      ),
      fixed(
        m((x) => x.rx.packets / Math.max(1, x.rx.deliveries)),
        1,
      ),
    ])
  }
  console.log(
    `\nLive capture on a veth, ${path.basename(capture)} (${info.packets} packets), ` +
      `${pps > 0 ? `tcpreplay --pps=${pps}` : 'tcpreplay --topspeed'}, median of ${runs}`,
  )
  console.log(
    table(
      [
        'capture',
        'runs',
        'sent pps',
        'received pps',
        'received',
        'lost',
        'kernel drops',
        'CPU µs/packet',
        'packets/delivery',
      ],
      rows,
    ),
  )
  if (existsSync(path.join(REPO, 'node_modules/cap')) === false && tools.includes('cap'))
    console.log('(cap: not installed; `npm install --no-save cap` to compare)')
}

await main()
