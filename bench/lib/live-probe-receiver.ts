// Receiver of the live probe benchmark, run inside the receiving network namespace: the live probe service
// itself (probe/service.ts) on one interface, libpcap capture → metering on `workers` threads (1: the main
// thread; N > 1: the worker pool) → IPFIX/UDP to 127.0.0.1:port.
//   live-probe-receiver.ts <if> <port> <bufferBytes> <workers>
// Prints READY, answers "count" with "COUNT <packets metered>", and on "stop" stops the service (its captures
// drained, every flow exported) and prints one RESULT JSON line: packets captured and metered, kernel drops,
// the metered rate's span (seconds and packets from the moment 1000 packets were metered, so the few stray
// packets of a fresh veth before tcpreplay starts sending do not stretch it, to the last metered packet), and
// the CPU seconds of the process (all threads).
import { createInterface } from 'node:readline'
import { DEFAULT_SETTINGS } from '../../src/config/settings.js'
import { ProbeService } from '../../src/probe/service.js'
import { systemServiceDeps } from '../../src/probe/service-deps.js'

export interface ProbeReceiverResult {
  workers: number
  captured: number
  metered: number
  kernelDrops: number
  spanS: number
  /** Packets metered within spanS. */
  spanPackets: number
  cpuS: number
  records: number
}

const [ifname, portArg, bufferArg, workersArg] = process.argv.slice(2)
if (ifname === undefined || portArg === undefined) {
  console.error('usage: live-probe-receiver.ts <interface> <port> [bufferBytes] [workers]')
  process.exit(2)
}
const port = Number(portArg)
const bufferBytes = Number(bufferArg ?? 32 * 1024 * 1024)
const workers = Number(workersArg ?? 1)
const stdin = createInterface({ input: process.stdin })
/** The rate is timed from this many packets on (the replay has surely begun). */
const START_AT = 1000
let first = 0n
let firstCount = 0
let last = 0n
let lastCount = 0
const seen = (n: number): void => {
  if (n === lastCount || n < START_AT) return
  const now = process.hrtime.bigint()
  if (first === 0n) {
    first = now
    firstCount = n
  }
  last = now
  lastCount = n
}

const svc = new ProbeService(systemServiceDeps(), { tickSeconds: 1 })
await svc.start({
  ...DEFAULT_SETTINGS,
  interfaces: [ifname],
  collectors: [`127.0.0.1:${port}`],
  workers,
  capture: { ...DEFAULT_SETTINGS.capture, bufferBytes, snaplen: 65535 },
})
// The service meters batches as they come; poll its counter to time the first and last metered packet.
const poll = setInterval(() => seen(svc.status().packets), 5)
const cpu0 = process.cpuUsage()
stdin.on('line', (l) => {
  if (l.trim() === 'count') console.log(`COUNT ${svc.status().packets}`)
  if (l.trim() !== 'stop') return
  clearInterval(poll)
  void svc.stop().then(() => {
    const st = svc.status()
    const c = process.cpuUsage(cpu0)
    const out: ProbeReceiverResult = {
      workers,
      captured: st.interfaces[0]?.packets ?? 0,
      metered: st.packets,
      kernelDrops: st.interfaces[0]?.kernelDrops ?? 0,
      spanS: Number(last - first) / 1e9,
      spanPackets: lastCount - firstCount,
      cpuS: (c.user + c.system) / 1e6,
      records: st.recordsExported,
    }
    console.log(`RESULT ${JSON.stringify(out)}`)
    stdin.close()
    process.exit(0)
  })
})
console.log('READY')
