// Transports: collector address parsing, TCP framing/reconnect (RFC 7011 §10.4), UDP over IPv6 (§10.3),
// JSON lines output.
import dgram from 'node:dgram'
import net from 'node:net'
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { IpfixExporter, type ExporterOptions } from './exporter.js'
import { IpfixDecoder, recordToJson } from './decoder.js'
import { Template } from './template.js'
import { headerOf, splitMessages } from './testing.js'
import { parseCollectorAddress, type Transport } from './transport.js'
import { JsonTransport } from './transport-json.js'
import { TcpTransport } from './transport-tcp.js'
import { pcapAddonAvailable, type NativeUdpSocket } from '../capture/pcap-addon.js'
import { BURST_MESSAGES, UdpTransport } from './transport-udp.js'

const tpl = Template.fromNames(256, [['sourceIPv4Address'], ['octetDeltaCount']])
const opts = (): ExporterOptions => ({
  observationDomainId: 9,
  maxMessageSize: 1472,
  templateRefreshSeconds: 600,
  templateRefreshMessages: 0,
  statsIntervalSeconds: 0,
  now: () => Date.now() / 1000,
})
function exporter(t: Transport): { e: IpfixExporter; add: (i: number) => void } {
  const e = new IpfixExporter(opts(), [t])
  e.addTemplate(tpl)
  return {
    e,
    add: (i) => {
      const w = e.beginRecord(tpl, 12)
      w.ipv4(i)
      w.u64(i)
      e.endRecord()
    },
  }
}
const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timeout')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('parseCollectorAddress', () => {
  it('accepts host:port, fqdn:port and [v6]:port', () => {
    expect(parseCollectorAddress('127.0.0.1:4739')).toEqual({ host: '127.0.0.1', port: 4739 })
    expect(parseCollectorAddress('collector.example.net:2055')).toEqual({
      host: 'collector.example.net',
      port: 2055,
    })
    expect(parseCollectorAddress('[::1]:4739')).toEqual({ host: '::1', port: 4739 })
    expect(parseCollectorAddress('[fe80::1%eth0]:9')).toEqual({ host: 'fe80::1%eth0', port: 9 })
  })
  it('rejects bad input with clear messages', () => {
    expect(() => parseCollectorAddress('4739')).toThrow(/host:port/)
    expect(() => parseCollectorAddress('::1:4739')).toThrow(/brackets/)
    expect(() => parseCollectorAddress('host:0')).toThrow(/outside 1\.\.65535/)
    expect(() => parseCollectorAddress('host:70000')).toThrow(/outside/)
    expect(() => parseCollectorAddress('host:abc')).toThrow(/bad port/)
    expect(() => parseCollectorAddress(':4739')).toThrow(/empty host/)
    expect(() => parseCollectorAddress('[::1]4739')).toThrow(/:port/)
    expect(() => parseCollectorAddress('[::1:4739')).toThrow(/missing "]"/)
  })
})

