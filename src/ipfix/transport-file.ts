/**
 * IPFIX File Format (RFC 5655 §6): messages back to back in one file, as ipfixDump reads it.
 * Writes go through a WriteStream in order; close() waits until everything is on disk. A producer that can
 * wait (the offline probe) waits on whenWritable, so the stream's buffer stays small.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { chunksLength, DrainWaiters, type Transport, type TransportStats } from './transport.js'

export class FileTransport implements Transport {
  readonly name: string
  readonly stats: TransportStats = { messages: 0, octets: 0, errors: 0, dropped: 0 }
  private stream: WriteStream | undefined
  /** Settled on 'drain' or when the stream ends or fails. */
  private readonly drainWaiters = new DrainWaiters()

  constructor(readonly path: string) {
    this.name = `file://${path}`
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = createWriteStream(this.path)
      s.once('open', () => {
        s.on('error', () => {
          this.stats.errors++
          this.drainWaiters.wake()
        })
        s.on('drain', () => this.drainWaiters.wake())
        s.on('close', () => this.drainWaiters.wake())
        resolve()
      })
      s.once('error', reject)
      this.stream = s
    })
  }

  send(message: Uint8Array[]): void {
    const s = this.stream
    if (s === undefined || s.destroyed) {
      this.stats.dropped++
      return
    }
    for (const c of message) s.write(c)
    this.stats.messages++
    this.stats.octets += chunksLength(message)
  }

  /** While the stream asks to drain: settles on 'drain' or when the stream ends or fails. */
  whenWritable(): Promise<void> | undefined {
    const s = this.stream
    if (s === undefined || s.destroyed || !s.writableNeedDrain) return undefined
    return this.drainWaiters.wait()
  }

  onNewSession(_cb: () => void): void {
    // One file is one session.
  }

  close(): Promise<void> {
    const s = this.stream
    this.stream = undefined
    if (s === undefined || s.destroyed) return Promise.resolve()
    return new Promise((resolve) => s.end(() => resolve()))
  }
}
