/**
 * Child process of the live capture tests, run inside a test network namespace (`ip netns exec`).
 *
 * argv[2] is a JSON job:
 *  - {"mode":"list","check":[names]}: prints {"interfaces":[...],"checkError":string|null,"checked":[names]}
 *  - {"mode":"capture","interfaces":[...],"options":{...},"udpPort":N,"closeAfter":N}: opens a live
 *    capture, prints READY (or {"openError":message}), counts what it captures (a "P {counts}" progress
 *    line after each batch, "C <packets>" in answer to a "count" line) until a "stop" line on stdin ("drain": drain() instead of close()) (or, with closeAfter, calls close() from outside
 *    the loop once that many packets came), then prints one JSON summary line. With "waitForGo" it takes no
 *    batch before a "go" line.
 */
import { createInterface } from 'node:readline'
import { checkMonitorable, listInterfaces } from '../../src/capture/interfaces.js'
import {
  openLiveCapture,
  type LiveCaptureOptions,
  type LiveCaptureSource,
} from '../../src/capture/live-source.js'

interface Job {
  mode: 'list' | 'capture'
  check?: string[]
  interfaces?: string[]
  options?: LiveCaptureOptions
  udpPort?: number
  closeAfter?: number
  /** Do not take batches before a "go" line on stdin (the kernel buffer fills meanwhile). */
  waitForGo?: boolean
}

export interface CaptureSummary {
  packets: number
  batches: number
  maxBatch: number
  byIfIndex: Record<string, number>
  linkTypes: number[]
  icmpEchoRequest: number
  icmpEchoReply: number
  udpToPort: number
  arp: number
  vlanTagged: number
  minTsUs: number
  maxTsUs: number
  truncated: number
  statsPackets: number
  statsBytes: number
  interfaceStats: ReturnType<ReturnType<typeof openLiveCapture>['interfaceStats']>
  endedByClose: boolean
  /** The error the iteration threw (an interface that went away), or null. */
  error: string | null
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job

if (job.mode === 'list') {
  let checkError: string | null = null
  let checked: string[] = []
  try {
    checked = checkMonitorable(job.check ?? []).map((i) => i.name)
  } catch (e) {
    checkError = (e as Error).message
  }
  console.log(JSON.stringify({ interfaces: listInterfaces(), checkError, checked }))
} else {
  await capture()
}

async function capture(): Promise<void> {
  let source
  try {
    source = openLiveCapture(job.interfaces ?? [], job.options ?? {})
  } catch (e) {
    console.log(JSON.stringify({ openError: (e as Error).message }))
    return
  }
  const s: CaptureSummary = {
    packets: 0,
    batches: 0,
    maxBatch: 0,
    byIfIndex: {},
    linkTypes: [],
    icmpEchoRequest: 0,
    icmpEchoReply: 0,
    udpToPort: 0,
    arp: 0,
    vlanTagged: 0,
    minTsUs: Number.POSITIVE_INFINITY,
    maxTsUs: 0,
    truncated: 0,
    statsPackets: 0,
    statsBytes: 0,
    interfaceStats: [],
    endedByClose: false,
    error: null,
  }
  const rl = createInterface({ input: process.stdin })
  const src = source
  const counted = s
  let go: () => void = () => {}
  const goLine = new Promise<void>((resolve) => (go = resolve))
  rl.on('line', (line) => {
    if (line.trim() === 'stop') void src.close()
    if (line.trim() === 'drain') void src.drain()
    if (line.trim() === 'go') go()
    if (line.trim() === 'count') console.log(`C ${counted.packets}`)
  })
  console.log('READY')
  if (job.waitForGo === true) await goLine
  let closeRequested = false
  try {
    await loop(source, s, () => {
      if (job.closeAfter !== undefined && s.packets >= job.closeAfter && !closeRequested) {
        closeRequested = true
        setTimeout(() => void src.close(), 0)
      }
    })
  } catch (e) {
    s.error = (e as Error).message
  }
  s.endedByClose = source.isClosed
  s.statsPackets = source.stats.packets
  s.statsBytes = source.stats.bytes
  s.interfaceStats = source.interfaceStats()
  rl.close()
  console.log(JSON.stringify(s))
}

async function loop(source: LiveCaptureSource, s: CaptureSummary, afterBatch: () => void): Promise<void> {
  for await (const b of source.batches()) {
    s.batches++
    s.maxBatch = Math.max(s.maxBatch, b.count)
    for (let i = 0; i < b.count; i++) {
      s.packets++
      const ifIndex = String(b.ifIndex[i])
      s.byIfIndex[ifIndex] = (s.byIfIndex[ifIndex] ?? 0) + 1
      if (!s.linkTypes.includes(b.linkType[i]!)) s.linkTypes.push(b.linkType[i]!)
      const ts = b.tsUs[i]!
      s.minTsUs = Math.min(s.minTsUs, ts)
      s.maxTsUs = Math.max(s.maxTsUs, ts)
      if (b.caplen[i]! < b.origlen[i]!) s.truncated++
      classify(b.buf.subarray(b.offset[i], b.offset[i]! + b.caplen[i]!), s)
    }
    const { packets, icmpEchoRequest, icmpEchoReply, udpToPort, arp } = s
    console.log(`P ${JSON.stringify({ packets, icmpEchoRequest, icmpEchoReply, udpToPort, arp })}`)
    afterBatch()
  }
}

function classify(p: Uint8Array, s: CaptureSummary): void {
  if (p.length < 14) return
  let type = (p[12]! << 8) | p[13]!
  let off = 14
  if (type === 0x8100 && p.length >= 18) {
    s.vlanTagged++
    type = (p[16]! << 8) | p[17]!
    off = 18
  }
  if (type === 0x0806) s.arp++
  if (type !== 0x0800 || p.length < off + 20) return
  const ihl = (p[off]! & 0x0f) * 4
  const proto = p[off + 9]!
  const l4 = off + ihl
  if (proto === 1 && p.length > l4) {
    if (p[l4] === 8) s.icmpEchoRequest++
    if (p[l4] === 0) s.icmpEchoReply++
  }
  if (proto === 17 && p.length >= l4 + 4 && ((p[l4 + 2]! << 8) | p[l4 + 3]!) === job.udpPort) s.udpToPort++
}
