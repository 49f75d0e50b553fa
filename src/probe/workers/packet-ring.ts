/**
 * The bounded hand-off from the dispatching thread to one metering worker: a ring of K slots in shared
 * memory (SharedArrayBuffer), each slot one batch of packet bytes plus the PacketBatch metadata arrays, or a
 * command. One writer (the dispatcher) and one reader (the worker), single-producer single-consumer:
 *
 *   ctrl[HEAD]  slots published by the writer (wrapping int32 counter), Atomics.notify'd
 *   ctrl[TAIL]  slots released by the reader, Atomics.notify'd
 *
 * The writer owns slot `head % K` while head - tail < K, fills it and publishes it; when the ring is full
 * it waits (Atomics.waitAsync, so the dispatching thread's event loop keeps running) until the reader
 * releases a slot: back-pressure, never an unbounded queue. The reader blocks in Atomics.wait until a slot
 * is published, copies it out and releases it at once, so the writer fills the next slot while the worker
 * meters the previous one.
 *
 * Every slot carries a time (`advanceUs`): the packet time of the dispatcher's input batch, so a worker
 * whose share of a batch is empty still sees time advance and expires its flows on time.
 */

/** Slot commands. */
export const enum SlotCommand {
  /** `count` packets, then advance time to `advanceUs`. */
  Packets = 1,
  /** Change the timeouts: args[0..2] = active, inactive, tcpEndLinger (seconds; NaN = unchanged). */
  SetTimeouts = 2,
  /** End of input: flush every flow, send the final report, stop reading. */
  Finish = 3,
  /**
   * A live field-group change (a new settings generation, probe/pipeline.ts): the slot's data holds the
   * UTF-8 JSON of a FieldChange (worker-protocol.ts).
   */
  SetFields = 4,
}

const HEAD = 0
const TAIL = 1

/** Header: int32 command, count, dataBytes, reserved; float64 advanceUs, args[3]. */
const HDR_BYTES = 48

export interface RingMemory {
  readonly ctrl: SharedArrayBuffer
  readonly slots: readonly SharedArrayBuffer[]
  /** Packets per slot. */
  readonly packetCapacity: number
  /** Packet bytes per slot. */
  readonly byteCapacity: number
}

export interface RingSize {
  /** Slots in the ring (default 4). */
  slots?: number
  /** Packets per slot (default 4096; even). */
  packets?: number
  /** Packet bytes per slot (default 4 MiB). */
  bytes?: number
}

export const DEFAULT_RING_SIZE = { slots: 4, packets: 4096, bytes: 4 * 1024 * 1024 } as const

export function allocateRing(size: RingSize = {}): RingMemory {
  const k = size.slots ?? DEFAULT_RING_SIZE.slots
  const packets = (size.packets ?? DEFAULT_RING_SIZE.packets) + ((size.packets ?? 0) & 1)
  const bytes = size.bytes ?? DEFAULT_RING_SIZE.bytes
  if (k < 1 || packets < 2 || bytes < 65536)
    throw new Error('packet ring: slots ≥ 1, packets ≥ 2, bytes ≥ 64 KiB')
  const slotBytes = HDR_BYTES + 28 * packets + bytes
  return {
    ctrl: new SharedArrayBuffer(8),
    slots: Array.from({ length: k }, () => new SharedArrayBuffer(slotBytes)),
    packetCapacity: packets,
    byteCapacity: bytes,
  }
}

/** Typed views of one slot (the same layout on both sides). */
export class Slot {
  readonly hdr: Int32Array
  readonly time: Float64Array
  readonly offset: Int32Array
  readonly caplen: Int32Array
  readonly origlen: Int32Array
  readonly linkType: Int32Array
  readonly ifIndex: Int32Array
  readonly tsUs: Float64Array
  readonly data: Uint8Array
  /** Writer-side fill state (mirrored into hdr on publish). */
  count = 0
  bytes = 0

  constructor(
    sab: SharedArrayBuffer,
    readonly packetCapacity: number,
    readonly byteCapacity: number,
  ) {
    const c = packetCapacity
    this.hdr = new Int32Array(sab, 0, 4)
    this.time = new Float64Array(sab, 16, 4)
    let p = HDR_BYTES
    const ints = (): Int32Array => {
      const a = new Int32Array(sab, p, c)
      p += 4 * c
      return a
    }
    this.offset = ints()
    this.caplen = ints()
    this.origlen = ints()
    this.linkType = ints()
    this.ifIndex = ints()
    this.tsUs = new Float64Array(sab, p, c)
    p += 8 * c
    this.data = new Uint8Array(sab, p, byteCapacity)
  }

  get command(): SlotCommand {
    return this.hdr[0]!
  }
  get packets(): number {
    return this.hdr[1]!
  }
  get dataBytes(): number {
    return this.hdr[2]!
  }
  get advanceUs(): number {
    return this.time[0]!
  }
  arg(i: 0 | 1 | 2): number {
    return this.time[1 + i]!
  }

