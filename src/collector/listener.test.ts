// Live listeners on loopback: a mixed NetFlow v5 / v9 / IPFIX stream on one UDP port over IPv4, IPv6 and
// dual stack, through both UDP receive paths, and their receive-buffer drops counted;
// and IPFIX over TCP with framing across writes and templates dropped when the connection ends.
import { execFileSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { hex } from '../ipfix/testing.js'
import { FlowCollector, type CollectedRecord } from './decode-message.js'
import { listen, parseListen } from './listener.js'
import { nativeUdpReceiverClass, type UdpReceiverKind } from './udp-receiver.js'

const IPFIX_TPL = hex('000a 001c 6553f100 00000000 00000001  0002 000c 0100 0001 000b 0002')
const IPFIX_DATA = hex('000a 0016 6553f100 00000000 00000001  0100 0006 0050')
const V9 = hex(`0009 0002 00002710 6553f100 00000001 00000007
  0000 000c 0100 0001 000c 0004  0100 0008 0a000001`)
const V5 = hex('0005 0001 00002710 6553f100 00000000 00000064 0000 0000' + '00'.repeat(48))

/** Both UDP receive paths when the addon is built. */
const udpKinds: UdpReceiverKind[] = nativeUdpReceiverClass() !== undefined ? ['native', 'dgram'] : ['dgram']

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

  it.each(udpKinds.flatMap((kind) => ['127.0.0.1', '::1', '::'].map((host) => [kind, host] as const)))(
    'decodes a mixed v5/v9/IPFIX UDP stream on one port (%s receiver, %s)',
    async (kind, host) => {
      const col = new FlowCollector()
      const got: CollectedRecord[] = []
      const l = await listen({ protocol: 'udp', host, port: 0 }, col, (o) => got.push(...o.records), {
        udpReceiver: kind,
      })
      const from = host === '::' ? '127.0.0.1' : host // `::` takes IPv4 too (dual stack)
      const s = createSocket(from.includes(':') ? 'udp6' : 'udp4')
      try {
        expect(l.udpReceiver).toBe(kind)
        for (const m of [IPFIX_TPL, IPFIX_DATA, V9, V5]) s.send(m, l.port, from)
        await waitFor(() => got.length === 3)
        expect(got.map((r) => r.version).sort()).toEqual([10, 5, 9].sort())
        expect(got.every((r) => r.exporter === from)).toBe(true)
        expect(l.counters['datagrams']).toBe(4)
      } finally {
        s.close()
        await l.close()
      }
    },
  )

  it.each(udpKinds)('counts receive-buffer drops (%s receiver)', async (kind) => {
    const col = new FlowCollector()
    let records = 0
    const l = await listen(
      { protocol: 'udp', host: '127.0.0.1', port: 0 },
      col,
      (o) => (records += o.records.length),
      {
        udpReceiver: kind,
        udpReceiveBufferBytes: 4096,
        udpTuning: { slots: 1, slotDatagrams: 2 },
      },
    )
    try {
      // This thread is blocked in execFileSync while a child sends: the kernel drops what does not fit.
      const msgs = [IPFIX_TPL, ...Array.from({ length: 1500 }, () => IPFIX_DATA)].map((m) =>
        Buffer.from(m).toString('hex'),
      )
      const script = `const s=require('dgram').createSocket('udp4');const m=${JSON.stringify(msgs)};let i=0;
        const go=()=>{if(i>=m.length)return s.close();s.send(Buffer.from(m[i++],'hex'),${l.port},'127.0.0.1',go)};go()`
      execFileSync(process.execPath, ['-e', script], { stdio: 'ignore' })
      await waitFor(() => (l.counters['datagrams'] ?? 0) > 0)
    } finally {
      await l.close()
    }
    expect(l.counters['receive_buffer_drops']).toBeGreaterThan(0)
    expect((l.counters['datagrams'] ?? 0) + (l.counters['receive_buffer_drops'] ?? 0)).toBeLessThanOrEqual(
      1501,
    )
  })

  it.each([...udpKinds, 'tcp' as const])(
    'counts a message the sink throws on, and the others still arrive (%s)',
    async (kind) => {
      const col = new FlowCollector()
      const got: CollectedRecord[] = []
      let calls = 0
      const sink = (o: { records: CollectedRecord[] }): void => {
        if (calls++ === 1) throw new Error('the store refused a value') // the first data message
        got.push(...o.records)
      }
      const tcp = kind === 'tcp'
      const l = await listen({ protocol: tcp ? 'tcp' : 'udp', host: '127.0.0.1', port: 0 }, col, sink, {
        ...(tcp ? {} : { udpReceiver: kind, udpTuning: { flushMs: 50 } }), // native: one batch of all four
      })
      const msgs = [IPFIX_TPL, IPFIX_DATA, IPFIX_DATA, IPFIX_DATA]
      try {
        if (tcp) {
          const c = connect(l.port, '127.0.0.1')
          await new Promise<void>((r) => c.once('connect', () => r()))
          c.end(Buffer.concat(msgs))
        } else {
          const s = createSocket('udp4')
          for (const m of msgs) await new Promise((r) => s.send(m, l.port, '127.0.0.1', r))
          s.close()
        }
        await waitFor(() => got.length === 2)
        expect(l.counters['sink_errors']).toBe(1)
      } finally {
        await l.close()
      }
    },
  )

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
