// Live listeners on loopback: a mixed NetFlow v5 / v9 / IPFIX stream on one UDP port over IPv4 and IPv6,
// and IPFIX over TCP with framing across writes and templates dropped when the connection ends.
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { hex } from '../ipfix/testing.js'
import { FlowCollector, type CollectedRecord } from './decode-message.js'
import { listen, parseListen } from './listener.js'

const IPFIX_TPL = hex('000a 001c 6553f100 00000000 00000001  0002 000c 0100 0001 000b 0002')
const IPFIX_DATA = hex('000a 0016 6553f100 00000000 00000001  0100 0006 0050')
const V9 = hex(`0009 0002 00002710 6553f100 00000001 00000007
  0000 000c 0100 0001 000c 0004  0100 0008 0a000001`)
const V5 = hex('0005 0001 00002710 6553f100 00000000 00000064 0000 0000' + '00'.repeat(48))

function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const start = Date.now()
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve()
      else if (Date.now() - start > ms) reject(new Error('timed out'))
      else setTimeout(tick, 5)
    }
    tick()
  })
}

describe('listeners', () => {
  it('parses listen addresses', () => {
    expect(parseListen('udp://[::]:4739')).toEqual({ protocol: 'udp', host: '::', port: 4739 })
    expect(parseListen('tcp://127.0.0.1:0')).toEqual({ protocol: 'tcp', host: '127.0.0.1', port: 0 })
    expect(() => parseListen('http://x:1')).toThrow(/bad listen address/)
  })

  it.each(['127.0.0.1', '::1'])('decodes a mixed v5/v9/IPFIX UDP stream on one port (%s)', async (host) => {
    const col = new FlowCollector()
    const got: CollectedRecord[] = []
    const l = await listen({ protocol: 'udp', host, port: 0 }, col, (o) => got.push(...o.records))
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4')
    try {
      for (const m of [IPFIX_TPL, IPFIX_DATA, V9, V5]) s.send(m, l.port, host)
      await waitFor(() => got.length === 3)
      expect(got.map((r) => r.version).sort()).toEqual([10, 5, 9].sort())
      expect(got.every((r) => r.exporter === host)).toBe(true)
    } finally {
      s.close()
      await l.close()
    }
  })

  it('frames IPFIX over TCP and drops the session templates when it closes', async () => {
    const col = new FlowCollector()
    const got: CollectedRecord[] = []
    const l = await listen({ protocol: 'tcp', host: '127.0.0.1', port: 0 }, col, (o) =>
      got.push(...o.records),
    )
    try {
      const c = connect(l.port, '127.0.0.1')
      await new Promise<void>((r) => c.once('connect', () => r()))
      const stream = new Uint8Array([...IPFIX_TPL, ...IPFIX_DATA, ...IPFIX_DATA])
      c.write(stream.subarray(0, 20))
      await new Promise((r) => setTimeout(r, 20))
      c.write(stream.subarray(20))
      await waitFor(() => got.length === 2)
      expect(col.templates.size).toBe(1)
      c.end()
      await waitFor(() => col.templates.size === 0)
    } finally {
      await l.close()
    }
  })
})

describe('TCP limits (standards §5.3 #46)', () => {
  it('refuses connections beyond the cap and closes idle ones', async () => {
    const col = new FlowCollector()
    const l = await listen({ protocol: 'tcp', host: '127.0.0.1', port: 0 }, col, () => {}, {
      maxConnections: 1,
      idleTimeoutMs: 100,
    })
    try {
      const a = connect(l.port, '127.0.0.1')
      a.on('error', () => {})
      await new Promise<void>((r) => a.once('connect', () => r()))
      await waitFor(() => (l.counters['connections'] ?? 0) === 1)
      const b = connect(l.port, '127.0.0.1')
      b.on('error', () => {})
      await waitFor(() => (l.counters['tcp_connections_refused'] ?? 0) === 1)
      await waitFor(() => (l.counters['tcp_idle_closed'] ?? 0) === 1)
      a.destroy()
      b.destroy()
    } finally {
      await l.close()
    }
  })
})