  /** Put a command's payload (at most the slot's byte capacity) into the data area. */
  setPayload(bytes: Uint8Array): void {
    if (bytes.byteLength > this.byteCapacity) throw new Error('packet ring: command payload too large')
    this.data.set(bytes, 0)
    this.count = 0
    this.bytes = bytes.byteLength
  }

  /** The payload of a command slot, copied out of shared memory. */
  payload(): Uint8Array {
    return this.data.slice(0, this.dataBytes)
  }

  /**
   * Append one packet; false when it does not fit (the caller publishes and retries in the next slot). A
   * packet longer than the whole slot is cut to the slot size: origlen keeps its real length, so the decoder
   * sees a snap-length truncation, as it would from a capture with that snap length.
   */
  append(
    buf: Uint8Array,
    offset: number,
    caplen: number,
    origlen: number,
    tsUs: number,
    linkType: number,
    ifIndex: number,
  ): boolean {
    const n = this.count
    if (n >= this.packetCapacity) return false
    let len = caplen
    if (len > this.byteCapacity) len = this.byteCapacity
    const at = this.bytes
    if (at + len > this.byteCapacity) return false
    this.data.set(buf.subarray(offset, offset + len), at)
    this.offset[n] = at
    this.caplen[n] = len
    this.origlen[n] = origlen > len ? origlen : len
    this.tsUs[n] = tsUs
    this.linkType[n] = linkType
    this.ifIndex[n] = ifIndex
    this.count = n + 1
    this.bytes = at + len
    return true
  }
}

type WaitAsync = (
  typedArray: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> }

/** Atomics.waitAsync (V8 since Node 16; not in the ES2022 lib typings). */
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync

/** The dispatcher's end of one ring. */
export class RingWriter {
  private readonly ctrl: Int32Array
  private readonly slots: Slot[]
  private head = 0

  constructor(mem: RingMemory) {
    this.ctrl = new Int32Array(mem.ctrl)
    this.slots = mem.slots.map((s) => new Slot(s, mem.packetCapacity, mem.byteCapacity))
  }

  /** Slots published and not yet released by the reader. */
  get inFlight(): number {
    return (this.head - Atomics.load(this.ctrl, TAIL)) | 0
  }

  /** The slot to fill, or undefined while the ring is full (see waitForRoom). */
  current(): Slot | undefined {
    if (this.inFlight >= this.slots.length) return undefined
    return this.slots[(this.head >>> 0) % this.slots.length]!
  }

  /** Resolves once the reader has released a slot (immediately when one is free). */
  async waitForRoom(): Promise<void> {
    for (;;) {
      const tail = Atomics.load(this.ctrl, TAIL)
      if (((this.head - tail) | 0) < this.slots.length) return
      if (waitAsync !== undefined) {
        const r = waitAsync(this.ctrl, TAIL, tail, 1000)
        if (r.async) await r.value
      } else {
        await new Promise<void>((resolve) => setTimeout(resolve, 1))
      }
    }
  }

  /** Publish the current slot with a command and time; the next current() is a fresh slot. */
  publish(command: SlotCommand, advanceUs: number, args: readonly number[] = []): void {
    const s = this.slots[(this.head >>> 0) % this.slots.length]!
    s.hdr[0] = command
    s.hdr[1] = command === SlotCommand.Packets ? s.count : 0
    s.hdr[2] = command === SlotCommand.Packets || command === SlotCommand.SetFields ? s.bytes : 0
    s.time[0] = advanceUs
    for (let i = 0; i < 3; i++) s.time[1 + i] = args[i] ?? NaN
    s.count = 0
    s.bytes = 0
    this.head = (this.head + 1) | 0
    // The release store orders the slot contents before the new head for the reader's Atomics.load.
    Atomics.store(this.ctrl, HEAD, this.head)
    Atomics.notify(this.ctrl, HEAD)
  }
}

/** The worker's end of one ring. */
export class RingReader {
  private readonly ctrl: Int32Array
  private readonly slots: Slot[]
  private tail = 0

  constructor(mem: RingMemory) {
    this.ctrl = new Int32Array(mem.ctrl)
    this.slots = mem.slots.map((s) => new Slot(s, mem.packetCapacity, mem.byteCapacity))
  }

  /** Blocks until a slot is published and returns it; release() it when its contents are copied out. */
  next(): Slot {
    for (;;) {
      if (Atomics.load(this.ctrl, HEAD) !== this.tail)
        return this.slots[(this.tail >>> 0) % this.slots.length]!
      Atomics.wait(this.ctrl, HEAD, this.tail, 1000)
    }
  }

  release(): void {
    this.tail = (this.tail + 1) | 0
    Atomics.store(this.ctrl, TAIL, this.tail)
    Atomics.notify(this.ctrl, TAIL)
  }
}
