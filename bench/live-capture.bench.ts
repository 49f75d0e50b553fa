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
import path from 'node:path'
import { fixed, median, si, table } from './lib/report.js'
import {
  BenchNet,
  benchCapture,
  liveBenchOptions,
  liveBenchSkipReason,
  waitUntilStill,
  type Replay,
} from './lib/live-bench.js'
import type { ReceiverResult } from './lib/live-receiver.js'
import { REPO, spawnNodeInNetns } from '../test/helpers/netns.js'
import { loadPcapAddon } from '../src/capture/pcap-addon.js'

const { runs, bufferBytes, pps, cpus } = liveBenchOptions
const only = process.env['BENCH_TOOLS']?.split(',').map((s) => s.trim())

interface RunResult {
  tool: string
  replay: Replay
  rx: ReceiverResult
}

async function main(): Promise<void> {
  const skip = liveBenchSkipReason()
  if (skip !== null) {
    console.log(`live capture benchmark skipped: ${skip}`)
    return
  }
  const capture = await benchCapture()
  const info = capture
  const tools = ['flowtel', 'cap'].filter((t) => only === undefined || only.includes(t))
  let capSkip: string | null = null
  try {
    createRequire(import.meta.url)('cap')
  } catch {
    capSkip = 'npm package `cap` not installed (npm install --no-save cap)'
  }
  const active = tools.filter((t) => t !== 'cap' || capSkip === null)

  const net = new BenchNet('10.79.0')
  const cleanup = (): void => {
    void net.destroy()
  }
  process.once('SIGINT', cleanup)
  const results: RunResult[] = []
  try {
    await net.create()
    console.error(
      `live capture bench: ${capture.path} (${info.packets} packets), ${runs} run(s), kernel buffer ${bufferBytes >> 20} MiB, ` +
        `libpcap ${loadPcapAddon().libVersion()}, ${pps > 0 ? `${pps} pps` : 'topspeed'}`,
    )
    for (let r = 0; r < runs; r++) {
      for (const tool of active) {
        const child = spawnNodeInNetns(
          net.pair.b,
          path.join(REPO, 'bench/lib/live-receiver.ts'),
          [tool, net.b0, String(bufferBytes)],
          net.pin(cpus - 1),
        )
        await child.waitForLine((l) => l === 'READY')
        const replay = await net.replay(capture)
        // Wait until the receiver has taken everything the kernel holds (its count stops moving).
        await waitUntilStill(child)
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
    await net.destroy()
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
    `\nLive capture on a veth, ${path.basename(capture.path)} (${info.packets} packets), ` +
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
