/**
 * NetFlow v9 (RFC 3954) or v5 export for older collectors, as a converting Transport: it takes the IPFIX
 * messages the exporter builds (RFC 7011), decodes them in process (IpfixDecoder), splits each biflow record
 * into unidirectional flows (netflow-flows.ts) and sends them as NetFlow packets through an inner datagram
 * Transport (UDP: v9 and v5 have no length field, so they are not framed for TCP/TLS).
 *
 * Times: the NetFlow header's UNIX secs is the IPFIX Export Time; sysUpTime counts milliseconds since the
 * exporter started (startTimeMs: packet time of the first packet offline, the open time live), floored to
 * a whole second so that UNIX secs·1000 − sysUpTime, the boot time collectors derive, is exact, and
 * FIRST_SWITCHED/LAST_SWITCHED give the flows' millisecond times back. Uptimes wrap modulo 2^32.
 *
 * Only what the format can carry survives (netflow-flows.ts lists it): the report() counts records that are
 * not flows, dropped element names, IPv6 flows under v5 and clamped values, for the probe's summary.
 */
import { IpfixDecoder } from './decoder.js'
import { STATS_TEMPLATE_IDS } from './exporter.js'
import { splitRecord, type UniFlow } from './netflow-flows.js'
import { V5Writer } from './netflow-v5-writer.js'
import { V9Writer, type NetflowClock } from './netflow-v9-writer.js'
import type { Transport, TransportStats } from './transport.js'

export type NetflowVersion = 9 | 5

export interface NetflowTransportOptions {
  version: NetflowVersion
  /** Largest datagram payload: MTU − 28 (IPv4) or − 48 (IPv6). */
  maxPacketSize: number
  /** v9 template refresh in seconds of export time (default 600) and in packets (default 0 = off). */
  templateRefreshSeconds?: number
  templateRefreshPackets?: number
  /**
   * Unix ms the exporter started on its own clock (the first packet's time offline); read at the first
   * conversion. Default: the wall clock when open() ran. Undefined → the first export time (or an earlier
   * flow start seen in the first message).
   */
  startTimeMs?: () => number | undefined
}

export interface NetflowReport {
  version: NetflowVersion
  /** IPFIX data records received from the exporter (options records included). */
  ipfixRecords: number
  /** NetFlow flow records sent, and how many of them are reverse halves of biflows. */
  flows: number
  reverseFlows: number
  /** NetFlow datagrams handed to the inner transport (v9: template packets included). */
  packets: number
  templateSends: number
  /** Records or flows the format cannot express, by reason (options_record, no_ip_addresses, ipv6_flows …). */
  notExportable: Record<string, number>
  /** IPFIX elements NetFlow cannot carry: records they were dropped from, by element name. */
  droppedFields: Record<string, number>
  /** Values clamped to their NetFlow field, time before start, decode errors … by name. */
  anomalies: Record<string, number>
}

const TWO32 = 0x1_0000_0000

export class NetflowTransport implements Transport {
  readonly name: string
  private readonly decoder = new IpfixDecoder({ transport: 'file' })
  private readonly v9: V9Writer | undefined
  private readonly v5: V5Writer | undefined
  private readonly notExportable: Record<string, number> = {}
  private readonly droppedFields: Record<string, number> = {}
  private readonly anomalies: Record<string, number> = {}
  private ipfixRecords = 0
  private reverseFlows = 0
  private bootMs: number | undefined
  private openedAt: number | undefined
  private readonly emit: (p: Buffer) => void

  constructor(
    readonly inner: Transport,
    private readonly opts: NetflowTransportOptions,
  ) {
    this.name = `netflow-v${opts.version}+${inner.name}`
    if (opts.version === 9)
      this.v9 = new V9Writer({
        maxPacketSize: opts.maxPacketSize,
        refreshSeconds: opts.templateRefreshSeconds ?? 600,
        refreshPackets: opts.templateRefreshPackets ?? 0,
      })
    else this.v5 = new V5Writer(opts.maxPacketSize)
    this.emit = (p) => inner.send([p])
  }

  /** NetFlow datagrams sent, their octets, and the inner transport's errors and drops. */
  get stats(): TransportStats {
    return this.inner.stats
  }

