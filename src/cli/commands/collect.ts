/**
 * `flowtel collect`: the flow collector (IPFIX RFC 7011, NetFlow v9 RFC 3954, NetFlow v5). Offline, `--read`
 * decodes capture files (UDP/TCP payloads on any port) and raw export files (RFC 5655 IPFIX files) as one
 * stream, in order, and prints one JSON line per data record with the probe's element names (recordToJson).
 * Template events and options data records go to stderr as JSON lines, or into the JSON stream with --events.
 * On stderr the template events and the options data records are rate-limited per exporter and kind
 * (--event-log-limit per minute, then one `template-events-suppressed` or `options-data-suppressed` line per
 * window; event-log-limit.ts); the counters keep the exact counts.
 * With --store duckdb:PATH or clickhouse:URL the flow records are stored too (batched; flushed at the end, on
 * SIGINT/SIGTERM and by the batch triggers), and retention by age and row count runs at start and every
 * minute while listening. Options data records go to the store's options table (store/options-rows.ts),
 * which `flowtel query` joins onto the flows. RFC 6313 lists are printed as JSON, decoded by the collector.
 */
import { Command } from 'commander'
import { createWriteStream } from 'node:fs'
import type { Writable } from 'node:stream'
import { recordToJson } from '../../ipfix/decoder.js'
import {
  FlowCollector,
  type CollectedRecord,
  type DecodeOutput,
  type TemplateEvent,
} from '../../collector/decode-message.js'
import { listen, parseListen, type Listener } from '../../collector/listener.js'
import { EventLogLimit, type SuppressedEvents } from '../../collector/event-log-limit.js'
import { OfflineReader } from '../../collector/offline-reader.js'
import { sequenceSummary } from '../../collector/sequence-summary.js'
import { basicListToJson } from '../../collector/structured.js'
import { openStoreWriter, storeRecords } from '../../store/ingest.js'
import { OptionsWriter } from '../../store/options-writer.js'
import { WorkerStore } from '../../store/worker-store.js'
import type { BatchWriter, RetentionPolicy } from '../../store/store.js'
import { collect, intOption } from '../options.js'

interface CollectFlags {
  read?: string[]
  listen?: string[]
  json?: string
  store?: string | true
  batchRows: number
  batchDelay: number
  retentionAge?: number
  retentionRows?: number
  events: boolean
  eventLogLimit: number
  meta: boolean
  templates?: string
  templateLifetime: number
  sessionPerFile: boolean
  summary: boolean
  storeThread: boolean
  storeQueueRows: number
  storeQueueMb: number
  shutdownTimeout: number
  tlsCert?: string
  tlsKey?: string
  tlsClientCa?: string
}

/** The JSON object written for one record: its elements, plus `@`-prefixed metadata with --meta. */
export function recordLine(r: CollectedRecord, meta: boolean): Record<string, unknown> {
  const o = recordToJson(r)
  // RFC 6313 lists as JSON (decoded by the collector with the session's templates); a malformed list stays
  // hex, and so does a repeated one (its occurrences are an array already).
  r.fields.forEach((f, i) => {
    if (Array.isArray(o[f.name])) return
    const s = r.structured?.get(i)
    if (s !== undefined) o[f.name] = s
    else if (f.type === 'basicList' && f.value instanceof Uint8Array) {
      const list = basicListToJson(f.value, () => {})
      if (list !== undefined) o[f.name] = list
    }
  })
  if (!meta) return o
  return {
    '@version': r.version,
    '@exporter': r.exporter,
    '@domain': r.odid,
    '@template': r.templateId,
    '@exportTime': r.exportTime,
    ...o,
  }
}

const hostText = (h: string): string => (h.includes(':') ? `[${h}]` : h)

/** The JSON line of a template event (with --events in the JSON stream, else on stderr). */
function eventLine(e: TemplateEvent): string {
  return JSON.stringify({ '@event': e.event, ...e }) + '\n'
}

