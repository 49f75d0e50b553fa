/**
 * Live capture on one or several Linux interfaces at once, as a CaptureSource (see batch.ts).
 *
 * One libpcap handle per interface (native/pcap), each with a capture thread filling a few preallocated
 * batches (`slots`). A PacketBatch is bound to each slot once: the thread writes packet bytes, offsets,
 * lengths and µs timestamps straight into that batch's arrays, so a batch reaches JavaScript without a
 * copy and without a callback per packet. Each batch holds packets of one interface: `ifIndex` is the OS
 * interface index (IPFIX ingressInterface) and `linkType` that handle's link type. A slot is given back
 * to its thread when the consumer asks for the next batch; while the consumer is slow the threads wait,
 * the kernel ring absorbs the burst and anything beyond is counted as kernel drops (interfaceStats()).
 * close() stops the threads and ends the iteration at once; drain() first lets the iteration take every
 * packet the kernel holds (the probe's shutdown: a packet captured before the stop is metered).
 */
import { newCaptureStats, PacketBatch, type CaptureSource, type CaptureStats } from './batch.js'
import { checkMonitorable, interfaceIndex } from './interfaces.js'
import { LINKTYPE_ATM_RFC1483, LINKTYPE_RAW } from './link-types.js'
import {
  loadPcapAddon,
  MSG_BATCH,
  MSG_ERROR,
  type NativeCapture,
  type NativeCaptureStats,
  type NativeSlot,
} from './pcap-addon.js'

export interface LiveCaptureOptions {
  promiscuous?: boolean
  /** Bytes kept of each packet (default 262144). */
  snaplen?: number
  /** Kernel capture buffer per interface in bytes (default 4 MiB). */
  bufferBytes?: number
  /** BPF filter (tcpdump syntax), '' for everything. */
  filter?: string
  /** Packets per batch (default 1024). */
  batchSize?: number
  /** Packet bytes per batch (default 2 MiB, at least twice the snaplen). */
  batchBytes?: number
  /** Batches in flight per interface (default 4). */
  slots?: number
  /** A batch with packets is handed over at most this long after its first packet (default 20 ms). */
  flushMs?: number
  /** libpcap immediate mode: packets leave the kernel one by one instead of in blocks. */
  immediate?: boolean
  /** Enforce the seed rule that a monitored interface has an IP address (default true). */
  requireAddress?: boolean
}

export const DEFAULT_LIVE_OPTIONS = {
  promiscuous: true,
  snaplen: 262144,
  bufferBytes: 4 * 1024 * 1024,
  filter: '',
  batchSize: 1024,
  batchBytes: 2 * 1024 * 1024,
  slots: 4,
  flushMs: 20,
  immediate: false,
  requireAddress: true,
} as const

/** Per-interface figures for metrics: what reached the consumer and what the kernel dropped. */
export interface InterfaceCaptureStats {
  name: string
  ifIndex: number
  linkType: number
  /** Packets and captured bytes handed to the consumer. */
  packets: number
  bytes: number
  /** Packets that passed the filter in the kernel (ps_recv). */
  received: number
  /** Dropped because the capture buffer was full (ps_drop). */
  kernelDrops: number
  /** Dropped by the interface or driver (ps_ifdrop). */
  ifDrops: number
}

/** libpcap's DLT_* values that differ from the LINKTYPE_* registry the decoders use. */
export function linkTypeFromDlt(dlt: number): number {
  if (dlt === 12 || dlt === 14) return LINKTYPE_RAW // DLT_RAW (12 on Linux, 14 on OpenBSD)
  if (dlt === 11) return LINKTYPE_ATM_RFC1483
  return dlt
}

interface Handle {
  readonly name: string
  readonly ifIndex: number
  readonly linkType: number
  readonly native: NativeCapture
  readonly batches: PacketBatch[]
  packets: number
  bytes: number
  ended: boolean
  finalStats: NativeCaptureStats | null
}

interface Ready {
  readonly handle: Handle
  readonly slot: number
  readonly count: number
}

/**
 * Opens a live capture on the interfaces: checks the seed rule, activates one handle per interface and
 * starts capturing. Throws a clear error naming the interface (no such interface, no IP address,
 * permission, bad filter) or, when the addon is not built, saying how to build it.
 */