  async open(): Promise<void> {
    this.openedAt = Date.now()
    await this.inner.open()
  }

  send(message: Uint8Array[]): void {
    try {
      this.convert(message.length === 1 && message[0] !== undefined ? message[0] : Buffer.concat(message))
    } catch {
      this.anomaly('conversion_errors')
    }
  }

  private anomaly(name: string): void {
    this.anomalies[name] = (this.anomalies[name] ?? 0) + 1
  }

  private convert(bytes: Uint8Array): void {
    const m = this.decoder.decode(bytes)
    if (m.error !== undefined) this.anomaly(`ipfix_${m.error}`)
    if (m.records.length === 0) return
    const flows: UniFlow[] = []
    let stats = false
    const dropped = (name: string): void => {
      this.droppedFields[name] = (this.droppedFields[name] ?? 0) + 1
    }
    for (const r of m.records) {
      this.ipfixRecords++
      if (r.isOptions && r.templateId === STATS_TEMPLATE_IDS.meteringStatistics && this.v9 !== undefined) {
        stats = true // re-stated for the NetFlow stream by the writer
        continue
      }
      const s = splitRecord(r, dropped)
      if (s.skipped !== undefined) {
        this.notExportable[s.skipped] = (this.notExportable[s.skipped] ?? 0) + 1
        continue
      }
      for (const f of s.flows) {
        if (f.reverse) this.reverseFlows++
        flows.push(f)
      }
    }
    if (flows.length === 0 && !stats) return
    const clock = this.clock(m.exportTime, flows)
    if (this.v9 !== undefined) {
      if (flows.length > 0) this.v9.write(flows, clock, m.odid, this.emit)
      if (stats) this.v9.writeStats(clock, m.odid, this.emit)
    } else this.v5?.write(flows, clock, m.odid, this.emit)
  }

  private clock(exportTime: number, flows: readonly UniFlow[]): NetflowClock {
    const exportMs = exportTime * 1000
    if (this.bootMs === undefined) {
      const given = this.opts.startTimeMs !== undefined ? this.opts.startTimeMs() : this.openedAt
      let boot = given !== undefined && given > 0 ? Math.min(given, exportMs) : exportMs
      for (const f of flows) if (f.startMs !== undefined && f.startMs < boot) boot = f.startMs
      this.bootMs = Math.floor(boot / 1000) * 1000
    }
    // A flow that started before the uptime base (packet time jumps backwards when capture files of
    // different dates are read in one run): the base moves back to it, which only makes sysUpTime larger, as
    // long as collectors can still resolve the flow against the header (within 2^31 ms, 24.8 days, before the
    // export). Beyond that its times are sent as the base and the flow is counted.
    for (const f of flows) {
      const t = Math.min(f.startMs ?? Infinity, f.endMs ?? Infinity)
      if (t >= this.bootMs) continue
      const rebased = Math.floor(t / 1000) * 1000
      if (exportMs - rebased < 2 ** 31) this.bootMs = rebased
      else this.anomaly('flows_before_start')
    }
    const base = this.bootMs
    const uptimeOf = (ms: number): number => Math.max(0, Math.floor(ms) - base) % TWO32
    return { unixSecs: exportTime, sysUptime: uptimeOf(exportMs), uptimeOf }
  }

  onNewSession(_cb: () => void): void {
    // The IPFIX messages are decoded in process: templates reach the decoder once and stay (no session).
  }

  async close(): Promise<void> {
    await this.inner.close()
  }

  report(): NetflowReport {
    const w = this.v9 ?? this.v5
    const writerCounters = w?.counters ?? {}
    const notExportable = { ...this.notExportable }
    const anomalies = { ...this.anomalies }
    for (const [k, v] of Object.entries(writerCounters)) {
      if (k === 'ipv6_flows' || k === 'template_limit') notExportable[k] = v
      else anomalies[k] = v
    }
    return {
      version: this.opts.version,
      ipfixRecords: this.ipfixRecords,
      flows: w?.flows ?? 0,
      reverseFlows: this.reverseFlows,
      packets: w?.packets ?? 0,
      templateSends: this.v9?.templateSends ?? 0,
      notExportable,
      droppedFields: { ...this.droppedFields },
      anomalies,
    }
  }
}
