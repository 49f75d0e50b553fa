// Cost of the troubleshooting capture and of /metrics (issue 5). Prints only.
//
// node --import tsx bench/debug-capture.bench.ts
// 1. send() through a TransportTap with no capture running vs the bare transport (a no-op transport, so the
//    difference is the tap itself), in ns per message;
// 2. messages/s and MB/s recorded into the pcap while a capture runs (UDP and TCP headers synthesized);
// 3. one /metrics scrape (exposition text of a status with 8 interfaces, 4 collectors, 40 anomaly names).
import { performance } from 'node:perf_hooks'
import { TransportTap, type SocketEndpoints } from '../src/ipfix/transport-tap.js'
import type { Transport } from '../src/ipfix/transport.js'
import { createProbeMetrics } from '../src/metrics/prometheus.js'
import { emptyProbeStatus } from '../src/metrics/status.js'
import { DebugCaptureRecorder } from '../src/probe/debug-capture.js'

const header = new Uint8Array(16)
const body = new Uint8Array(1456)
new DataView(body.buffer).setUint16(0, 256)
const message = [header, body]
let sink = 0
const bare: Transport = {
  name: 'noop',
  stats: { messages: 0, octets: 0, errors: 0, dropped: 0 },
  open: () => Promise.resolve(),
  send: (m) => {
    sink += m.length
  },
  onNewSession: () => {},
  close: () => Promise.resolve(),
}
const udp: SocketEndpoints = {
  protocol: 'udp',
  local: { address: '192.0.2.1', port: 40000 },
  remote: { address: '198.51.100.7', port: 4739 },
}

function nsPerCall(n: number, f: () => void): number {
  for (let i = 0; i < 10_000; i++) f() // warm up
  const t0 = performance.now()
  for (let i = 0; i < n; i++) f()
  return ((performance.now() - t0) * 1e6) / n
}

const N = 2_000_000
const rec = new DebugCaptureRecorder()
const tap = new TransportTap(bare, rec, () => udp)
const bareNs = nsPerCall(N, () => bare.send(message))
const tapNs = nsPerCall(N, () => tap.send(message))
console.log(
  `send, no capture running: bare ${bareNs.toFixed(1)} ns/message, through the tap ${tapNs.toFixed(1)} ns/message`,
)

for (const protocol of ['udp', 'tcp'] as const) {
  const r = new DebugCaptureRecorder()
  const t = new TransportTap(bare, r, () => ({ ...udp, protocol }))
  r.start({ maxBytes: 100 * 1024 * 1024, maxSeconds: 3600 })
  const t0 = performance.now()
  let n = 0
  while (r.active) {
    t.send(message)
    n++
  }
  const s = (performance.now() - t0) / 1000
  const st = r.state()
  console.log(
    `recording ${protocol}: ${n - 1} messages of ${header.byteLength + body.byteLength} octets until ${st.stopReason}: ` +
      `${((n - 1) / s).toFixed(0)} messages/s, ${(st.bytes / s / 1e6).toFixed(0)} MB/s of pcap; pcap() ${timed(() => r.pcap().byteLength)}`,
  )
}

function timed(f: () => unknown): string {
  const t0 = performance.now()
  f()
  return `${(performance.now() - t0).toFixed(1)} ms`
}

const status = emptyProbeStatus()
for (let i = 0; i < 8; i++)
  status.interfaces.push({
    name: `eth${i}`,
    ifIndex: i + 2,
    packets: 1e9,
    bytes: 1e12,
    kernelDrops: 5,
    ifDrops: 0,
  })
for (let i = 0; i < 4; i++)
  status.collectors.push({
    collector: `10.0.0.${i}:4739`,
    transport: 'udp',
    messages: 1e6,
    bytes: 1e9,
    errors: 0,
    dropped: 0,
    templateSends: 100,
  })
for (let i = 0; i < 40; i++) status.anomalies[`anomaly_${i}`] = i
const metrics = createProbeMetrics(() => status)
await metrics.scrape()
const scrapes = 500
const t0 = performance.now()
let size = 0
for (let i = 0; i < scrapes; i++) size = (await metrics.scrape()).length
console.log(`/metrics scrape: ${((performance.now() - t0) / scrapes).toFixed(2)} ms, ${size} characters`)
if (sink < 0) console.log(sink)
