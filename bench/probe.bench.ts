// Probe throughput benchmark: flowtel's probe next to softflowd and nfpcapd on the same deterministic capture,
// each pinned to one core, reporting packets/s, Gbit/s, CPU seconds, peak RSS and flowtel's ratios. Prints only.
//
// npm run bench:probe                full capture (30 replicas, ~3.7 M packets; built once into bench/out/)
// npm run bench:probe -- --quick     one replica (~120 k packets), a smoke run of about a minute
// Environment: BENCH_QUICK=1, BENCH_REPLICAS=N (or REPLICAS), BENCH_RUNS=N (median of N runs, default 1),
// BENCH_TOOLS=flowtel,flowtel-held,flowtel-w1,flowtel-w2,fields-core,fields-core+app,fields-core+dns+http+tls+dhcp+app+quic,fields-all,softflowd,softflowd-1m,nfpcapd,ndpi,tcpdump (subset), BENCH_TIMEOUT_S (per run, default 1800),
// BENCH_PAIRED=1: run the tools in rounds (one run of each per round) instead of all runs of one tool in a row,
// and also print flowtel's CPU-time ratio to each reference as the median of the per-round ratios, which
// holds up far better than separate medians on a machine that other work shares.
// To compare two builds of flowtel itself (before/after a change), `npm run bench:ab` (probe-ab.bench.ts)
// runs them side by side on one core, which is steadier still.
import { execFile, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { captureInfo, ensureBenchPcap, type CaptureInfo } from './lib/bench-pcap.js'
import { hasGnuTime, measure, tasksetPath, which, type Measurement } from './lib/measure.js'
import { fixed, median, mib, ratio, si, table } from './lib/report.js'
import { startUdpSink, type SinkCounts } from './lib/udp-sink.js'

const execFileAsync = promisify(execFile)
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const shared = path.resolve(repo, '../shared')
const outDir = path.join(repo, 'bench/out')

const quick = process.argv.includes('--quick') || process.env['BENCH_QUICK'] === '1'
const DEFAULT_REPLICAS = 30 // bench/README.md: ~3.7 M packets from ../shared/pcaps
const replicas = quick
  ? 1
  : positiveInt(process.env['BENCH_REPLICAS'] ?? process.env['REPLICAS'], DEFAULT_REPLICAS)
const runs = positiveInt(process.env['BENCH_RUNS'], 1)
const paired = process.env['BENCH_PAIRED'] === '1'
const timeoutMs = positiveInt(process.env['BENCH_TIMEOUT_S'], 1800) * 1000
const only = process.env['BENCH_TOOLS']?.split(',').map((s) => s.trim())

const cpus = os.cpus().length
/** The measured tool runs on core 0; the UDP sink on the last core when there is more than one. */
const TOOL_CORE = 0
const SINK_CORE = cpus > 1 ? cpus - 1 : undefined

interface Tool {
  readonly name: string
  readonly binary: string
  /** Whether the export goes to the UDP sink. */
  readonly sink: boolean
  /** Not pinned to one core (the multi-threaded runs). */
  readonly unpinned?: boolean
  argv(capture: string, port: number, dir: string): string[]
  /** Extra facts read from the tool's output. */
  parse(m: Measurement): Facts
  /** Extra facts read from what the tool wrote into its scratch directory (not timed). */
  inspect?(dir: string): Promise<Facts>
}

interface Facts {
  flows?: number
  peakActiveFlows?: number
  records?: number
  note?: string
}

const flowtelBin = path.join(repo, 'bin/flowtel.js')

/** `flowtel probe` over the capture, exporting to the UDP sink, with extra options. */
function flowtelTool(name: string, extra: readonly string[], unpinned = false): Tool {
  return {
    name,
    binary: process.execPath,
    sink: true,
    unpinned,
    argv: (f, port) => [
      process.execPath,
      flowtelBin,
      'probe',
      '--read',
      f,
      '--collector',
      `127.0.0.1:${port}`,
      ...extra,
    ],
    parse: (m) => parseFlowtelSummary(m.stderr + m.stdout),
  }
}

/** Field-group cost (issue 3): the same run with `--fields` set, compared with `core` alone. */
const FIELD_SETS = [
  'core',
  'core,l2,tunnel',
  'core,npm',
  'core,tcpext',
  'core,arp',
  'core,dns,http,tls',
  // Application IDs alone: they run the DNS/HTTP/TLS/QUIC/DHCP parsers for names, without transaction records.
  'core,app',
  // Every L7 group (issue 4: at least 70% of `core` alone).
  'core,dns,http,tls,dhcp,app,quic',
  'all',
]

const tools: readonly Tool[] = [
  flowtelTool('flowtel probe', []),
  ...FIELD_SETS.map((fields) => flowtelTool(`flowtel --fields ${fields}`, ['--fields', fields])),
  // Memory per flow: no flow expires before the end, so the cache holds every flow of the capture.
  flowtelTool('flowtel probe (all flows held)', [
    '--inactive-timeout',
    '86400',
    '--active-timeout',
    '86400',
    '--max-flows',
    '4000000',
  ]),
  // Multi-core (issue 5): the worker pool with 1 worker (its overhead) and 2 workers, not pinned.
  flowtelTool('flowtel --workers 1 (pool)', ['--workers', '1', '--worker-pool'], true),
  flowtelTool('flowtel --workers 2', ['--workers', '2'], true),
  {
    name: 'softflowd (8192 flows)',
    binary: 'softflowd',
    sink: true,
    // softflowd 1.1.0 blocks in -r mode when -c is given, so no control socket.
    argv: (f, port) => ['softflowd', '-r', f, '-n', `127.0.0.1:${port}`, '-v', '10'],
    parse: (m) => parseSoftflowd(m.stdout + m.stderr),
  },
  {
    name: 'softflowd -m 1000000',
    binary: 'softflowd',
    sink: true,
    argv: (f, port) => ['softflowd', '-r', f, '-n', `127.0.0.1:${port}`, '-v', '10', '-m', '1000000'],
    parse: (m) => parseSoftflowd(m.stdout + m.stderr),
  },
  {
    name: 'nfpcapd -w DIR',
    binary: 'nfpcapd',
    sink: false,
    argv: (f, _port, dir) => ['nfpcapd', '-r', f, '-w', dir],
    parse: () => ({}),
    // Its per-file "Ident: ... Flows:" lines are too many to keep; `nfdump -I` sums the file headers.
    inspect: async (dir) => {
      const r = await execFileAsync('nfdump', ['-R', dir, '-I'], { encoding: 'utf8' }).catch(() => ({
        stdout: '',
      }))
      const flows = /^Flows: (\d+)/m.exec(r.stdout)
      return flows ? { flows: Number(flows[1]) } : {}
    },
  },
  {
    // The DPI reference for the L7 groups (issue 4): nDPI's reader classifies every flow and keeps them all
    // to the end of the file. Debian's libndpi-bin; not needed for anything but this row.
    name: 'ndpiReader -i F (nDPI DPI)',
    binary: 'ndpiReader',
    sink: false,
    argv: (f) => ['ndpiReader', '-i', f],
    parse: (m) => {
      const flows = /Unique flows:\s+(\d+)/.exec(m.stdout)
      return flows ? { flows: Number(flows[1]) } : {}
    },
  },
  {
    name: 'tcpdump -w /dev/null (read floor)',
    binary: 'tcpdump',
    sink: false,
    argv: (f) => ['tcpdump', '-n', '-r', f, '-w', '/dev/null'],
    parse: () => ({}),
  },
]

const toolKeys = new Map<string, string>([
  ['flowtel probe', 'flowtel'],
  ['flowtel probe (all flows held)', 'flowtel-held'],
  ['flowtel --workers 1 (pool)', 'flowtel-w1'],
  ['flowtel --workers 2', 'flowtel-w2'],
  ...FIELD_SETS.map((g): [string, string] => [`flowtel --fields ${g}`, `fields-${g.replace(/,/g, '+')}`]),
  ['softflowd (8192 flows)', 'softflowd'],
  ['softflowd -m 1000000', 'softflowd-1m'],
  ['nfpcapd -w DIR', 'nfpcapd'],
  ['ndpiReader -i F (nDPI DPI)', 'ndpi'],
  ['tcpdump -w /dev/null (read floor)', 'tcpdump'],
])

interface RunRecord {
  readonly m: Measurement
  readonly sink: SinkCounts | undefined
  readonly facts: Facts
}

interface Result {
  readonly tool: Tool
  readonly runs: readonly RunRecord[]
  readonly skipped?: string
}

async function main(): Promise<void> {
  const name = replicas === DEFAULT_REPLICAS ? 'bench.pcap' : `bench-r${replicas}.pcap`
  const capture = path.join(outDir, name)
  await ensureBenchPcap(
    path.join(shared, 'bench/make-bench-pcap.sh'),
    path.join(shared, 'pcaps'),
    capture,
    replicas,
  )
  const info = await captureInfo(capture)
  printHeader(info)

  const results: Result[] = []
  const runnable: { tool: Tool; done: RunRecord[] }[] = []
  for (const tool of tools) {
    const key = toolKeys.get(tool.name) ?? tool.name
    if (only && !only.includes(key)) continue
    const skipped = unavailable(tool)
    if (skipped !== undefined) {
      process.stderr.write(`skip ${tool.name}: ${skipped}\n`)
      results.push({ tool, runs: [], skipped })
      continue
    }
    const done: RunRecord[] = []
    runnable.push({ tool, done })
    results.push({ tool, runs: done })
  }
  const runOne = async (t: { tool: Tool; done: RunRecord[] }, i: number): Promise<boolean> => {
    process.stderr.write(`run ${t.tool.name} (${i + 1}/${runs}) ...`)
    const r = await runOnce(t.tool, info.file)
    process.stderr.write(` ${fixed(r.m.wallS)} s, exit ${r.m.code ?? r.m.signal}\n`)
    t.done.push(r)
    return r.m.code === 0
  }
  if (paired) {
    let failed = false
    for (let i = 0; i < runs && !failed; i++)
      for (const t of runnable) if (!(await runOne(t, i))) failed = true
  } else {
    for (const t of runnable) for (let i = 0; i < runs; i++) if (!(await runOne(t, i))) break
  }
  // Node's own footprint with the CLI loaded, so the per-flow figure can leave it out.
  let baselineRss = NaN
  if (results.some((r) => r.tool.name === 'flowtel probe' && r.runs.length > 0)) {
    const b = await measure([process.execPath, flowtelBin, 'probe', '--help'], { core: TOOL_CORE, cwd: repo })
    if (b.code === 0) baselineRss = b.maxRssBytes
  }
  printReport(info, results, baselineRss)
  await mkdir(outDir, { recursive: true })
  const jsonFile = path.join(outDir, `results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  await writeFile(jsonFile, JSON.stringify(toJson(info, results), null, 2))
  console.log(`\nraw results: ${path.relative(repo, jsonFile)}`)
}

async function runOnce(tool: Tool, capture: string): Promise<RunRecord> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flowtel-bench-'))
  try {
    const sink = tool.sink ? await startUdpSink(tasksetPath, SINK_CORE) : undefined
    const m = await measure(tool.argv(capture, sink?.port ?? 9, dir), {
      ...(tool.unpinned === true ? {} : { core: TOOL_CORE }),
      timeoutMs,
      cwd: repo,
    })
    const counts = sink ? await sink.stop(300) : undefined
    const facts = { ...tool.parse(m), ...(tool.inspect ? await tool.inspect(dir) : {}) }
    return { m, sink: counts, facts }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function unavailable(tool: Tool): string | undefined {
  if (tool.name === 'flowtel probe') {
    if (!existsSync(path.join(repo, 'dist/cli/main.js'))) return 'not built (npm run build)'
    const help = spawnSync(process.execPath, [flowtelBin, 'probe', '--help'], { cwd: repo, encoding: 'utf8' })
    if (help.status !== 0)
      return `'flowtel probe --help' failed: ${(help.stderr || help.stdout).trim().slice(0, 200)}`
    return undefined
  }
  return which(tool.binary) === undefined ? `${tool.binary} not installed` : undefined
}

// ---------------------------------------------------------------------------------------------------------
// Output parsing

/**
 * Reads the probe's end-of-run summary (stderr): "flows  N (peak M active)" and "export  N messages, N records"
 * (other spellings of the peak are accepted too); absent figures are left out.
 */
function parseFlowtelSummary(text: string): Facts {
  const out: Facts = {}
  const peak =
    /\(peak ([\d,_]+) active\)/i.exec(text) ??
    /peak[\s_-]*active[\s_-]*flows?\D{0,12}?([\d,_]+)/i.exec(text) ??
    /active[\s_-]*flows?[^\n]{0,20}?peak\D{0,12}?([\d,_]+)/i.exec(text) ??
    /peak[\s_-]*(?:flows?|cache)\D{0,12}?([\d,_]+)/i.exec(text)
  if (peak?.[1] !== undefined) out.peakActiveFlows = digits(peak[1])
  const flows = /^\s*flows\s+([\d,_]+)/im.exec(text)
  if (flows?.[1] !== undefined) out.flows = digits(flows[1])
  const records = /([\d,_]+) records/i.exec(text)
  if (records?.[1] !== undefined) out.records = digits(records[1])
  return out
}

function parseSoftflowd(text: string): Facts {
  const m = /Flows exported: (\d+) \((\d+) records\)/.exec(text)
  const forced = /maxflows =\s*(\d+)/.exec(text)
  const out: Facts = {}
  if (m) {
    out.flows = Number(m[1])
    out.records = Number(m[2])
  }
  if (forced && Number(forced[1]) > 0) out.note = `${forced[1]} flows expired early (table full)`
  return out
}

function digits(s: string): number {
  return Number(s.replace(/[,_]/g, ''))
}

// ---------------------------------------------------------------------------------------------------------
// Report

function printHeader(info: CaptureInfo): void {
  const model = os.cpus()[0]?.model ?? 'unknown cpu'
  console.log(`flowtel probe benchmark${quick ? ' (quick)' : ''}`)
  console.log(
    `capture: ${path.relative(repo, info.file)}  ${si(info.packets)} packets, ${si(info.wireBytes)}B wire, ` +
      `${replicas} replica(s), span ${fixed(info.spanS, 0)} s`,
  )
  console.log(
    `machine: ${cpus} x ${model}, node ${process.version}; tool on core ${TOOL_CORE}` +
      `${tasksetPath ? '' : ' (taskset absent: not pinned)'}, sink on ${SINK_CORE === undefined ? 'any core' : `core ${SINK_CORE}`}; ` +
      `cpu/rss via ${hasGnuTime ? '/usr/bin/time -v' : '/proc polling'}; ${runs} run(s) each, median shown`,
  )
  const load = os.loadavg()[0] ?? 0
  console.log(`load average (1 min) at start: ${load.toFixed(2)}`)
  if (load > cpus * 0.5) {
    console.log(
      'WARNING: the machine is busy; wall-clock figures (packets/s, Gbit/s) are inflated by contention. ' +
        'CPU seconds and packets per CPU-second are the steadier comparison.',
    )
  }
  console.log('')
}

interface Row {
  name: string
  ok: boolean
  pps: number
  gbps: number
  cpuS: number
  wallS: number
  rss: number
  datagrams: number
  flows: number
  peak: number
  note: string
}

function summarize(info: CaptureInfo, r: Result): Row {
  const ok = r.runs.length > 0 && r.runs.every((x) => x.m.code === 0 && !x.m.timedOut)
  const wallS = median(r.runs.map((x) => x.m.wallS))
  const cpuS = median(r.runs.map((x) => x.m.userS + x.m.sysS))
  const rss = median(r.runs.map((x) => x.m.maxRssBytes))
  const last = r.runs[r.runs.length - 1]
  const facts: Facts = last?.facts ?? {}
  let note = r.skipped ?? facts.note ?? ''
  if (last && !ok) {
    const err = (last.m.stderr.trim().split('\n').pop() ?? '').slice(0, 80)
    note = `FAILED (${last.m.timedOut ? 'timeout' : `exit ${last.m.code ?? last.m.signal}`}) ${err}`
  }
  return {
    name: r.tool.name,
    ok,
    pps: ok ? info.packets / wallS : NaN,
    gbps: ok ? (info.wireBytes * 8) / wallS / 1e9 : NaN,
    cpuS: ok ? cpuS : NaN,
    wallS: ok ? wallS : NaN,
    rss: ok ? rss : NaN,
    datagrams: last?.sink?.datagrams ?? NaN,
    flows: facts.flows ?? NaN,
    peak: facts.peakActiveFlows ?? NaN,
    note,
  }
}

function printReport(info: CaptureInfo, results: readonly Result[], baselineRss: number): void {
  const rows = results.map((r) => summarize(info, r))
  console.log(
    table(
      [
        'tool',
        'wall s',
        'packets/s',
        'Gbit/s',
        'CPU s',
        'pkts/CPU-s',
        'peak RSS',
        'export dgrams',
        'flows',
        'note',
      ],
      rows.map((r) => [
        r.name,
        fixed(r.wallS),
        si(r.pps),
        fixed(r.gbps, 3),
        fixed(r.cpuS),
        si(info.packets / r.cpuS),
        mib(r.rss),
        si(r.datagrams, 1),
        si(r.flows, 1),
        r.note,
      ]),
    ),
  )
  const coreOnly = rows.find((x) => x.name === 'flowtel --fields core')
  const groupRows = rows.filter((x) => x.name.startsWith('flowtel --fields ') && x.ok)
  if (coreOnly?.ok && groupRows.length > 1) {
    console.log('\nfield-group cost (packets per CPU-second relative to --fields core):')
    console.log(
      table(
        ['fields', 'pkts/CPU-s', 'relative to core'],
        groupRows.map((x) => [
          x.name.slice('flowtel --fields '.length),
          si(info.packets / x.cpuS),
          `${fixed((100 * coreOnly.cpuS) / x.cpuS, 0)}%`,
        ]),
      ),
    )
  }
  const allL7 = rows.find((x) => x.name === 'flowtel --fields core,dns,http,tls,dhcp,app,quic')
  if (coreOnly?.ok && allL7?.ok && allL7.flows > 0) {
    // Issue 4's goal, and what it means per flow: the CPU time the L7 groups add, spread over the flows.
    const share = coreOnly.cpuS / allL7.cpuS
    const perFlowUs = (s: number): string => `${fixed((1e6 * s) / allL7.flows, 2)} µs`
    console.log(
      `\nevery L7 group: ${fixed(100 * share, 0)}% of core's packets/CPU-s (goal: at least 70%, ` +
        `${share >= 0.7 ? 'met' : 'not met'}); the groups add ${perFlowUs(allL7.cpuS - coreOnly.cpuS)} ` +
        `of CPU per flow, the goal allows ${perFlowUs(coreOnly.cpuS / 0.7 - coreOnly.cpuS)}`,
    )
  }
  const ndpi = rows.find((x) => x.name === 'ndpiReader -i F (nDPI DPI)')
  if (allL7?.ok && ndpi?.ok) {
    console.log(
      `\nevery L7 group against nDPI's reader: packets/s ${ratio(allL7.pps, ndpi.pps)}, ` +
        `CPU time ${ratio(allL7.cpuS, ndpi.cpuS)}, peak RSS ${ratio(allL7.rss, ndpi.rss)} (>1x: flowtel is faster / uses more)`,
    )
  }
  const ft = rows.find((r) => r.name === 'flowtel probe')
  if (!ft?.ok) {
    console.log(`\nflowtel: ${ft?.note || 'not run'}; no ratios.`)
    return
  }
  console.log('\nflowtel relative to each reference (>1x: flowtel is faster / uses more):')
  console.log(
    table(
      ['reference', 'packets/s ratio', 'CPU-time ratio', 'peak RSS ratio'],
      rows
        .filter((r) => r !== ft && r.ok && !r.name.startsWith('flowtel'))
        .map((r) => [r.name, ratio(ft.pps, r.pps), ratio(ft.cpuS, r.cpuS), ratio(ft.rss, r.rss)]),
    ),
  )
  const ftRuns = results.find((r) => r.tool.name === 'flowtel probe')?.runs ?? []
  if (paired && ftRuns.length > 1) {
    console.log('\nper-round CPU-time ratios (reference CPU s / flowtel CPU s; >1x: flowtel is faster):')
    const cpu = (x: RunRecord): number => x.m.userS + x.m.sysS
    console.log(
      table(
        ['reference', 'median', 'min', 'max', 'rounds'],
        results
          .filter((r) => !r.tool.name.startsWith('flowtel') && r.runs.length > 0)
          .map((r) => {
            const q = r.runs.slice(0, ftRuns.length).map((x, i) => cpu(x) / cpu(ftRuns[i]!))
            return [
              r.tool.name,
              `${fixed(median(q), 3)}x`,
              `${fixed(Math.min(...q), 3)}x`,
              `${fixed(Math.max(...q), 3)}x`,
              String(q.length),
            ]
          }),
      ),
    )
  }
  for (const r of [ft, rows.find((x) => x.name === 'flowtel probe (all flows held)')]) {
    if (r === undefined || !r.ok || !Number.isFinite(r.peak) || r.peak <= 0) continue
    console.log(
      `\n${r.name}: peak active flows ${si(r.peak)}; peak RSS per active flow ${fixed(r.rss / r.peak, 0)} bytes` +
        ` (${fixed((r.rss - baselineRss) / r.peak, 0)} bytes above the ${mib(baselineRss)} of 'flowtel probe --help')`,
    )
  }
  if (!Number.isFinite(ft.peak) || ft.peak <= 0) {
    console.log('\nflowtel did not print a peak active flow count; RSS per flow not computed.')
  }
}

function toJson(info: CaptureInfo, results: readonly Result[]): unknown {
  return {
    capture: info,
    replicas,
    quick,
    machine: { cpus, model: os.cpus()[0]?.model, node: process.version },
    results: results.map((r) => ({
      tool: r.tool.name,
      skipped: r.skipped,
      runs: r.runs.map((x) => ({
        argv: x.m.argv,
        code: x.m.code,
        wallS: x.m.wallS,
        userS: x.m.userS,
        sysS: x.m.sysS,
        maxRssBytes: x.m.maxRssBytes,
        method: x.m.method,
        pinnedCore: x.m.pinnedCore,
        sink: x.sink,
        facts: x.facts,
        stderrTail: x.m.stderr.slice(-2000),
      })),
    })),
  }
}

function positiveInt(v: string | undefined, dflt: number): number {
  const n = v === undefined ? NaN : Number(v)
  return Number.isInteger(n) && n > 0 ? n : dflt
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
