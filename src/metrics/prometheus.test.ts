// /metrics (issue 5): values read from ProbeStatus at scrape time, counters typed and monotonic, a private
// registry, and exposition text that a strict 0.0.4 parser accepts for any status (fast-check).
import fc from 'fast-check'
import { register as globalRegister } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { parseExposition, sampleValue } from './exposition-parser.test-util.js'
import { createProbeMetrics, METRIC_NAMES } from './prometheus.js'
import { collectorStatusOf, emptyProbeStatus, volumeRatio, type ProbeStatus } from './status.js'

function status(scale: number): ProbeStatus {
  const monitored = 250_000 * scale
  const telemetry = 1000 * scale
  return {
    uptimeSeconds: 12.5 * scale,
    settingsGeneration: 3,
    interfaces: [
      {
        name: 'eth0',
        ifIndex: 2,
        packets: 100 * scale,
        bytes: 150_000 * scale,
        kernelDrops: scale,
        ifDrops: 0,
      },
      {
        name: 'eth1.100',
        ifIndex: 5,
        packets: 7 * scale,
        bytes: 100_000 * scale,
        kernelDrops: 0,
        ifDrops: 2,
      },
    ],
    flows: {
      active: 40 + scale,
      created: 90 * scale,
      exportedByEndReason: { 'idle-timeout': 30 * scale, 'end-of-flow': 4 },
    },
    anomalies: { ip_bad_checksum: 2 * scale, tcp_short_header: 1 },
    ipReassembly: { reassembled: 5 * scale, timedOut: scale, evicted: 0, dropped: 2 },
    l7Anomalies: { 'tls.tls_record_list_cut': 3 * scale, 'http.http_bad_status_line': 1 },
    collectors: [
      {
        collector: '10.0.0.9:4739',
        transport: 'udp',
        messages: 11 * scale,
        bytes: 600 * scale,
        errors: 0,
        dropped: 0,
        templateSends: 2,
      },
      {
        collector: '[2001:db8::1]:4739',
        transport: 'tcp',
        messages: 9 * scale,
        bytes: 400 * scale,
        errors: scale,
        dropped: 1,
        templateSends: 1,
      },
    ],
    recordsExported: 120 * scale,
    volume: {
      monitoredBytes: monitored,
      telemetryBytes: telemetry,
      ratio: volumeRatio(monitored, telemetry),
    },
  }
}