export function openLiveCapture(
  interfaces: readonly string[],
  options: LiveCaptureOptions = {},
): LiveCaptureSource {
  const o = { ...DEFAULT_LIVE_OPTIONS, ...stripUndefined(options) }
  if (interfaces.length === 0) throw new Error('live capture needs at least one interface')
  for (const [name, v, min] of [
    ['snaplen', o.snaplen, 64],
    ['bufferBytes', o.bufferBytes, 0],
    ['batchSize', o.batchSize, 1],
    ['batchBytes', o.batchBytes, 1],
    ['slots', o.slots, 2],
    ['flushMs', o.flushMs, 1],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < min || v > 0x7fffffff)
      throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`)
  }
  if (o.slots > 64) throw new RangeError(`slots must be at most 64, got ${o.slots}`)
  const addon = loadPcapAddon()
  if (o.requireAddress) checkMonitorable(interfaces)
  else {
    const seen = new Set<string>()
    for (const name of interfaces) {
      if (seen.has(name)) throw new Error(`interface "${name}": listed more than once`)
      seen.add(name)
    }
  }
  const handles: Handle[] = []
  try {
    for (const name of interfaces) {
      const native = new addon.Capture(name, {
        snaplen: o.snaplen,
        promiscuous: o.promiscuous,
        bufferBytes: o.bufferBytes,
        timeoutMs: Math.max(1, Math.floor(o.flushMs / 2)),
        immediate: o.immediate,
        filter: o.filter,
      })
      const linkType = linkTypeFromDlt(native.linkType)
      const ifIndex = interfaceIndex(name)
      const dataBytes = Math.max(o.batchBytes, 2 * native.snaplen)
      const batches: PacketBatch[] = []
      for (let i = 0; i < o.slots; i++) {
        const batch = new PacketBatch(o.batchSize)
        batch.setBuffer(new Uint8Array(dataBytes))
        batch.linkType.fill(linkType)
        batch.ifIndex.fill(ifIndex)
        batches.push(batch)
      }
      handles.push({
        name,
        ifIndex,
        linkType,
        native,
        batches,
        packets: 0,
        bytes: 0,
        ended: false,
        finalStats: null,
      })
    }
  } catch (e) {
    for (const h of handles) h.native.close()
    throw e
  }
  return new LiveCaptureSource(handles, o.flushMs)
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** The CaptureSource over live interfaces; made by openLiveCapture. */
export class LiveCaptureSource implements CaptureSource {
  readonly stats: CaptureStats = newCaptureStats()
  readonly progress = { done: 0, total: 0 }
  /** The interfaces captured, with their OS index and link type. */
  readonly interfaces: readonly { name: string; ifIndex: number; linkType: number }[]

  private readonly queue: Ready[] = []
  private wake: (() => void) | null = null
  private error: Error | null = null
  private started = false
  private finished = false
  private closed = false
  private readonly onFinished: (() => void)[] = []

  constructor(
    private readonly handles: readonly Handle[],
    flushMs: number,
  ) {
    this.interfaces = handles.map((h) => ({ name: h.name, ifIndex: h.ifIndex, linkType: h.linkType }))
    for (const h of handles) {
      const slots: NativeSlot[] = h.batches.map((b) => ({
        data: b.buf,
        offset: b.offset,
        caplen: b.caplen,
        origlen: b.origlen,
        tsUs: b.tsUs,
      }))
      h.native.start(slots, flushMs, (kind, slot, count, text) => this.onNative(h, kind, slot, count, text))
    }
  }

  get isClosed(): boolean {
    return this.closed
  }

  /**
   * Yields batches as they arrive, from every interface, until close() (or an interface fails: then
   * the capture is closed and the error is thrown). One pass only; leaving the loop early closes it.
   */
  async *batches(): AsyncGenerator<PacketBatch, void, undefined> {
    if (this.started) throw new Error('LiveCaptureSource.batches() can only be iterated once')
    this.started = true
    try {
      while (true) {
        const ready = this.queue.shift()
        if (ready === undefined) {
          if (this.error !== null) throw this.error
          if (this.closed || this.handles.every((h) => h.ended)) return
          await new Promise<void>((resolve) => (this.wake = resolve))
          continue
        }
        const { handle, slot, count } = ready
        const batch = handle.batches[slot]
        if (batch === undefined) continue
        batch.count = count
        let bytes = 0
        const caplen = batch.caplen
        for (let i = 0; i < count; i++) bytes += caplen[i]!
        handle.packets += count
        handle.bytes += bytes
        this.stats.packets += count
        this.stats.bytes += bytes
        try {
          yield batch
        } finally {
          batch.count = 0
          if (!this.closed) handle.native.release(slot)
        }
      }
    } finally {
      this.finished = true
      this.onFinished.splice(0).forEach((f) => f())
      await this.close()
    }
  }

  /**
   * Ends the capture without losing a packet the kernel already holds: every interface hands over what it
   * captured up to now (and a few milliseconds more, while the kernel retires its buffer block), the
   * iteration delivers it and ends, then the capture is closed. Resolves once closed; when the iteration does
   * not take the batches within `timeoutMs` (no consumer), the capture is closed anyway.
   */
  async drain(timeoutMs = 2000): Promise<void> {
    if (this.closed) return
    if (!this.started) return this.close()
    for (const h of this.handles) if (!h.ended) h.native.drain()
    if (!this.finished) {
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve) => {
        this.onFinished.push(resolve)
        timer = setTimeout(resolve, timeoutMs)
      })
      clearTimeout(timer)
    }
    await this.close()
  }

  /** Per-interface packets and bytes delivered, and the kernel's drop counters (refreshed every 100 ms). */
  interfaceStats(): InterfaceCaptureStats[] {
    return this.handles.map((h) => {
      const s = h.finalStats ?? h.native.stats()
      return {
        name: h.name,
        ifIndex: h.ifIndex,
        linkType: h.linkType,
        packets: h.packets,
        bytes: h.bytes,
        received: s.received,
        kernelDrops: s.kernelDrops,
        ifDrops: s.ifDrops,
      }
    })
  }

  /** Stops every capture thread and closes the handles; the iteration ends. Idempotent. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      for (const h of this.handles) {
        h.native.close()
        h.finalStats = h.native.stats()
        h.ended = true
      }
      this.queue.length = 0
      this.notify()
    }
    return Promise.resolve()
  }

  private onNative(h: Handle, kind: number, slot: number, count: number, text: string): void {
    if (this.closed) return
    if (kind === MSG_BATCH) this.queue.push({ handle: h, slot, count })
    else {
      h.ended = true
      if (kind === MSG_ERROR && this.error === null) {
        this.error = new Error(text)
        void this.close()
      }
    }
    this.notify()
  }

  private notify(): void {
    const wake = this.wake
    this.wake = null
    wake?.()
  }
}
