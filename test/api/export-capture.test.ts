// The troubleshooting path end to end over HTTP (issue 5): a real IpfixExporter sends over UDP on loopback
// through a TransportTap; the capture is started, stopped and downloaded through the REST API with a bearer
// token; status and /metrics show the same per-collector figures; tshark decodes the downloaded pcap.
import { spawnSync } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startApiServer } from '../../src/api/server.js'
import { DEFAULT_SETTINGS } from '../../src/config/settings.js'
import { IpfixExporter } from '../../src/ipfix/exporter.js'
import { Template } from '../../src/ipfix/template.js'
import { TransportTap } from '../../src/ipfix/transport-tap.js'
import { UdpTransport } from '../../src/ipfix/transport-udp.js'
import { parseExposition, sampleValue } from '../../src/metrics/exposition-parser.test-util.js'
import { collectorStatusOf, emptyProbeStatus, type ProbeStatus } from '../../src/metrics/status.js'
import type { DebugCaptureState, TelemetryControl } from '../../src/probe/control.js'
import { DebugCaptureRecorder } from '../../src/probe/debug-capture.js'

const TOKEN = 'e2e-token-abcdefghijklmnop'
const tmp = mkdtempSync(join(tmpdir(), 'flowtel-api-e2e-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
const hasTshark = spawnSync('tshark', ['--version']).status === 0

describe('export capture through the REST API', () => {
  it('start, export, status, /metrics, stop, download: the pcap holds what the collector received', async () => {
    const rx = dgram.createSocket('udp4')
    const received: Buffer[] = []
    rx.on('message', (m) => received.push(m))
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r))
    const port = rx.address().port
    const collector = `127.0.0.1:${port}`
    const recorder = new DebugCaptureRecorder()
    const tap = new TransportTap(new UdpTransport('127.0.0.1', port), recorder)
    await tap.open()
    const unused = (): never => {
      throw new Error('not used here')
    }
    const control: TelemetryControl = {
      getSettings: () => DEFAULT_SETTINGS,
      applySettings: unused,
      validate: unused,
      status: (): ProbeStatus => ({
        ...emptyProbeStatus(),
        collectors: [collectorStatusOf(collector, 'udp', tap)],
      }),
      startDebugCapture: (o) => recorder.start(o),
      stopDebugCapture: () => recorder.stop(),
      debugCaptureState: () => recorder.state(),
      debugCapturePcap: () => recorder.pcap(),
    }
    const api = await startApiServer({ control, listen: '127.0.0.1:0', token: TOKEN })
    const auth = { authorization: `Bearer ${TOKEN}` }
    const post = (body: unknown): RequestInit => ({
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    try {
      const started = await fetch(
        `${api.url}/api/v1/telemetry/debug-capture`,
        post({ action: 'start', maxSeconds: 120 }),
      )
      expect(((await started.json()) as DebugCaptureState).running).toBe(true)

      const tpl = Template.fromNames(300, [
        ['sourceIPv4Address'],
        ['destinationIPv4Address'],
        ['octetDeltaCount'],
      ])
      const e = new IpfixExporter(
        {
          observationDomainId: 4242,
          maxMessageSize: 1472,
          templateRefreshSeconds: 600,
          templateRefreshMessages: 0,
          statsIntervalSeconds: 0,
          now: () => Date.now() / 1000,
        },
        [tap],
      )
      e.addTemplate(tpl)
      for (let i = 0; i < 500; i++) {
        const w = e.beginRecord(tpl, 16)
        w.ipv4(0x0a000001 + i)
        w.ipv4(0xc0a80001)
        w.u64(100 + i)
        e.endRecord()
      }
      e.flush()
      const until = Date.now() + 5000
      while (received.length < tap.stats.messages && Date.now() < until)
        await new Promise((r) => setTimeout(r, 10))
      expect(received.length).toBe(tap.stats.messages)

      const status = (await (
        await fetch(`${api.url}/api/v1/telemetry/status`, { headers: auth })
      ).json()) as ProbeStatus
      expect(status.collectors).toEqual([
        {
          collector,
          transport: 'udp',
          messages: received.length,
          bytes: received.reduce((n, m) => n + m.byteLength, 0),
          errors: 0,
          dropped: 0,
          templateSends: 1,
        },
      ])
      const metrics = parseExposition(await (await fetch(`${api.url}/metrics`, { headers: auth })).text())
      expect(sampleValue(metrics, 'flowtel_export_messages_total', { collector })).toBe(received.length)
      expect(sampleValue(metrics, 'flowtel_template_sends_total', { collector })).toBe(1)

      const stopped = await fetch(`${api.url}/api/v1/telemetry/debug-capture`, post({ action: 'stop' }))
      expect(await stopped.json()).toMatchObject({
        running: false,
        packets: received.length,
        stopReason: 'stopped',
      })
      const pcap = await fetch(`${api.url}/api/v1/telemetry/debug-capture.pcap`, { headers: auth })
      expect(pcap.headers.get('content-type')).toBe('application/vnd.tcpdump.pcap')
      const file = join(tmp, 'export.pcap')
      writeFileSync(file, new Uint8Array(await pcap.arrayBuffer()))
      await e.close()

      if (!hasTshark) return
      const r = spawnSync(
        'tshark',
        [
          '-n',
          '-r',
          file,
          '-d',
          `udp.port==${port},cflow`,
          '-T',
          'fields',
          '-e',
          'cflow.od_id',
          '-e',
          'cflow.octets',
        ],
        { encoding: 'utf8' },
      )
      expect(r.status, r.stderr).toBe(0)
      const rows = r.stdout.trim().split('\n')
      expect(rows.length).toBe(received.length)
      expect(new Set(rows.map((x) => x.split('\t')[0]))).toEqual(new Set(['4242']))
      const octets = rows.flatMap((x) => (x.split('\t')[1] ?? '').split(',')).filter((s) => s !== '')
      expect(octets.length).toBe(500)
    } finally {
      await api.close()
      await tap.close()
      rx.close()
    }
  })
})
