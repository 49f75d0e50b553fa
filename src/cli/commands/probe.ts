/**
 * `flowtel probe`: meter capture files (`--read`) into bidirectional flows and export them as IPFIX and/or
 * JSON; without `--read`, run the live probe service on interfaces (probe-live.ts) with every setting as a
 * flag or from `--config FILE`. `flowtel probe debug-capture` drives the export-traffic capture over the API.
 */
import { Command, Option } from 'commander'
import { addSettingsOptions } from '../../config/flags.js'
import { debugCaptureCommand } from './debug-capture.js'
import { FIELD_GROUPS } from '../../flow/fields/index.js'
import type { ExportProtocol } from '../../config/settings.js'
import { collectorDestinations, type Destination, type TransportKind } from '../../probe/destinations.js'
import { DEFAULT_PROBE_OPTIONS, runProbe } from '../../probe/probe.js'
import { collect, intOption, secondsOption } from '../options.js'
import { ProgressBar } from '../progress.js'
import { formatSummary } from '../summary.js'

interface ProbeFlags {
  read?: string[]
  collector?: string[]
  transport: TransportKind
  exportProtocol: ExportProtocol
  tlsCa?: string
  tlsCert?: string
  tlsKey?: string
  tlsServerName?: string
  json?: string
  ipfixFile?: string
  activeTimeout: number
  inactiveTimeout: number
  tcpEndTimeout: number
  maxFlows: number
  observationDomain: number
  mtu: number
  templateRefresh: number
  templateRefreshMessages: number
  statsInterval: number
  fields?: string
  workers: number
  workerPool?: boolean
  progress: boolean
  summary: boolean
}

