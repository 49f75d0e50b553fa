// Both UDP receive paths (the addon's recvmmsg thread and Node's dgram) on loopback: the same datagrams with
// the same source addresses over IPv4, IPv6 and a dual-stack `::` socket; native batches split by count and
// by bytes; a lone datagram delivered without a full batch; close during a flood; the kernel's drop counter
// when the receive buffer overflows while the receiving thread is blocked. No timing assertions.
import { execFileSync, spawn } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { SocketAddress } from 'node:net'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ipv6Text,
  nativeUdpReceiverClass,
  openUdpReceiver,
  type UdpReceiverKind,
  type UdpReceiverOptions,
} from './udp-receiver.js'

const nativeBuilt = nativeUdpReceiverClass() !== undefined
const kinds: UdpReceiverKind[] = nativeBuilt ? ['native', 'dgram'] : ['dgram']

function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const start = Date.now()
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve()
      else if (Date.now() - start > ms) reject(new Error(`timed out waiting for ${what}`))
      else setTimeout(tick, 5)
    }
    tick()
  })
}

/** A node -e script sending datagrams of `size` bytes of 0x01 to 127.0.0.1:port, `count` of them or forever. */
function floodScript(port: number, size: number, count = Infinity): string {
  return `const s=require('dgram').createSocket('udp4');let i=0;const b=Buffer.alloc(${size},1);
    const go=()=>{if(i++>=${count})return s.close();s.send(b,${port},'127.0.0.1',()=>setImmediate(go))};go()`
}

interface Got {
  text: string
  address: string
  port: number
}

async function openCollecting(
  kind: UdpReceiverKind,
  host: string,
  extra: Partial<UdpReceiverOptions> = {},
): Promise<{ r: Awaited<ReturnType<typeof openUdpReceiver>>; got: Got[] }> {
  const got: Got[] = []
  const r = await openUdpReceiver(
    { host, port: 0, recvBufferBytes: 1 << 20, kind, ...extra },
    (b, address, port) => got.push({ text: Buffer.from(b).toString('latin1'), address, port }),
  )
  return { r, got }
}

async function sender(type: 'udp4' | 'udp6', host: string): Promise<Socket> {
  const s = createSocket(type)
  await new Promise<void>((resolve) => s.bind(0, host, () => resolve()))
  return s
}

function send(s: Socket, data: string | Uint8Array, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => s.send(data, port, host, (e) => (e ? reject(e) : resolve())))
}

describe('ipv6Text', () => {
  it('writes IPv6 addresses as Node does (net.SocketAddress, uv_inet_ntop)', () => {
    // Words biased towards zero so that runs of zero groups, and the embedded-IPv4 forms, come up often.
    const word = fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }))
    fc.assert(
      fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), (g) => {
        const w = [0, 2, 4, 6].map((i) => (g[i]! << 16) | g[i + 1]! | 0)
        const text = g.map((x) => x.toString(16)).join(':')
        const node = new SocketAddress({ address: text, family: 'ipv6' }).address
        expect(ipv6Text(w[0]!, w[1]!, w[2]!, w[3]!)).toBe(node)
      }),
      { numRuns: 3000 },
    )
  })
})

