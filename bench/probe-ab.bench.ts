// A/B CPU comparison of two builds of the probe on a busy machine: each round runs `flowtel probe` of build A
// and of build B at the same time, both pinned to the same core, so both see the same contention; prints the
// CPU seconds (user+sys) of each and the median of the per-round B/A ratios. Sequential runs on a machine
// shared with other work vary by ±15 % from run to run; the ratio of two concurrent runs on one core stayed
// within ±1 % for identical builds. Each build exports to a loopback UDP sink of its own: with one shared
// sink, one build's datagrams keep the receiver awake for the other, which hides a change in how often the
// sender has to wake it (sending in bursts). Prints only.
//
// npm run bench:ab -- <rootA> <rootB> [rounds]     (a root holds bin/flowtel.js and its dist/, e.g. a copy of
//                                                   the repo after `npm run build`; default rounds 3)
// Environment: BENCH_AB_CAPTURE (default bench/out/bench.pcap, built by `npm run bench`), BENCH_AB_CORE (0),
// BENCH_AB_ARGS (extra probe arguments for both builds, split on spaces, e.g. `--fields core,dns`).
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { measure, tasksetPath, type Measurement } from './lib/measure.js'
import { fixed, median, table } from './lib/report.js'
import { startUdpSink } from './lib/udp-sink.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2).filter((a) => a !== '--')
const [rootA, rootB, roundsArg] = args
const capture = process.env['BENCH_AB_CAPTURE'] ?? path.join(repo, 'bench/out/bench.pcap')
const core = Number(process.env['BENCH_AB_CORE'] ?? 0)
const extraArgs = (process.env['BENCH_AB_ARGS'] ?? '').split(' ').filter((a) => a !== '')

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run bench:ab -- <rootA> <rootB> [rounds]\n`)
  process.exit(2)
}

const cpu = (m: Measurement): number => m.userS + m.sysS

async function main(): Promise<void> {
  if (rootA === undefined || rootB === undefined) usage('two build roots are needed')
  const rounds = roundsArg === undefined ? 3 : Number(roundsArg)
  if (!Number.isInteger(rounds) || rounds < 1) usage(`rounds must be a positive integer, got ${roundsArg}`)
  for (const root of [rootA, rootB])
    if (!existsSync(path.join(root, 'bin/flowtel.js'))) usage(`${root}/bin/flowtel.js not found`)
  if (!existsSync(capture)) usage(`${capture} not found (npm run bench builds it)`)
  if (tasksetPath === undefined) process.stderr.write('taskset not found: the runs are not pinned\n')

  const sinks = [await startUdpSink(tasksetPath, undefined), await startUdpSink(tasksetPath, undefined)]
  const run = (root: string, sink: (typeof sinks)[number]): Promise<Measurement> =>
    measure(
      [
        process.execPath,
        path.join(root, 'bin/flowtel.js'),
        'probe',
        '--read',
        capture,
        '--collector',
        `127.0.0.1:${sink.port}`,
        ...extraArgs,
      ],
      { core },
    )
  const rows: string[][] = []
  const ratios: number[] = []
  try {
    for (let i = 1; i <= rounds; i++) {
      // Started 20 ms apart: measure() names its time file after the pid and the millisecond.
      const first = run(rootA, sinks[0]!)
      await new Promise((resolve) => setTimeout(resolve, 20))
      const [a, b] = await Promise.all([first, run(rootB, sinks[1]!)])
      for (const m of [a, b])
        if (m.code !== 0) throw new Error(`${m.argv.join(' ')} failed (${m.code ?? m.signal}): ${m.stderr}`)
      ratios.push(cpu(b) / cpu(a))
      rows.push([String(i), fixed(cpu(a)), fixed(cpu(b)), fixed(cpu(b) / cpu(a), 3)])
      process.stderr.write(`round ${i}/${rounds}: A ${fixed(cpu(a))} s, B ${fixed(cpu(b))} s\n`)
    }
  } finally {
    for (const sink of sinks) await sink.stop()
  }
  process.stdout.write(
    `A = ${rootA}\nB = ${rootB}\ncapture: ${capture}, both on core ${core}` +
      (extraArgs.length > 0 ? `, probe arguments: ${extraArgs.join(' ')}` : '') +
      '\n',
  )
  process.stdout.write(table(['round', 'A CPU s', 'B CPU s', 'B/A'], rows) + '\n')
  process.stdout.write(
    `median B/A CPU ratio ${fixed(median(ratios), 3)} (min ${fixed(Math.min(...ratios), 3)}, ` +
      `max ${fixed(Math.max(...ratios), 3)}); below 1: B uses less CPU\n`,
  )
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
