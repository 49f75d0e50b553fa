// Live probe benchmark (issue 5): `tcpreplay --topspeed` of the benchmark capture onto a veth between two
// network namespaces; on the peer, the live probe service (probe/service.ts) captures and meters it and
// exports IPFIX/UDP to a sink on the namespace's loopback, with its metering on one thread (`workers: 1`) and
// on worker threads (`workers: 2`, probe/workers/live-workers.ts). Reported: packets/s sent, captured and
// metered, packets lost, kernel drops and CPU per packet. Prints figures only (median of runs).
//
// npm run bench:live-probe              full capture (bench/out/bench.pcap, built from ../shared when missing)
// npm run bench:live-probe -- --quick   one replica (bench/out/bench-r1.pcap)
// Environment: BENCH_RUNS (default 3), BENCH_BUFFER_MB (kernel buffer, default 32), BENCH_PPS (replay rate
// instead of --topspeed), BENCH_WORKERS=1,2. Needs root, tcpreplay and the built addon.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fixed, median, si, table } from './lib/report.js'
import {
  BenchNet,
  benchCapture,
  liveBenchOptions,
  liveBenchSkipReason,
  waitUntilStill,
} from './lib/live-bench.js'
import type { ProbeReceiverResult } from './lib/live-probe-receiver.js'
import { REPO, spawnNodeInNetns } from '../test/helpers/netns.js'

const { runs, bufferBytes, pps, cpus } = liveBenchOptions
const workerCounts = (process.env['BENCH_WORKERS'] ?? '1,2').split(',').map((s) => Number(s.trim()))
const SINK_PORT = 4739
const SINK = `require('node:dgram').createSocket('udp4').on('message', () => {}).bind(${SINK_PORT}, '127.0.0.1')`

interface Row {
  workers: number
  sent: number
  sentPps: number
  rx: ProbeReceiverResult
}

async function main(): Promise<void> {
  const skip = liveBenchSkipReason()
  if (skip !== null) {
    console.log(`live probe benchmark skipped: ${skip}`)
    return
  }
  const capture = await benchCapture()
  const net = new BenchNet('10.79.1')
  const results: Row[] = []
  try {
    await net.create()
    const sink = spawn('ip', ['netns', 'exec', net.pair.b, process.execPath, '-e', SINK], { stdio: 'ignore' })
    console.error(
      `live probe bench: ${capture.path} (${capture.packets} packets), ${runs} run(s), ${cpus} CPUs, ` +
        `kernel buffer ${bufferBytes >> 20} MiB, ${pps > 0 ? `${pps} pps` : 'topspeed'}`,
    )
    try {
      for (let r = 0; r < runs; r++) {
        for (const workers of workerCounts) {
          const child = spawnNodeInNetns(net.pair.b, path.join(REPO, 'bench/lib/live-probe-receiver.ts'), [
            net.b0,
            String(SINK_PORT),
            String(bufferBytes),
            String(workers),
          ])
          await child.waitForLine((l) => l === 'READY')
          const replay = await net.replay(capture)
          await waitUntilStill(child, 500)
          child.send('stop')
          const line = await child.nextLine((l) => l.startsWith('RESULT '), 600_000)
          await child.done
          const rx = JSON.parse(line.slice(7)) as ProbeReceiverResult
          results.push({ workers, sent: replay.sent, sentPps: replay.pps, rx })
          console.error(
            `  run ${r + 1} workers ${workers}: sent ${replay.sent} at ${si(replay.pps)} pps, captured ` +
              `${rx.captured}, metered ${rx.metered} (${si(rx.spanPackets / rx.spanS)} pps), kernel drops ` +
              `${rx.kernelDrops}, CPU ${fixed(rx.cpuS)} s`,
          )
        }
      }
    } finally {
      sink.kill()
    }
  } finally {
    await net.destroy()
  }
  const rows = workerCounts.map((workers) => {
    const mine = results.filter((x) => x.workers === workers)
    const m = (f: (x: Row) => number): number => median(mine.map(f))
    return [
      `service, workers: ${workers}`,
      String(mine.length),
      si(m((x) => x.sentPps)),
      si(m((x) => x.rx.spanPackets / x.rx.spanS)),
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
    `\nLive probe service on a veth, ${path.basename(capture.path)} (${capture.packets} packets), ` +
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