describe.each(kinds)('UDP receiver (%s)', (kind) => {
  it.each([
    ['127.0.0.1', 'udp4', '127.0.0.1'],
    ['::1', 'udp6', '::1'],
    ['::', 'udp4', '127.0.0.1'],
    ['::', 'udp6', '::1'],
  ] as const)('on %s delivers datagrams with their source (%s from %s)', async (host, type, from) => {
    const { r, got } = await openCollecting(kind, host)
    const a = await sender(type, from)
    const b = await sender(type, from)
    try {
      expect(r.kind).toBe(kind)
      const want: Got[] = []
      for (let i = 0; i < 20; i++) {
        const s = i % 3 === 0 ? b : a
        const text = `datagram ${i} `.padEnd(10 + ((i * 37) % 300), 'x')
        await send(s, text, r.port, from)
        want.push({ text, address: from, port: s.address().port })
      }
      await waitFor(() => got.length === want.length, 'all datagrams')
      expect(got).toEqual(want)
    } finally {
      a.close()
      b.close()
      await r.close()
    }
  })

  it('keeps the receive buffer size option (SO_RCVBUF)', async () => {
    const small = await openUdpReceiver(
      { host: '127.0.0.1', port: 0, recvBufferBytes: 65536, kind },
      () => {},
    )
    const large = await openUdpReceiver(
      { host: '127.0.0.1', port: 0, recvBufferBytes: 1 << 20, kind },
      () => {},
    )
    try {
      // The kernel doubles what it grants (socket(7)); both sizes are under net.core.rmem_max here or capped.
      expect(small.recvBufferBytes()).toBe(2 * 65536)
      expect(large.recvBufferBytes()).toBeGreaterThan(small.recvBufferBytes())
    } finally {
      await small.close()
      await large.close()
    }
  })

  it('reports a port in use as a clear error', async () => {
    const first = await openUdpReceiver(
      { host: '127.0.0.1', port: 0, recvBufferBytes: 65536, kind },
      () => {},
    )
    try {
      await expect(
        openUdpReceiver({ host: '127.0.0.1', port: first.port, recvBufferBytes: 65536, kind }, () => {}),
      ).rejects.toThrow(/EADDRINUSE|in use/)
    } finally {
      await first.close()
    }
  })

  it('closes during a flood, delivers nothing afterwards and frees the port', async () => {
    const { r, got } = await openCollecting(kind, '127.0.0.1')
    // A child floods (sending from this thread would keep it too busy to receive).
    const child = spawn(process.execPath, ['-e', floodScript(r.port, 100)], { stdio: 'ignore' })
    try {
      await waitFor(() => got.length >= 500, 'the flood to arrive')
      await r.close()
      const atClose = got.length
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(got.length).toBe(atClose)
      const again = await openUdpReceiver(
        { host: '127.0.0.1', port: r.port, recvBufferBytes: 65536, kind },
        () => {},
      )
      await again.close()
    } finally {
      child.kill()
      await r.close()
    }
  })

  it('counts the kernel drops when the receive buffer overflows while the receiving thread is blocked', async () => {
    const { r, got } = await openCollecting(kind, '127.0.0.1', {
      recvBufferBytes: 4096, // the kernel's minimum, about 4.6 KiB granted: a handful of datagrams
      slots: 1,
      slotDatagrams: 4,
      dropsPollMs: 0, // native: the live figure must come from SO_RXQ_OVFL, not /proc
    })
    const sent = 2000
    const s = await sender('udp4', '127.0.0.1')
    let k = 0 // datagrams sent after the flood
    try {
      expect(r.drops()).toBe(0)
      // A child sends while this thread is blocked in execFileSync: nothing here reads or releases a batch.
      const script =
        "const s=require('dgram').createSocket('udp4');let i=0;const go=()=>{if(i++>=" +
        String(sent) +
        ')return s.close();s.send(Buffer.alloc(1000,1),' +
        String(r.port) +
        ",'127.0.0.1',go)};go()"
      execFileSync(process.execPath, ['-e', script], { stdio: 'ignore' })
      await waitFor(() => got.length > 0, 'the first datagrams')
      if (kind === 'native') {
        // The SO_RXQ_OVFL figure rides on the next datagram that gets in.
        const poke = setInterval(() => void send(s, `after ${k++}`, r.port, '127.0.0.1').catch(() => {}), 20)
        try {
          await waitFor(() => r.drops() > 0, 'SO_RXQ_OVFL drops')
        } finally {
          clearInterval(poke)
        }
      }
      await r.close()
      const received = got.filter((g) => g.text.startsWith('\x01')).length
      expect(received).toBeGreaterThan(0)
      expect(r.drops()).toBeGreaterThan(0)
      expect(received + r.drops()).toBeLessThanOrEqual(sent + k)
      expect(received).toBeLessThan(sent)
    } finally {
      s.close()
      await r.close()
    }
  })
})

describe.skipIf(!nativeBuilt)('native UDP receiver batches', () => {
  it('splits batches by datagram count and by bytes, datagrams intact and in order', async () => {
    let batches = 0
    const got: { text: string; batch: number }[] = []
    const r = await openUdpReceiver(
      {
        host: '127.0.0.1',
        port: 0,
        recvBufferBytes: 1 << 20,
        kind: 'native',
        slots: 2,
        slotDatagrams: 3,
        slotBytes: 65536,
        onBatch: () => batches++,
      },
      (b) => got.push({ text: Buffer.from(b).toString('latin1'), batch: batches }),
    )
    const s = await sender('udp4', '127.0.0.1')
    try {
      const want: string[] = []
      // Small ones (batches of at most 3), then 30 000-byte ones (at most 2 fit 64 KiB).
      for (let i = 0; i < 10; i++) want.push(`small ${i}`)
      for (let i = 0; i < 5; i++) want.push(`large ${i} `.padEnd(30_000, String.fromCharCode(97 + i)))
      for (const t of want) await send(s, t, r.port, '127.0.0.1')
      await waitFor(() => got.length === want.length, 'all datagrams')
      expect(got.map((g) => g.text)).toEqual(want)
      const sizes = new Map<number, { n: number; bytes: number }>()
      for (const g of got) {
        const b = sizes.get(g.batch) ?? { n: 0, bytes: 0 }
        sizes.set(g.batch, { n: b.n + 1, bytes: b.bytes + g.text.length })
      }
      for (const b of sizes.values()) {
        expect(b.n).toBeLessThanOrEqual(3)
        expect(b.bytes).toBeLessThanOrEqual(65536)
      }
      expect(batches).toBeGreaterThanOrEqual(5)
    } finally {
      s.close()
      await r.close()
    }
  })

  it('hands over a lone datagram without waiting for a full batch', async () => {
    const batches: number[] = []
    const { r, got } = await openCollecting('native', '::', {
      slotDatagrams: 1024,
      flushMs: 2,
      onBatch: (n) => batches.push(n),
    })
    const s = await sender('udp6', '::1')
    try {
      await send(s, 'alone', r.port, '::1')
      await waitFor(() => got.length === 1, 'the lone datagram')
      expect(got[0]).toEqual({ text: 'alone', address: '::1', port: s.address().port })
      expect(batches).toEqual([1])
    } finally {
      s.close()
      await r.close()
    }
  })
})
