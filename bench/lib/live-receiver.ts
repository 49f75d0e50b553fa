// Receiver of the live capture benchmark, run inside the receiving network namespace: captures one interface
// with flowtel's addon (LiveCaptureSource) or with the npm `cap` package, touches every packet (sums one byte,
// so both do the same minimal work per packet), prints READY, answers a "count" line with "COUNT <packets>",
// and on a "stop" line prints one JSON line: packets, bytes, the time from the first to the last packet, and
// the kernel's counters when the binding exposes them.
//
// node --import tsx bench/lib/live-receiver.ts flowtel|cap <interface> <bufferBytes>
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { openLiveCapture } from '../../src/capture/live-source.js'

export interface ReceiverResult {
  tool: string
  packets: number
  bytes: number
  /** Seconds from the first to the last packet seen. */
  spanS: number
  /** Kernel counters (ps_recv, ps_drop, ps_ifdrop), null when the binding does not expose them. */
  received: number | null
  kernelDrops: number | null
  ifDrops: number | null
  /** CPU seconds (user + system, all threads) the receiver used between READY and stop. */
  cpuS: number
  /** Batches (flowtel) or callbacks (cap) that delivered the packets. */
  deliveries: number
  checksum: number
}

const [tool, ifname, bufferArg] = process.argv.slice(2)
if ((tool !== 'flowtel' && tool !== 'cap') || ifname === undefined) {
  console.error('usage: live-receiver.ts flowtel|cap <interface> [bufferBytes]')
  process.exit(2)
}
const bufferBytes = Number(bufferArg ?? 32 * 1024 * 1024)
const snaplen = 65535

let packets = 0
let bytes = 0
let deliveries = 0
let checksum = 0
let first = 0n
let last = 0n
const stdin = createInterface({ input: process.stdin })
let cpuAtReady = process.cpuUsage()
function ready(): void {
  cpuAtReady = process.cpuUsage()
  console.log('READY')
}

if (tool === 'flowtel') {
  const source = openLiveCapture([ifname], { bufferBytes, snaplen, promiscuous: true })
  stdin.on('line', (l) => {
    if (l.trim() === 'count') console.log(`COUNT ${packets}`)
    if (l.trim() === 'stop') void source.close()
  })
  ready()
  for await (const b of source.batches()) {
    const now = process.hrtime.bigint()
    if (first === 0n) first = now
    last = now
    deliveries++
    const buf = b.buf
    const offset = b.offset
    for (let i = 0; i < b.count; i++) {
      checksum = (checksum + buf[offset[i]! + 12]!) | 0
      bytes += b.caplen[i]!
    }
    packets += b.count
  }
  const [st] = source.interfaceStats()
  report(st?.received ?? null, st?.kernelDrops ?? null, st?.ifDrops ?? null)
} else {
  const require = createRequire(import.meta.url)
  interface CapInstance {
    open(device: string, filter: string, bufSize: number, buffer: Buffer): string
    setMinBytes?(n: number): void
    on(event: 'packet', fn: (nbytes: number, truncated: boolean) => void): void
    close(): void
  }
  const { Cap } = require('cap') as { Cap: new () => CapInstance }
  const c = new Cap()
  const buffer = Buffer.alloc(snaplen)
  c.open(ifname, '', bufferBytes, buffer)
  c.setMinBytes?.(0)
  c.on('packet', (nbytes) => {
    const now = process.hrtime.bigint()
    if (first === 0n) first = now
    last = now
    deliveries++
    checksum = (checksum + buffer[12]!) | 0
    bytes += nbytes
    packets++
  })
  stdin.on('line', (l) => {
    if (l.trim() === 'count') console.log(`COUNT ${packets}`)
    if (l.trim() !== 'stop') return
    c.close()
    report(null, null, null)
  })
  ready()
}

function report(received: number | null, kernelDrops: number | null, ifDrops: number | null): void {
  const result: ReceiverResult = {
    tool: tool!,
    packets,
    bytes,
    spanS: Number(last - first) / 1e9,
    received,
    kernelDrops,
    ifDrops,
    cpuS: (() => {
      const c = process.cpuUsage(cpuAtReady)
      return (c.user + c.system) / 1e6
    })(),
    deliveries,
    checksum,
  }
  stdin.close()
  console.log(`RESULT ${JSON.stringify(result)}`)
  process.exit(0)
}
