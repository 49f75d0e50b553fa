// A stand-in for the live capture of one interface (probe/service.ts ServiceCapture), fed by the test with
// packets read from capture files. Timestamps are moved to the wall clock (the first packet fed is "now",
// the others keep their spacing), as a live capture would stamp them. No root, no libpcap.
import { openCaptureFiles } from '../../src/capture/file-source.js'
import { PacketBatch } from '../../src/capture/batch.js'
import type { CaptureInterfaceStats, ServiceCapture } from '../../src/probe/service.js'

export interface FakePacket {
  data: Uint8Array
  /** Original capture time (µs). */
  tsUs: number
  linkType: number
}

/** Every packet of the capture files, copied out of the reader's reused buffers. */
export async function readPackets(paths: string[]): Promise<FakePacket[]> {
  const src = await openCaptureFiles(paths)
  const out: FakePacket[] = []
  try {
    for await (const b of src.batches())
      for (let i = 0; i < b.count; i++) {
        const o = b.offset[i]!
        out.push({ data: b.buf.slice(o, o + b.caplen[i]!), tsUs: b.tsUs[i]!, linkType: b.linkType[i]! })
      }
  } finally {
    await src.close()
  }
  return out
}

export class FakeCapture implements ServiceCapture {
  private readonly queue: PacketBatch[] = []
  private wake: (() => void) | undefined
  private closed = false
  private consumed = 0
  private fed = 0
  private readonly drainWaiters: (() => void)[] = []
  private readonly st: CaptureInterfaceStats

  constructor(
    readonly name: string,
    readonly ifIndex: number,
  ) {
    this.st = { name, ifIndex, packets: 0, bytes: 0, kernelDrops: 0, ifDrops: 0 }
  }

  get isClosed(): boolean {
    return this.closed
  }

  /**
   * Queue packets as one batch, timestamps moved so the first one is `startUs` (default now); returns the
   * time of the last packet.
   */
  feed(packets: readonly FakePacket[], startUs = Date.now() * 1000): number {
    if (packets.length === 0) return startUs
    const shift = startUs - packets[0]!.tsUs
    const size = packets.reduce((n, p) => n + p.data.byteLength, 0)
    const buf = new Uint8Array(size)
    const b = new PacketBatch(packets.length)
    b.setBuffer(buf)
    let off = 0
    let last = startUs
    for (const p of packets) {
      buf.set(p.data, off)
      last = p.tsUs + shift
      b.push(off, p.data.byteLength, p.data.byteLength, last, p.linkType, this.ifIndex)
      off += p.data.byteLength
    }
    this.queue.push(b)
    this.fed++
    this.wake?.()
    return last
  }

  /** Resolves once every batch fed so far was taken by the service and the next one asked for. */
  drained(): Promise<void> {
    if (this.consumed >= this.fed) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  async *batches(): AsyncGenerator<PacketBatch> {
    for (;;) {
      const b = this.queue.shift()
      if (b !== undefined) {
        this.st.packets += b.count
        for (let i = 0; i < b.count; i++) this.st.bytes += b.caplen[i]!
        yield b
        this.consumed++
        if (this.consumed >= this.fed) this.drainWaiters.splice(0).forEach((w) => w())
        continue
      }
      if (this.closed) return
      await new Promise<void>((resolve) => (this.wake = resolve))
      this.wake = undefined
    }
  }

  interfaceStats(): CaptureInterfaceStats[] {
    return [{ ...this.st }]
  }

  close(): Promise<void> {
    this.closed = true
    this.wake?.()
    return Promise.resolve()
  }
}