describe('TCP transport', () => {
  it('frames messages, and after a reconnect resends templates first with the sequence reset', async () => {
    const conns: Buffer[][] = []
    const sockets: net.Socket[] = []
    const server = net.createServer((s) => {
      const chunks: Buffer[] = []
      conns.push(chunks)
      sockets.push(s)
      s.on('data', (d) => chunks.push(d))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    const t = new TcpTransport('127.0.0.1', port, { reconnectInitialMs: 50, reconnectMaxMs: 200 })
    await t.open()
    expect(t.isConnected).toBe(true)
    const { e, add } = exporter(t)
    add(1)
    add(2)
    e.flush()
    add(3)
    e.flush()
    await until(() => Buffer.concat(conns[0] ?? []).length >= 3 * 16)
    // The collector drops the connection; the exporter keeps going.
    sockets[0]?.destroy()
    await until(() => !t.isConnected)
    add(4)
    e.flush()
    await until(() => t.isConnected)
    add(5)
    await e.close()
    server.close()
    await until(() => conns.length === 2 && Buffer.concat(conns[1] ?? []).length >= 3 * 16)
    const first = splitMessages(Buffer.concat(conns[0] ?? []))
    const second = splitMessages(Buffer.concat(conns[1] ?? []))
    expect(first.map((m) => [headerOf(m).sets[0], headerOf(m).sequence])).toEqual([
      [2, 0],
      [256, 0],
      [256, 2],
    ])
    expect(second.map((m) => [headerOf(m).sets[0], headerOf(m).sequence])).toEqual([
      [2, 0],
      [256, 0],
      [256, 1],
    ])
    const d = new IpfixDecoder({ transport: 'tcp' })
    expect(second.flatMap((m) => d.decode(m).records.map((r) => recordToJson(r).octetDeltaCount))).toEqual([
      4, 5,
    ])
    expect(t.connections).toBe(2)
  })

  it('backs off from a collector that accepts and drops every connection at once', async () => {
    let accepted = 0
    const server = net.createServer((s) => {
      accepted++
      s.destroy()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    const t = new TcpTransport('127.0.0.1', port, { reconnectInitialMs: 10, reconnectMaxMs: 100_000 })
    try {
      await t.open()
      // Each short-lived connection counts as a failure: 10, 20, 40, 80, 160 ms ... not 10 ms forever. Wait
      // for the client to have handled the drops (the server may see a connection before the client sees
      // it closed), then check the delay grew within a handful of connections.
      await until(() => t.retryDelayMs >= 10 * 2 ** 4)
      expect(accepted).toBeGreaterThanOrEqual(5)
      expect(accepted).toBeLessThanOrEqual(7)
    } finally {
      await t.close()
      await new Promise<void>((r) => server.close(() => r()))
    }
  })

  it('queues while the collector is down, bounded, and never throws', async () => {
    const probe = net.createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const port = (probe.address() as net.AddressInfo).port
    await new Promise<void>((r) => probe.close(() => r())) // nothing listens there now
    const t = new TcpTransport('127.0.0.1', port, { reconnectInitialMs: 20, maxQueueBytes: 200 })
    await t.open()
    expect(t.isConnected).toBe(false)
    const { e, add } = exporter(t)
    for (let i = 0; i < 20; i++) {
      add(i)
      e.flush()
    }
    expect(t.stats.dropped).toBeGreaterThan(0)
    expect(t.stats.errors).toBeGreaterThan(0)
    await e.close()
  })
})

// Both sockets: the native sendmmsg one (when the addon is built) and Node's dgram.
describe.each([
  { native: true, kind: 'native sendmmsg socket' },
  { native: false, kind: 'Node dgram socket' },
])('UDP transport ($kind)', ({ native }) => {
  if (native && !pcapAddonAvailable()) return void it.skip('native addon not built', () => undefined)

  it('sends one message per datagram over IPv6 loopback', async () => {
    const rx = dgram.createSocket('udp6')
    const got: Buffer[] = []
    rx.on('message', (m) => got.push(m))
    await new Promise<void>((r) => rx.bind(0, '::1', r))
    const t = new UdpTransport('::1', rx.address().port, { native })
    expect(t.name).toBe(`udp://[::1]:${rx.address().port}`)
    expect(t.periodicTemplates).toBe(true)
    await t.open()
    const { e, add } = exporter(t)
    for (let i = 0; i < 5; i++) add(i)
    await e.close()
    await until(() => got.length === 2)
    rx.close()
    const d = new IpfixDecoder({ transport: 'udp' })
    expect(got.flatMap((m) => d.decode(m).records.map((r) => recordToJson(r).sourceIPv4Address))).toEqual([
      '0.0.0.0',
      '0.0.0.1',
      '0.0.0.2',
      '0.0.0.3',
      '0.0.0.4',
    ])
  })

  it('delivers every datagram sent before close, in order', async () => {
    const rx = dgram.createSocket('udp4')
    const got: number[] = []
    rx.on('message', (m) => got.push(m.readUInt32BE(0)))
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r))
    const t = new UdpTransport('127.0.0.1', rx.address().port, { native })
    await t.open()
    for (let i = 0; i < 100; i++) {
      const b = Buffer.alloc(64)
      b.writeUInt32BE(i, 0)
      t.send(i % 2 === 0 ? [b] : [b.subarray(0, 16), b.subarray(16)])
    }
    await t.close()
    await until(() => got.length === 100)
    rx.close()
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i))
    expect(t.stats).toEqual({ messages: 100, octets: 100 * 64, errors: 0, dropped: 0 })
    t.send([Buffer.alloc(8)])
    expect(t.stats.dropped).toBe(1)
  })

  it('sends staged messages once the synchronous work ends, copied, in order, without close', async () => {
    const rx = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 })
    const got: Buffer[] = []
    rx.on('message', (m) => got.push(m))
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r))
    const t = new UdpTransport('127.0.0.1', rx.address().port, { native })
    await t.open()
    // One buffer overwritten after each call (as the exporter does): the transport must have copied it.
    const reused = Buffer.alloc(1400)
    const sizes = Array.from({ length: 3 * BURST_MESSAGES + 5 }, (_, i) => 16 + ((i * 397) % 1384))
    sizes.forEach((n, i) => {
      reused.fill(i & 0xff, 0, n)
      reused.writeUInt32BE(i, 0)
      expect(t.sendReused(reused.subarray(0, n))).toBe(false)
    })
    // Nothing more is sent and the transport stays open: the last burst still leaves.
    await until(() => got.length === sizes.length)
    expect(got.map((m) => m.readUInt32BE(0))).toEqual(sizes.map((_, i) => i))
    got.forEach((m, i) => {
      expect(m.byteLength).toBe(sizes[i])
      expect(m.subarray(4).every((b) => b === (i & 0xff))).toBe(true)
    })
    expect(t.stats).toEqual({
      messages: sizes.length,
      octets: sizes.reduce((a, b) => a + b),
      errors: 0,
      dropped: 0,
    })
    await t.close()
    rx.close()
  })

  it('resolves names at open and keeps the old address when re-resolution fails', async () => {
    let calls = 0
    const t = new UdpTransport('collector.test', 4739, {
      native,
      resolveIntervalMs: 20,
      resolve: (host) => {
        calls++
        if (calls > 1) return Promise.reject(new Error(`no ${host}`))
        return Promise.resolve({ address: '127.0.0.1', family: 4 })
      },
    })
    await t.open()
    expect(t.remoteAddress).toBe('127.0.0.1')
    await until(() => t.resolveErrors > 0)
    expect(t.remoteAddress).toBe('127.0.0.1')
    await t.close()
  })

  it('uses the socket kind asked for, reports its endpoints and binds the local address', async () => {
    const rx = dgram.createSocket('udp4')
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r))
    const t = new UdpTransport('127.0.0.1', rx.address().port, { native, localAddress: '127.0.0.1' })
    expect(t.usesNativeSocket).toBe(native)
    await t.open()
    const ep = t.socketEndpoints()
    expect(ep?.remote).toEqual({ address: '127.0.0.1', port: rx.address().port })
    expect(ep?.local.address).toBe('127.0.0.1')
    expect(ep?.local.port).toBeGreaterThan(0)
    const from = new Promise<number>((r) => rx.once('message', (_m, info) => r(info.port)))
    t.send([Buffer.alloc(20)])
    expect(await from).toBe(ep?.local.port)
    await t.close()
    rx.close()
    await expect(
      new UdpTransport('127.0.0.1', 4739, { native, localAddress: '192.0.2.1' }).open(),
    ).rejects.toThrow(/cannot use 127\.0\.0\.1 from 192\.0\.2\.1/)
  })

  it('counts the ICMP port unreachable of a closed port as an error and keeps sending', async () => {
    const first = dgram.createSocket('udp4')
    await new Promise<void>((r) => first.bind(0, '127.0.0.1', r))
    const port = first.address().port
    await new Promise<void>((r) => first.close(() => r())) // nobody listens on `port` now
    const t = new UdpTransport('127.0.0.1', port, { native })
    await t.open()
    for (let i = 0; i < 50 && t.stats.errors === 0; i++) {
      t.send([Buffer.alloc(32)])
      await new Promise((r) => setTimeout(r, 10))
    }
    expect(t.stats.errors).toBeGreaterThan(0)
    // A collector comes up on the port: the same transport's datagrams reach it.
    const rx = dgram.createSocket('udp4')
    const got: number[] = []
    rx.on('message', (m) => got.push(m.readUInt32BE(0)))
    await new Promise<void>((r) => rx.bind(port, '127.0.0.1', r))
    for (let i = 0; i < 5; i++) {
      const b = Buffer.alloc(32)
      b.writeUInt32BE(1000 + i, 0)
      t.send([b])
    }
    await until(() => got.length === 5)
    expect(got).toEqual([1000, 1001, 1002, 1003, 1004])
    await t.close()
    rx.close()
  })
})

