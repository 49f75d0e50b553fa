// Receiver of the live probe benchmark, run inside the receiving network namespace. Two modes:
//   service <if> <port> <bufferBytes>          the live probe service itself (probe/service.ts): libpcap
//                                               capture → one metering pipeline → IPFIX/UDP to 127.0.0.1:port
//   pool <if> <port> <bufferBytes> <workers>    libpcap capture → WorkerPool (probe/workers) of N metering
//                                               threads → one exporter (record relay) → IPFIX/UDP
// Prints READY, answers "count" with "COUNT <packets metered>", and on "stop" prints one RESULT JSON line:
// packets captured and metered, kernel drops, seconds from the first to the last metered packet, CPU seconds.
import { createInterface } from 'node:readline'
import { openLiveCapture } from '../../src/capture/live-source.js'
import { DEFAULT_SETTINGS } from '../../src/config/settings.js'
import { describeElement } from '../../src/ipfix/enterprise/flowtel.js'
import { IpfixExporter } from '../../src/ipfix/exporter.js'
import { UdpTransport } from '../../src/ipfix/transport-udp.js'
import { ProbeService } from '../../src/probe/service.js'
import { systemServiceDeps } from '../../src/probe/service-deps.js'
import { RecordMerger } from '../../src/probe/workers/record-relay.js'
import { WorkerPool } from '../../src/probe/workers/worker-pool.js'

export interface ProbeReceiverResult {
  mode: string
  workers: number
  captured: number
  metered: number
  kernelDrops: number
  spanS: number
  cpuS: number
  records: number
}

const [mode, ifname, portArg, bufferArg, workersArg] = process.argv.slice(2)
if ((mode !== 'service' && mode !== 'pool') || ifname === undefined || portArg === undefined) {
  console.error('usage: live-probe-receiver.ts service|pool <interface> <port> [bufferBytes] [workers]')
  process.exit(2)
}
const port = Number(portArg)
const bufferBytes = Number(bufferArg ?? 32 * 1024 * 1024)
const workers = Number(workersArg ?? 1)
const stdin = createInterface({ input: process.stdin })
let cpu0 = process.cpuUsage()
let first = 0n
let last = 0n
let lastCount = 0
const seen = (n: number): void => {
  if (n === lastCount) return
  const now = process.hrtime.bigint()
  if (first === 0n) first = now
  last = now
  lastCount = n
}
const result = (r: Omit<ProbeReceiverResult, 'spanS' | 'cpuS' | 'mode' | 'workers'>): void => {
  const c = process.cpuUsage(cpu0)
  const out: ProbeReceiverResult = {
    mode,
    workers,
    ...r,
    spanS: Number(last - first) / 1e9,
    cpuS: (c.user + c.system) / 1e6,
  }
  console.log(`RESULT ${JSON.stringify(out)}`)
  stdin.close()
  process.exit(0)
}

if (mode === 'service') {
  const svc = new ProbeService(systemServiceDeps(), { tickSeconds: 1 })
  await svc.start({
    ...DEFAULT_SETTINGS,
    interfaces: [ifname],
    collectors: [`127.0.0.1:${port}`],
    capture: { ...DEFAULT_SETTINGS.capture, bufferBytes, snaplen: 65535 },
  })
  // The service meters batches as they come; poll its counter to time the first and last metered packet.
  const poll = setInterval(() => seen(svc.status().packets), 5)
  stdin.on('line', (l) => {
    if (l.trim() === 'count') console.log(`COUNT ${svc.status().packets}`)
    if (l.trim() !== 'stop') return
    clearInterval(poll)
    void svc.stop().then(() => {
      const st = svc.status()
      result({
        captured: st.interfaces[0]?.packets ?? 0,
        metered: st.packets,
        kernelDrops: st.interfaces[0]?.kernelDrops ?? 0,
        records: st.recordsExported,
      })
    })
  })
  cpu0 = process.cpuUsage()
  console.log('READY')
} else {
  const source = openLiveCapture([ifname], { bufferBytes, snaplen: 65535 })
  const udp = new UdpTransport('127.0.0.1', port)
  await udp.open()
  const ref: { pool?: WorkerPool } = {}
  const exporter = new IpfixExporter(
    {
      observationDomainId: 1,
      maxMessageSize: 1452,
      templateRefreshSeconds: 600,
      templateRefreshMessages: 0,
      statsIntervalSeconds: 60,
      rfc5610: true,
      describeElement,
      now: () => (ref.pool?.nowUs ?? 0) / 1e6,
    },
    [udp],
  )
  const merger = new RecordMerger(exporter)
  const pool = new WorkerPool({
    workers,
    pipeline: {
      activeTimeout: 300,
      inactiveTimeout: 30,
      tcpEndLinger: 2,
      maxFlows: Math.ceil(1_000_000 / workers),
      fields: DEFAULT_SETTINGS.fields,
    },
    onRecords: (w, bytes) => merger.accept(w, bytes),
  })
  ref.pool = pool
  const metered = (): number => pool.counters().reduce((n, c) => n + (c?.packets ?? 0), 0)
  let dispatched = 0
  stdin.on('line', (l) => {
    if (l.trim() === 'count') console.log(`COUNT ${dispatched}`)
    if (l.trim() === 'stop') void source.close()
  })
  cpu0 = process.cpuUsage()
  console.log('READY')
  let nextTickUs = 0
  for await (const batch of source.batches()) {
    await pool.dispatch(batch)
    dispatched += batch.count
    seen(dispatched)
    if (pool.nowUs >= nextTickUs) {
      exporter.tick()
      nextTickUs = (Math.floor(pool.nowUs / 1e6) + 1) * 1e6
    }
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  await pool.finish()
  const meteredPackets = metered()
  await exporter.close()
  await pool.terminate()
  const [st] = source.interfaceStats()
  result({
    captured: st?.packets ?? 0,
    metered: meteredPackets,
    kernelDrops: st?.kernelDrops ?? 0,
    records: exporter.stats.records,
  })
}