describe('Prometheus metrics', () => {
  it('exposes every figure of the status under its name and labels, typed', async () => {
    const m = createProbeMetrics(() => status(1))
    const text = await m.scrape()
    const e = parseExposition(text)
    for (const name of METRIC_NAMES) expect(e.types.has(name), name).toBe(true)
    for (const name of METRIC_NAMES)
      expect(e.types.get(name)).toBe(name.endsWith('_total') ? 'counter' : 'gauge')
    expect(sampleValue(e, 'flowtel_packets_total', { interface: 'eth0' })).toBe(100)
    expect(sampleValue(e, 'flowtel_bytes_total', { interface: 'eth1.100' })).toBe(100_000)
    expect(sampleValue(e, 'flowtel_kernel_drops_total', { interface: 'eth0' })).toBe(1)
    expect(sampleValue(e, 'flowtel_interface_drops_total', { interface: 'eth1.100' })).toBe(2)
    expect(sampleValue(e, 'flowtel_flows_active')).toBe(41)
    expect(sampleValue(e, 'flowtel_flows_created_total')).toBe(90)
    expect(sampleValue(e, 'flowtel_flows_exported_total', { end_reason: 'idle-timeout' })).toBe(30)
    expect(sampleValue(e, 'flowtel_anomalies_total', { name: 'ip_bad_checksum' })).toBe(2)
    const reassembly = (outcome: string): number | undefined =>
      sampleValue(e, 'flowtel_ip_reassembly_datagrams_total', { outcome })
    expect(['reassembled', 'timed_out', 'evicted', 'dropped'].map(reassembly)).toEqual([5, 1, 0, 2])
    expect(sampleValue(e, 'flowtel_l7_anomalies_total', { group: 'tls', name: 'tls_record_list_cut' })).toBe(
      3,
    )
    expect(
      sampleValue(e, 'flowtel_l7_anomalies_total', { group: 'http', name: 'http_bad_status_line' }),
    ).toBe(1)
    expect(sampleValue(e, 'flowtel_export_messages_total', { collector: '10.0.0.9:4739' })).toBe(11)
    expect(sampleValue(e, 'flowtel_export_bytes_total', { collector: '[2001:db8::1]:4739' })).toBe(400)
    expect(sampleValue(e, 'flowtel_export_errors_total', { collector: '[2001:db8::1]:4739' })).toBe(1)
    expect(sampleValue(e, 'flowtel_template_sends_total', { collector: '10.0.0.9:4739' })).toBe(2)
    expect(sampleValue(e, 'flowtel_records_exported_total')).toBe(120)
    expect(sampleValue(e, 'flowtel_monitored_bytes_total')).toBe(250_000)
    expect(sampleValue(e, 'flowtel_telemetry_bytes_total')).toBe(1000)
    expect(sampleValue(e, 'flowtel_monitored_to_telemetry_ratio')).toBe(250)
    expect(sampleValue(e, 'flowtel_settings_generation')).toBe(3)
    // Default process metrics ride along.
    expect(e.types.get('process_cpu_user_seconds_total')).toBe('counter')
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/)
  })

  it('counters show the current totals at each scrape (not a sum of scrapes) and only grow', async () => {
    let scale = 1
    const m = createProbeMetrics(() => status(scale), { processMetrics: false })
    const first = parseExposition(await m.scrape())
    scale = 3
    const second = parseExposition(await m.scrape())
    await m.scrape()
    const third = parseExposition(await m.scrape())
    expect(sampleValue(second, 'flowtel_packets_total', { interface: 'eth0' })).toBe(300)
    expect(sampleValue(third, 'flowtel_packets_total', { interface: 'eth0' })).toBe(300)
    for (const s of first.samples) {
      if (first.types.get(s.name) !== 'counter') continue
      const later = sampleValue(second, s.name, s.labels)
      expect(later, `${s.name} ${JSON.stringify(s.labels)}`).toBeGreaterThanOrEqual(s.value)
    }
  })

  it('reads the status once per scrape', async () => {
    let calls = 0
    const m = createProbeMetrics(
      () => {
        calls++
        return status(1)
      },
      { processMetrics: false },
    )
    await m.scrape()
    expect(calls).toBe(1)
    await m.scrape()
    expect(calls).toBe(2)
  })

  it('uses a private registry, not the prom-client global one', async () => {
    const m = createProbeMetrics(() => status(1), { processMetrics: false })
    await m.scrape()
    expect(globalRegister.getSingleMetric('flowtel_packets_total')).toBeUndefined()
    // Two probes in one process do not clash.
    const other = createProbeMetrics(() => status(2), { processMetrics: false })
    expect(sampleValue(parseExposition(await other.scrape()), 'flowtel_flows_created_total')).toBe(180)
  })

  it('an empty status gives zero counters, no labelled series and a 0 ratio', async () => {
    const e = parseExposition(await createProbeMetrics(emptyProbeStatus, { processMetrics: false }).scrape())
    expect(sampleValue(e, 'flowtel_flows_created_total')).toBe(0)
    expect(sampleValue(e, 'flowtel_monitored_to_telemetry_ratio')).toBe(0)
    expect(e.samples.filter((s) => s.name === 'flowtel_packets_total')).toEqual([])
  })

  it('any status (odd names, odd numbers) gives exposition text that parses', async () => {
    const name = fc.string({
      unit: fc.constantFrom('a', '"', '\\', '\n', 'é', '{', '}', ',', '=', ' '),
    })
    const num = fc.oneof(fc.nat(), fc.double(), fc.constantFrom(NaN, Infinity, -1))
    const record = fc.dictionary(name, num, { maxKeys: 4 })
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ name, n: num }), { maxLength: 3 }),
        record,
        record,
        num,
        async (ifs, reasons, anomalies, n) => {
          const s = emptyProbeStatus()
          // Series names must be unique per label, as they are in a real status.
          const uniq = [...new Map(ifs.map((i) => [i.name, i])).values()]
          s.interfaces = uniq.map((i) => ({
            name: i.name,
            ifIndex: 0,
            packets: i.n,
            bytes: n,
            kernelDrops: 0,
            ifDrops: i.n,
          }))
          s.flows.exportedByEndReason = reasons
          s.anomalies = anomalies
          s.l7Anomalies = anomalies
          s.flows.active = n
          s.volume = { monitoredBytes: n, telemetryBytes: n, ratio: volumeRatio(n, n) }
          const text = await createProbeMetrics(() => s, { processMetrics: false }).scrape()
          const e = parseExposition(text)
          for (const i of uniq) {
            const v = sampleValue(e, 'flowtel_packets_total', { interface: i.name })
            expect(v).toBe(Number.isFinite(i.n) && i.n > 0 ? i.n : 0)
          }
        },
      ),
      { numRuns: 150 },
    )
  })
})

describe('the exposition parser itself', () => {
  it('rejects what Prometheus rejects', () => {
    expect(() => parseExposition('x 1')).toThrow(/newline/)
    expect(() => parseExposition('# TYPE x counter\nx{a="1} 1\n')).toThrow(/bad labels/)
    expect(() => parseExposition('# TYPE x counter\nx 1\nx 2\n')).toThrow(/duplicate/)
    expect(() => parseExposition('# TYPE x counter\nx abc\n')).toThrow(/bad value/)
    expect(() => parseExposition('# TYPE x counter\n# TYPE x gauge\n')).toThrow(/second TYPE/)
    expect(() => parseExposition('1x 1\n')).toThrow(/not a sample/)
    expect(parseExposition('# TYPE x gauge\nx{a="q\\"\\n"} NaN\n').samples[0]?.labels).toEqual({ a: 'q"\n' })
  })
})

describe('collectorStatusOf', () => {
  it('maps a transport tap to the collector figures', () => {
    const t = { stats: { messages: 4, octets: 900, errors: 1, dropped: 2 }, templateSends: 3 }
    expect(collectorStatusOf('10.0.0.9:4739', 'udp', t)).toEqual({
      collector: '10.0.0.9:4739',
      transport: 'udp',
      messages: 4,
      bytes: 900,
      errors: 1,
      dropped: 2,
      templateSends: 3,
    })
  })
})