describe('UDP transport, native socket results', () => {
  // A scripted socket: each send() returns the next scripted result and records which datagrams it was asked for.
  function scripted(results: number[]) {
    const calls: { from: number; to: number; first: number }[] = []
    class FakeSocket implements NativeUdpSocket {
      send(data: Uint8Array, ends: Int32Array, from: number, to: number): number {
        const start = from === 0 ? 0 : ends[from - 1]!
        calls.push({ from, to, first: data[start]! })
        const r = results.shift() ?? to - from
        return r > 0 ? Math.min(r, to - from) : r
      }
      local() {
        return { address: '127.0.0.1', port: 1 }
      }
      close(): void {}
    }
    return { calls, FakeSocket }
  }

  it('resumes after a partial send, skips and counts a failed datagram, drops and counts after a full buffer', async () => {
    // 10 datagrams: 3 leave, datagram 3 fails (-ECONNREFUSED), 2 leave, then the buffer stays full (0).
    const { calls, FakeSocket } = scripted([3, -111, 2, 0])
    const t = new UdpTransport('127.0.0.1', 4739, { nativeSocketClass: FakeSocket })
    expect(t.usesNativeSocket).toBe(true)
    await t.open()
    for (let i = 0; i < 10; i++) t.send([Buffer.from([i, 0, 0, 0])])
    await Promise.resolve() // the burst leaves at the end of the synchronous work
    expect(calls.map((c) => [c.from, c.first])).toEqual([
      [0, 0],
      [3, 3],
      [4, 4],
      [6, 6],
    ])
    expect(calls.every((c) => c.to === 10)).toBe(true)
    expect(t.stats).toEqual({ messages: 10, octets: 40, errors: 1, dropped: 4 })
    await t.close()
  })
})