/** The JSON line of an options data record (with --events in the JSON stream, else on stderr). */
function optionsLine(r: CollectedRecord): string {
  return JSON.stringify({ '@event': 'options-data', ...recordLine(r, true) }) + '\n'
}

/** The kind a template event is rate-limited by on stderr: the event, with its status when it has one. */
const eventKind = (e: TemplateEvent): string => (e.status !== undefined ? `${e.event}/${e.status}` : e.event)

/** The kind options data records are rate-limited by on stderr (one for all of an exporter's records). */
const OPTIONS_DATA = 'options-data'

/** The stderr line of a window in which template events or options data records were left out of the log. */
function suppressedLine(s: SuppressedEvents): string {
  return (
    JSON.stringify({
      '@event': s.kind === OPTIONS_DATA ? 'options-data-suppressed' : 'template-events-suppressed',
      exporter: s.exporter,
      kind: s.kind,
      suppressed: s.suppressed,
      logged: s.logged,
      seconds: Math.round(s.ms / 1000),
    }) + '\n'
  )
}

export function collectCommand(): Command {
  return new Command('collect')
    .description('collect IPFIX, NetFlow v9 and v5 exports; offline from capture or IPFIX files with --read')
    .option(
      '-r, --read <file>',
      'pcap/pcapng capture or raw export file (repeatable; one stream, in order)',
      collect,
    )
    .option(
      '-l, --listen <url>',
      'listen on udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT ([::] is IPv6 and IPv4; repeatable)',
      collect,
    )
    .option('--tls-cert <file>', 'tls:// listeners: PEM certificate (chain) of the collector')
    .option('--tls-key <file>', 'tls:// listeners: PEM private key of the collector')
    .option('--tls-client-ca <file>', 'tls:// listeners: require client certificates signed by this PEM CA')
    .option(
      '--json <file|->',
      'write one JSON line per data record to a file or stdout (default: - without --store)',
    )
    .option(
      '--store [url]',
      'store flow records: duckdb:PATH (default duckdb:./data/flowtel.duckdb) or clickhouse:http://HOST:PORT/DB',
    )
    .option(
      '--batch-rows <n>',
      'store: flush after this many rows',
      intOption('--batch-rows', 1, 1_000_000),
      10_000,
    )
    .option(
      '--batch-delay <ms>',
      'store: flush rows older than this',
      intOption('--batch-delay', 1, 600_000),
      1000,
    )
    .option(
      '--retention-age <s>',
      'store: delete rows received more than this many seconds ago',
      intOption('--retention-age', 1, 2 ** 31),
    )
    .option(
      '--retention-rows <n>',
      'store: keep at most this many rows (oldest deleted first)',
      intOption('--retention-rows', 1, 2 ** 53),
    )
    .option('--events', 'also write template events and options data records into the JSON stream', false)
    .option(
      '--event-log-limit <n>',
      'template events and options data records written to stderr per exporter and kind per minute; the ' +
        'rest are summed in one line per minute (0: all; the counters count every event)',
      intOption('--event-log-limit', 0, 2 ** 30),
      20,
    )
    .option('--meta', 'add @version, @exporter, @domain, @template and @exportTime to each line', false)
    .option('--templates <file>', 'load templates from this JSON file first, and save them there at the end')
    .option(
      '--template-lifetime <s>',
      'UDP template lifetime in seconds (0: never expire)',
      intOption('--template-lifetime', 0, 86400 * 365),
      1800,
    )
    .option('--session-per-file', 'treat each raw export file as its own exporter session', false)
    .option('--no-summary', 'do not print the counters to stderr at the end')
    .option(
      '--no-store-thread',
      'listening: store in the receiving thread (default: a store thread behind a bounded queue, drops counted)',
    )
    .option(
      '--store-queue-rows <n>',
      'listening: rows waiting for the store thread at most; more are dropped, counted and warned of, the ' +
        'exporters over their fair share first (an eighth more is kept for the others; docs/store.md)',
      intOption('--store-queue-rows', 1, 2 ** 30),
      262_144,
    )
    .option(
      '--store-queue-mb <n>',
      'listening: MiB (estimated) waiting for the store thread at most; more are dropped, counted and warned of',
      intOption('--store-queue-mb', 1, 1 << 20),
      128,
    )
    .option(
      '--shutdown-timeout <s>',
      'listening: on SIGINT/SIGTERM, rows still queued for the store thread after this many seconds are ' +
        'abandoned and counted (a second signal abandons them at once)',
      intOption('--shutdown-timeout', 0, 86400),
      30,
    )
    .action(async (flags: CollectFlags) => {
      const reads = flags.read ?? []
      const listens = (flags.listen ?? []).map(parseListen)
      if (reads.length === 0 && listens.length === 0)
        throw new Error('flowtel collect: give --read FILE or --listen udp://HOST:PORT')
      const tlsWanted = listens.some((a) => a.protocol === 'tls')
      if (tlsWanted && (flags.tlsCert === undefined || flags.tlsKey === undefined))
        throw new Error('flowtel collect: a tls:// listener needs --tls-cert FILE and --tls-key FILE')
      if (!tlsWanted && (flags.tlsCert ?? flags.tlsKey ?? flags.tlsClientCa) !== undefined)
        throw new Error('flowtel collect: --tls-cert/--tls-key/--tls-client-ca need a tls:// listener')
      const tls =
        flags.tlsCert !== undefined && flags.tlsKey !== undefined
          ? {
              certFile: flags.tlsCert,
              keyFile: flags.tlsKey,
              ...(flags.tlsClientCa !== undefined ? { clientCaFile: flags.tlsClientCa } : {}),
            }
          : undefined
      const col = new FlowCollector({ templates: { lifetimeMs: flags.templateLifetime * 1000 } })
      if (flags.templates !== undefined) col.templates.loadFile(flags.templates)
      const jsonPath = flags.json ?? (flags.store === undefined ? '-' : undefined)
      const out: Writable | undefined =
        jsonPath === undefined ? undefined : jsonPath === '-' ? process.stdout : createWriteStream(jsonPath)
      let writer: BatchWriter | undefined
      let options: OptionsWriter | undefined
      let stored = 0
      const retention: RetentionPolicy = {
        ...(flags.retentionAge !== undefined ? { maxAgeMs: flags.retentionAge * 1000 } : {}),
        ...(flags.retentionRows !== undefined ? { maxRows: flags.retentionRows } : {}),
      }
      const retain = async (): Promise<void> => {
        if (writer === undefined || (retention.maxAgeMs === undefined && retention.maxRows === undefined))
          return
        await writer.flush()
        const n = await writer.store.retain(retention)
        if (n > 0) process.stderr.write(`flowtel collect: retention deleted ${n} rows\n`)
      }
      if (flags.store !== undefined) {
        writer = await openStoreWriter(flags.store === true ? 'duckdb:' : flags.store, {
          // Listening, the store runs in its own thread so the socket is read while it commits; reading
          // files, nothing may be dropped and nothing waits on a socket.
          thread: listens.length > 0 && flags.storeThread,
          maxQueuedRows: flags.storeQueueRows,
          maxQueuedBytes: flags.storeQueueMb * 1024 * 1024,
          maxRows: flags.batchRows,
          maxDelayMs: flags.batchDelay,
          onError: (e) =>
            process.stderr.write(`flowtel collect: store write failed (kept, retrying): ${String(e)}\n`),
        })
        options = new OptionsWriter(writer.store, {
          onError: (e) =>
            process.stderr.write(`flowtel collect: options write failed (kept, retrying): ${String(e)}\n`),
        })
        await retain()
        // Nothing but the store reads the records: flow data sets go straight into its columns.
        if (out === undefined) col.columnSink = writer
      }
      let text = ''
      let side = ''
      let records = 0
      // Template events and options data records on stderr are rate-limited by the input's clock: capture
      // time while reading files (the reader's), the wall clock while listening.
      const eventLog = new EventLogLimit({ perWindow: flags.eventLogLimit })
      let clock = (): number => Date.now()
      // The line is built only when it is logged.
      const log = (exporter: string, kind: string, line: () => string): void => {
        const now = clock()
        if (eventLog.admit(exporter, kind, now)) side += line()
        for (const s of eventLog.due(now)) side += suppressedLine(s)
      }
      const logEvent = (e: TemplateEvent): void => log(e.exporter, eventKind(e), () => eventLine(e))
      const logOptions = (r: CollectedRecord): void => log(r.exporter, OPTIONS_DATA, () => optionsLine(r))
      const flush = async (): Promise<void> => {
        if (text !== '' && out === undefined) text = ''
        if (text !== '' && out !== undefined) {
          const t = text
          text = ''
          if (!out.write(t)) await new Promise((r) => out.once('drain', r))
        }
        if (side !== '') {
          process.stderr.write(side)
          side = ''
        }
      }
      const sink = (o: DecodeOutput): void => {
        if (writer !== undefined) stored += storeRecords(writer, o)
        options?.add(o)
        if (out === undefined) {
          records += o.columnar ?? 0
          for (const r of o.records) if (!r.isOptions) records++
          for (const e of o.events) logEvent(e)
          for (const r of o.records) if (r.isOptions) logOptions(r)
          return
        }
        for (const e of o.events) {
          if (flags.events) text += eventLine(e)
          else logEvent(e)
        }
        for (const r of o.records) {
          if (r.isOptions) {
            if (flags.events) text += optionsLine(r)
            else logOptions(r)
            continue
          }
          text += JSON.stringify(recordLine(r, flags.meta)) + '\n'
          records++
        }
      }
      const reader = new OfflineReader(col, sink, { sessionPerFile: flags.sessionPerFile })
      clock = () => reader.time
      // Flush between files so output does not pile up in memory.
      for (const f of reads) {
        await reader.read([f])
        await flush()
      }
      await flush()
      const openListeners: Listener[] = []
      if (listens.length > 0) {
        clock = () => Date.now()
        const listeners = openListeners
        for (const a of listens)
          listeners.push(
            await listen(
              a,
              col,
              (o) => {
                sink(o)
                void flush()
              },
              tls !== undefined ? { tls } : {},
            ),
          )
        for (const l of listeners)
          process.stderr.write(
            `flowtel collect: listening on ${l.address.protocol}://${hostText(l.address.host)}:${l.port}\n`,
          )
        // Expire templates and pending data; save templates now and then, so a crash loses little.
        let ticks = 0
        let droppedSeen = 0
        const timer = setInterval(() => {
          col.expire()
          for (const s of eventLog.due(Date.now())) side += suppressedLine(s)
          void flush()
          // Rows the store thread could not take: said at once (every 10 s at most), not only in the summary.
          const store = writer?.store instanceof WorkerStore ? writer.store : undefined
          const thread = store?.stats
          if (store !== undefined && thread !== undefined && thread.dropped > droppedSeen) {
            const most = store.fairShare.topDropped(1)[0]
            process.stderr.write(
              `flowtel collect: the store is behind: ${thread.dropped - droppedSeen} rows dropped in the last ` +
                `10 s (${thread.dropped} in all, most from exporter ${most?.exporter ?? '?'} domain ` +
                `${most?.domain ?? '?'}: ${most?.dropped ?? 0}; queue of ${flags.storeQueueRows} rows or ` +
                `${flags.storeQueueMb} MiB full; see --store-queue-rows, --store-queue-mb)\n`,
            )
            droppedSeen = thread.dropped
          }
          // Once a minute: retention, and the templates file.
          if (++ticks % 6 !== 0) return
          retain().catch((e) => process.stderr.write(`flowtel collect: retention failed: ${String(e)}\n`))
          if (flags.templates !== undefined) {
            try {
              col.templates.saveFile(flags.templates)
            } catch (e) {
              process.stderr.write(`flowtel collect: cannot save templates: ${String(e)}\n`)
            }
          }
        }, 10_000)
        await new Promise<void>((resolve) => {
          const stop = (): void => resolve()
          process.once('SIGINT', stop)
          process.once('SIGTERM', stop)
        })
        // What is still queued for the store thread gets --shutdown-timeout; a second signal ends the wait.
        if (writer?.store instanceof WorkerStore) {
          const store = writer.store
          store.closeWithin(flags.shutdownTimeout * 1000)
          const now = (): void => store.closeWithin(0)
          process.once('SIGINT', now)
          process.once('SIGTERM', now)
        }
        clearInterval(timer)
        for (const l of listeners) await l.close()
      }
      for (const s of eventLog.drain()) side += suppressedLine(s)
      await flush()
      if (flags.templates !== undefined) col.templates.saveFile(flags.templates)
      // Everything accepted is stored before the process ends (SIGTERM included: the listeners stopped above).
      if (options !== undefined) await options.flush()
      if (writer !== undefined) await writer.close()
      if (out !== undefined && out !== process.stdout) await new Promise<void>((r) => out.end(r))
      // With a store thread, what it stored: rows handed to it can still be dropped (queue full) or given up.
      const thread = writer?.store instanceof WorkerStore ? writer.store.stats : undefined
      if (thread !== undefined && thread.dropped + thread.failed + thread.abandoned > 0)
        process.stderr.write(
          `flowtel collect: ${thread.dropped + thread.failed + thread.abandoned} of ${stored} flow records were ` +
            `not stored (${thread.dropped} dropped with the store thread's queue full, ${thread.failed} given ` +
            `up, ${thread.abandoned} abandoned at the shutdown deadline)\n`,
        )
      if (flags.summary) {
        const sequence = sequenceSummary(col.sessions.values())
        const summary = {
          '@event': 'summary',
          records,
          // stored: rows in the store; accepted: rows handed to it. With a store thread: rows queued (and the
          // peaks of the queue), stored, dropped (queue full), given up and abandoned at the deadline.
          ...(writer !== undefined
            ? {
                stored: thread !== undefined ? thread.stored : stored,
                accepted: stored,
                store: {
                  ...writer.stats,
                  ...(writer.store instanceof WorkerStore
                    ? {
                        thread: {
                          ...writer.store.stats,
                          // The exporters that lost the most rows (fair share and tail drops), then "other".
                          droppedByExporter: writer.store.fairShare.topDropped(),
                        },
                      }
                    : {}),
                },
              }
            : {}),
          ...(options !== undefined
            ? { options: { ...options.stats, repeats: options.recorder.stats.repeats } }
            : {}),
          input: reader.stats,
          // Per listener: connections, refused and idle-closed ones, TLS handshake failures, socket errors.
          ...(openListeners.length > 0
            ? {
                listeners: Object.fromEntries(
                  openListeners.map((l) => [
                    `${l.address.protocol}://${hostText(l.address.host)}:${l.port}`,
                    l.counters,
                  ]),
                ),
              }
            : {}),
          counters: col.allCounters(),
          pending: { sets: col.pending.size, bytes: col.pending.bytes },
          // The trackers with the most loss by name (at most 20); the rest summed in sequenceOmitted.
          sequence: sequence.sequence,
          ...(sequence.omitted !== undefined ? { sequenceOmitted: sequence.omitted } : {}),
        }
        process.stderr.write(JSON.stringify(summary) + '\n')
      }
    })
}
