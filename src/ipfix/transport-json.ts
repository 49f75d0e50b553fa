/**
 * A Transport that decodes the IPFIX messages it is given (RFC 7011, via IpfixDecoder) and writes one JSON
 * line per data record to a file or stdout ('-'). Options data records are skipped unless `options: true`.
 * Writes respect backpressure: while the stream asks to drain, lines wait in memory up to maxBufferBytes,
 * beyond which records are dropped and counted; a producer that can wait (the offline probe) waits on
 * whenWritable instead, so nothing is dropped. close() writes everything and waits for the stream.
 */
import { createWriteStream } from 'node:fs'
import type { Writable } from 'node:stream'
import { IpfixDecoder, recordToJson } from './decoder.js'
import { registerEnterpriseElements } from './enterprise/flowtel.js'
import { chunksLength, DrainWaiters, type Transport, type TransportStats } from './transport.js'

export interface JsonTransportOptions {
  /** Also write options data records (exporter statistics etc.). Default false. */
  options?: boolean
  /** Memory cap for lines waiting on a slow stream. Default 16 MiB. */
  maxBufferBytes?: number
  /** Write to this stream instead of opening `path` (tests). */
  stream?: Writable
}

export class JsonTransport implements Transport {
  readonly name: string
  readonly stats: TransportStats = { messages: 0, octets: 0, errors: 0, dropped: 0 }
  /** JSON lines written (or queued). */
  records = 0
  readonly decoder = new IpfixDecoder({ transport: 'file' })
  private out: Writable | undefined
  private ownsStream = false
  private pending: string[] = []
  private pendingBytes = 0
  private waiting = false
  /** Settled on 'drain', error or close. */
  private readonly drainWaiters = new DrainWaiters()
  private readonly maxBuffer: number

  constructor(
    readonly path: string,
    private readonly opts: JsonTransportOptions = {},
  ) {
    this.name = path === '-' ? 'json:stdout' : `json:${path}`
    // The probe's own Flowmon and Flowtel elements get their names here too, not only where templates are
    // built: with --workers those are built in the worker threads, whose registry this thread does not see.
    registerEnterpriseElements()
    this.maxBuffer = opts.maxBufferBytes ?? 16 * 1024 * 1024
  }

  open(): Promise<void> {
    if (this.opts.stream !== undefined) this.out = this.opts.stream
    else if (this.path === '-') this.out = process.stdout
    else {
      const s = createWriteStream(this.path)
      this.ownsStream = true
      this.out = s
      return new Promise((resolve, reject) => {
        s.once('open', () => {
          this.attach(s)
          resolve()
        })
        s.once('error', reject)
      })
    }
    this.attach(this.out)
    return Promise.resolve()
  }

  private attach(s: Writable): void {
    s.on('error', () => {
      this.stats.errors++
      this.drainWaiters.wake()
    })
    s.on('close', () => this.drainWaiters.wake())
    s.on('drain', () => {
      this.waiting = false
      this.writePending()
      this.drainWaiters.wake()
    })
  }

  whenWritable(): Promise<void> | undefined {
    const s = this.out
    if (!this.waiting || s === undefined || s.destroyed) return undefined
    return this.drainWaiters.wait()
  }

  send(message: Uint8Array[]): void {
    this.stats.messages++
    this.stats.octets += chunksLength(message)
    const bytes = message.length === 1 && message[0] !== undefined ? message[0] : Buffer.concat(message)
    const m = this.decoder.decode(bytes)
    let text = ''
    for (const r of m.records) {
      if (r.isOptions && this.opts.options !== true) continue
      text += JSON.stringify(recordToJson(r)) + '\n'
      this.records++
    }
    if (text !== '') this.write(text)
  }

  private write(text: string): void {
    const s = this.out
    if (s === undefined || s.destroyed) {
      this.stats.dropped++
      return
    }
    if (this.waiting) {
      if (this.pendingBytes + text.length > this.maxBuffer) {
        this.stats.dropped++
        return
      }
      this.pending.push(text)
      this.pendingBytes += text.length
      return
    }
    if (!s.write(text)) this.waiting = true
  }

  private writePending(): void {
    if (this.pending.length === 0) return
    const text = this.pending.join('')
    this.pending = []
    this.pendingBytes = 0
    this.write(text)
  }

  onNewSession(_cb: () => void): void {
    // Messages arrive in process; there is no session to lose.
  }

  async close(): Promise<void> {
    const s = this.out
    if (s === undefined) return
    this.out = undefined
    this.drainWaiters.wake()
    if (this.pending.length > 0 && !s.destroyed) s.write(this.pending.join(''))
    this.pending = []
    this.pendingBytes = 0
    if (s.destroyed) return
    await new Promise<void>((resolve) => {
      if (this.ownsStream) s.end(() => resolve())
      else if (s.writableNeedDrain) s.once('drain', () => resolve())
      else resolve()
    })
  }
}