describe('JSON transport', () => {
  it('writes one line per data record, honours backpressure and flushes on close', async () => {
    const out = new PassThrough({ highWaterMark: 64 })
    const lines: string[] = []
    const t = new JsonTransport('mem', { stream: out })
    await t.open()
    const { e, add } = exporter(t)
    for (let i = 0; i < 100; i++) {
      add(i)
      e.flush()
    }
    // Nobody reads yet: the stream is full and lines wait in the transport.
    out.on('data', (c: Buffer) => lines.push(...c.toString().split('\n').filter(Boolean)))
    await e.close()
    await until(() => lines.length === 100)
    expect(JSON.parse(lines[99] ?? '{}')).toEqual({ sourceIPv4Address: '0.0.0.99', octetDeltaCount: 99 })
    expect(t.stats.dropped).toBe(0)
  })

  it('tells a producer that can wait when the stream asks to drain, and when it has room again', async () => {
    const out = new PassThrough({ highWaterMark: 64 })
    const t = new JsonTransport('mem', { stream: out })
    await t.open()
    const { e, add } = exporter(t)
    expect(t.whenWritable()).toBeUndefined()
    for (let i = 0; i < 10; i++) add(i)
    e.flush()
    // Nobody reads: the first lines filled the stream.
    const w = t.whenWritable()
    expect(w).toBeInstanceOf(Promise)
    let settled = false
    void w?.then(() => (settled = true))
    await new Promise((r) => setImmediate(r))
    expect(settled).toBe(false)
    out.resume()
    await w
    expect(t.whenWritable()).toBeUndefined()
    await e.close()
    expect(t.stats.dropped).toBe(0)
  })

  it('settles a pending wait when it closes', async () => {
    const out = new PassThrough({ highWaterMark: 64 })
    const t = new JsonTransport('mem', { stream: out })
    await t.open()
    const { e, add } = exporter(t)
    for (let i = 0; i < 10; i++) add(i)
    e.flush()
    const w = t.whenWritable()
    expect(w).toBeInstanceOf(Promise)
    out.resume()
    await e.close()
    await w
  })
})
