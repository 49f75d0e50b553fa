/**
 * A batch of captured packets handed from a capture source to the packet path.
 *
 * Packets are byte ranges of one shared buffer (`buf`), described by parallel typed arrays, so a batch
 * costs no allocation per packet. A source reuses the same batch object (and may reuse its buffer) for
 * the next batch: consumers must finish with a batch, or copy what they keep, before asking for the next.
 */
export class PacketBatch {
  /** Backing bytes; packet i is buf.subarray(offset[i], offset[i] + caplen[i]). */
  buf: Uint8Array = new Uint8Array(0)
  /** A DataView over exactly `buf` (same byteOffset/byteLength), rebuilt only when `buf` changes. */
  view: DataView = new DataView(new ArrayBuffer(0))
  /** Number of packets in use. */
  count = 0
  /** Start of each packet in `buf`. */
  readonly offset: Int32Array
  /** Captured length (bytes present in `buf`). */
  readonly caplen: Int32Array
  /** Original length on the wire (caplen < origlen means snaplen truncation). */
  readonly origlen: Int32Array
  /** Timestamp in microseconds since the UNIX epoch (float64 holds whole µs exactly until year 2255). */
  readonly tsUs: Float64Array
  /** Link type (LINKTYPE_* value from the pcap/pcapng registry) of each packet. */
  readonly linkType: Int32Array
  /** Ingress interface index: pcapng interface id + 1, the OS ifindex for live capture, 0 when unknown. */
  readonly ifIndex: Int32Array

  constructor(readonly capacity: number) {
    this.offset = new Int32Array(capacity)
    this.caplen = new Int32Array(capacity)
    this.origlen = new Int32Array(capacity)
    this.tsUs = new Float64Array(capacity)
    this.linkType = new Int32Array(capacity)
    this.ifIndex = new Int32Array(capacity)
  }

  /** Point the batch at a new backing buffer (also rebuilds `view`). */
  setBuffer(buf: Uint8Array): void {
    if (buf === this.buf) return
    this.buf = buf
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  /** Append one packet; the caller guarantees count < capacity and the range lies inside `buf`. */
  push(
    offset: number,
    caplen: number,
    origlen: number,
    tsUs: number,
    linkType: number,
    ifIndex: number,
  ): void {
    const i = this.count++
    this.offset[i] = offset
    this.caplen[i] = caplen
    this.origlen[i] = origlen
    this.tsUs[i] = tsUs
    this.linkType[i] = linkType
    this.ifIndex[i] = ifIndex
  }

  get full(): boolean {
    return this.count >= this.capacity
  }
}

/** What every capture source (file reader, live capture) offers the pipeline. */
export interface CaptureSource {
  /** Yields batches until the input ends. The yielded batch is reused: finish with it before the next. */
  batches(): AsyncIterable<PacketBatch>
  /** Progress for a progress bar: bytes consumed so far and in total (0 when unknown, as for live capture). */
  readonly progress: { readonly done: number; readonly total: number }
  /** Counters of the source itself: packets read, per-link-type counts of unsupported packets, format errors. */
  readonly stats: CaptureStats
  close(): Promise<void>
}

export interface CaptureStats {
  packets: number
  bytes: number
  /** Packets skipped because their link type is not supported, by link type. */
  unsupportedLinkType: Map<number, number>
  /** Format-level problems (bad block length, truncated record at end of file, ...), by snake_case name. */
  formatErrors: Map<string, number>
}

export function newCaptureStats(): CaptureStats {
  return { packets: 0, bytes: 0, unsupportedLinkType: new Map(), formatErrors: new Map() }
}
