// The offline probe waits while an output asks it to (Transport.whenWritable) instead of producing more:
// a slow JSON file or TCP collector loses nothing and the lines waiting in memory stay bounded.
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { IpfixDecoder } from '../ipfix/decoder.js'
import type { Transport, TransportStats } from '../ipfix/transport.js'
import { REPO_ROOT } from '../../test/helpers/shared.js'
import { DEFAULT_PROBE_OPTIONS, runProbe } from './probe.js'

/** Takes messages, then blocks after the first one until the test opens the gate. */
class GatedTransport implements Transport {
  readonly name = 'gated'
  readonly stats: TransportStats = { messages: 0, octets: 0, errors: 0, dropped: 0 }
  readonly messages: Uint8Array[] = []
  waits = 0
  private blocked = false
  private gated = false
  private open_: (() => void) | undefined
  private readonly gate = new Promise<void>((resolve) => (this.open_ = resolve))

  open(): Promise<void> {
    return Promise.resolve()
  }
  send(message: Uint8Array[]): void {
    this.stats.messages++
    this.messages.push(Buffer.concat(message))
    if (!this.gated) this.blocked = this.gated = true
  }
  whenWritable(): Promise<void> | undefined {
    if (!this.blocked) return undefined
    this.waits++
    return this.gate
  }
  release(): void {
    this.blocked = false
    this.open_?.()
  }
  onNewSession(): void {}
  close(): Promise<void> {
    return Promise.resolve()
  }
}

const reads = ['ipv4', 'ipv6', 'tunnels'].map((d) => path.join(REPO_ROOT, 'test/fixtures/pcap', d))

describe('offline probe and a slow output', () => {
  it('produces nothing more while an output is blocked, and everything once it drains', async () => {
    const gated = new GatedTransport()
    let done = false
    const run = runProbe({
      ...DEFAULT_PROBE_OPTIONS,
      reads,
      destinations: [],
      extraTransports: [gated],
    }).then((s) => {
      done = true
      return s
    })
    for (let i = 0; i < 1000 && gated.waits === 0; i++) await new Promise((r) => setTimeout(r, 5))
    expect(gated.waits).toBeGreaterThan(0)
    const held = gated.stats.messages
    // The producer is parked on the gate: however long the output stays blocked, nothing more arrives.
    await new Promise((r) => setTimeout(r, 100))
    expect(gated.stats.messages).toBe(held)
    expect(done).toBe(false)
    gated.release()
    const summary = await run
    expect(gated.stats.messages).toBeGreaterThan(held)
    // Every flow arrived, and the stream is one valid session.
    const decoder = new IpfixDecoder({ transport: 'file' })
    let flows = 0
    for (const m of gated.messages) {
      const d = decoder.decode(m)
      expect(d.error).toBeUndefined()
      flows += d.records.filter((r) => !r.isOptions).length
    }
    expect(flows).toBe(summary.flows)
    expect(summary.flows).toBeGreaterThan(10)
  })
})
