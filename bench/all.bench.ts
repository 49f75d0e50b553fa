// `npm run bench`: every benchmark the issues set goals for, one after the other in one run: the probe
// (flowtel next to softflowd and nfpcapd, plus the L7 field groups against `core`) and the flow store
// (ingest next to nfcapd, top-10 latency and bytes per stored flow on DuckDB and ClickHouse). Prints only.
//
// npm run bench                      both suites
// npm run bench -- --quick           the probe suite on one replica (the store suite keeps its own knobs)
// Environment: BENCH_SUITES=probe,store (subset); each suite's own knobs are documented in
// bench/probe.bench.ts and bench/store.bench.ts.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const benchDir = path.dirname(fileURLToPath(import.meta.url))

const SUITES: Readonly<Record<string, string>> = {
  probe: 'probe.bench.ts',
  store: 'store.bench.ts',
}

const wanted = (process.env['BENCH_SUITES'] ?? Object.keys(SUITES).join(','))
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s.length > 0)

for (const name of wanted) {
  if (!(name in SUITES)) {
    process.stderr.write(
      `bench: unknown suite '${name}' in BENCH_SUITES (known: ${Object.keys(SUITES).join(', ')})\n`,
    )
    process.exit(2)
  }
}

let failed = 0
for (const name of wanted) {
  const file = path.join(benchDir, SUITES[name] ?? '')
  process.stdout.write(`\n=== bench suite: ${name} (${path.relative(process.cwd(), file)}) ===\n`)
  const run = spawnSync(process.execPath, ['--import', 'tsx', file, ...process.argv.slice(2)], {
    stdio: 'inherit',
  })
  if (run.status !== 0) {
    failed++
    process.stderr.write(
      `bench: suite '${name}' ended with ${run.signal ?? `status ${String(run.status)}`}\n`,
    )
  }
}
process.exit(failed > 0 ? 1 : 0)