export function probeCommand(): Command {
  const d = DEFAULT_PROBE_OPTIONS
  const cmd = new Command('probe')
    .description(
      'meter capture files (--read) or live interfaces (--interface / --config) into bidirectional flows ' +
        'and export them as IPFIX (RFC 7011) or NetFlow',
    )
    .option('-r, --read <capture>', 'pcap/pcapng file or folder to read (repeatable, read in order)', collect)
    .option(
      '-c, --collector <host:port>',
      'IPFIX collector: host:port, fqdn:port or [v6]:port (repeatable)',
      collect,
    )
    .addOption(
      new Option('-t, --transport <proto>', 'export transport').choices(['udp', 'tcp', 'tls']).default('udp'),
    )
    .addOption(
      new Option('--export-protocol <format>', 'export format (NetFlow v9/v5 for older collectors, UDP only)')
        .choices(['ipfix', 'netflow-v9', 'netflow-v5'])
        .default('ipfix'),
    )
    .option('--tls-ca <file>', 'TLS: PEM CA file that signs the collector certificate (default: system CAs)')
    .option('--tls-cert <file>', 'TLS: PEM client certificate, for collectors that require one')
    .option('--tls-key <file>', 'TLS: PEM private key of --tls-cert')
    .option(
      '--tls-server-name <name>',
      'TLS: name to verify in the collector certificate (default: its host)',
    )
    .option(
      '--json <file|->',
      'also write every record as a JSON line (IANA element names) to a file or stdout',
    )
    .option(
      '--ipfix-file <file>',
      'also write the IPFIX messages to a file (RFC 5655 layout, as ipfixDump reads)',
    )
    .option(
      '--active-timeout <s>',
      'active timeout in seconds',
      secondsOption('--active-timeout', 1, 86400),
      d.activeTimeout,
    )
    .option(
      '--inactive-timeout <s>',
      'inactive (idle) timeout in seconds',
      secondsOption('--inactive-timeout', 1, 86400),
      d.inactiveTimeout,
    )
    .option(
      '--tcp-end-timeout <s>',
      'seconds a TCP flow lingers after FIN/RST before export',
      secondsOption('--tcp-end-timeout', 0, 3600),
      d.tcpEndLinger,
    )
    .option('--max-flows <n>', 'flow cache size', intOption('--max-flows', 1, 100_000_000), d.maxFlows)
    .option(
      '--observation-domain <id>',
      'IPFIX observation domain ID',
      intOption('--observation-domain', 0, 0xffffffff),
      d.observationDomainId,
    )
    .option('--mtu <bytes>', 'link MTU the export datagrams must fit', intOption('--mtu', 576, 65535), d.mtu)
    .option(
      '--template-refresh <s>',
      'UDP template refresh interval in seconds',
      secondsOption('--template-refresh', 1, 86400),
      d.templateRefreshSeconds,
    )
    .option(
      '--template-refresh-messages <n>',
      'UDP: also resend templates every N messages (0 = off)',
      intOption('--template-refresh-messages', 0, 1_000_000),
      d.templateRefreshMessages,
    )
    .option(
      '--stats-interval <s>',
      'interval of the exporter statistics options records',
      secondsOption('--stats-interval', 1, 86400),
      d.statsIntervalSeconds,
    )
    .option('--fields <groups>', `field groups: ${Object.keys(FIELD_GROUPS).join(', ')}, all, default`)
    .option(
      '--workers <n>',
      'metering worker threads; flows are shared by a symmetric hash of the address pair',
      intOption('--workers', 1, 64),
      1,
    )
    // Benchmarks: run one worker through the pool, to measure its overhead against the plain path.
    .addOption(new Option('--worker-pool', 'use the worker pool even with one worker').hideHelp())
    .option('--no-progress', 'no progress bar')
    .option('--no-summary', 'no summary at the end')
  // The live settings (--interface, --config, --source-address, --api-listen, ...); flags defined above keep
  // their definitions, and in live mode only the flags actually given override the config file.
  addSettingsOptions(cmd)
  cmd.addCommand(debugCaptureCommand())
  return cmd.action(async (flags: ProbeFlags & { interface?: string[]; config?: string }, self: Command) => {
    if (!flags.read || flags.read.length === 0) {
      if (flags.interface === undefined && flags.config === undefined)
        throw new Error(
          'probe: give at least one --read <capture> for files, or --interface/--config for live capture',
        )
      // Loaded on demand: the live service, its API server and config loading (yaml, prom-client) are
      // start-up cost a file run does not need.
      const { runLiveProbe } = await import('./probe-live.js')
      await runLiveProbe(self)
      return
    }
    if (flags.interface !== undefined || flags.config !== undefined)
      throw new Error('probe: --read reads files; it cannot be combined with --interface or --config')
    const destinations: Destination[] = collectorDestinations(flags.collector ?? [], flags.transport, {
      protocol: flags.exportProtocol,
      tls: {
        ...(flags.tlsCa !== undefined ? { caFile: flags.tlsCa } : {}),
        ...(flags.tlsCert !== undefined ? { certFile: flags.tlsCert } : {}),
        ...(flags.tlsKey !== undefined ? { keyFile: flags.tlsKey } : {}),
        ...(flags.tlsServerName !== undefined ? { serverName: flags.tlsServerName } : {}),
      },
    })
    if (flags.json !== undefined) destinations.push({ kind: 'json', path: flags.json, host: '' })
    if (flags.ipfixFile !== undefined)
      destinations.push({ kind: 'ipfix-file', path: flags.ipfixFile, host: '' })
    if (destinations.length === 0) throw new Error('probe: give --collector host:port and/or --json FILE')
    const bar = new ProgressBar('reading')
    const pooled = flags.workers > 1 || flags.workerPool === true
    const run = pooled ? (await import('../../probe/workers/probe-workers.js')).runProbeWorkers : runProbe
    const summary = await run({
      workers: flags.workers,
      reads: flags.read,
      destinations,
      activeTimeout: flags.activeTimeout,
      inactiveTimeout: flags.inactiveTimeout,
      tcpEndLinger: flags.tcpEndTimeout,
      maxFlows: flags.maxFlows,
      observationDomainId: flags.observationDomain,
      mtu: flags.mtu,
      templateRefreshSeconds: flags.templateRefresh,
      templateRefreshMessages: flags.templateRefreshMessages,
      statsIntervalSeconds: flags.statsInterval,
      ...(flags.fields !== undefined ? { fields: flags.fields.split(',') } : {}),
      ...(flags.progress ? { onProgress: (done: number, total: number) => bar.update(done, total) } : {}),
      onWarning: (m) => process.stderr.write(`flowtel: warning: ${m}\n`),
    })
    bar.done()
    if (flags.summary) process.stderr.write(formatSummary(summary))
  })
}
