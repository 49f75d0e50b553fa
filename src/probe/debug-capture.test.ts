// Troubleshooting capture (issue 5): a real IpfixExporter over UDP and TCP on loopback, recorded through the
// TransportTap into a pcap that our reader and tshark's cflow dissector both read back; size and time limits.
import { spawnSync } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openCaptureFiles } from '../capture/file-source.js'
import { IpfixExporter } from '../ipfix/exporter.js'
import { Template } from '../ipfix/template.js'
import { headerOf } from '../ipfix/testing.js'
import {
  firstSetId,
  TransportTap,
  type MessageRecorder,
  type SocketEndpoints,
} from '../ipfix/transport-tap.js'
import { TcpTransport } from '../ipfix/transport-tcp.js'
import { UdpTransport } from '../ipfix/transport-udp.js'
import type { Transport } from '../ipfix/transport.js'
import {
  DEBUG_CAPTURE_MAX_BYTES,
  DEBUG_CAPTURE_MAX_SECONDS,
  DebugCaptureRecorder,
  debugCaptureLimits,
  ipv6Bytes,
  LINKTYPE_RAW,
} from './debug-capture.js'

const tmp = mkdtempSync(join(tmpdir(), 'flowtel-debugcap-'))
afterAll(() => (process.env.KEEP_TMP ? console.log(tmp) : rmSync(tmp, { recursive: true, force: true })))
const hasTshark = spawnSync('tshark', ['--version'], { encoding: 'utf8' }).status === 0

const tpl = Template.fromNames(256, [['sourceIPv4Address'], ['octetDeltaCount'], ['applicationName']])

/** Exports `n` records (several messages, templates first) through `t`, then closes the exporter. */
async function exportSession(t: Transport, n: number, odid: number): Promise<void> {
  const e = new IpfixExporter(
    {
      observationDomainId: odid,
      maxMessageSize: 512,
      templateRefreshSeconds: 600,
      templateRefreshMessages: 0,
      statsIntervalSeconds: 0,
      now: () => Date.now() / 1000,
    },
    [t],
  )
  e.addTemplate(tpl)
  for (let i = 0; i < n; i++) {
    const name = `app-${i}`
    const w = e.beginRecord(tpl, 4 + 8 + 3 + name.length)
    w.ipv4(0x0a000000 + i)
    w.u64(1000 + i)
    w.string(name)
    e.endRecord()
  }
  await e.close()
}

const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timeout')
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Packets of a pcap file as read by our own reader: [linkType, bytes]. */
async function readPcap(path: string): Promise<{ linkType: number; data: Uint8Array }[]> {
  const src = await openCaptureFiles([path])
  const out: { linkType: number; data: Uint8Array }[] = []
  for await (const b of src.batches()) {
    for (let i = 0; i < b.count; i++) {
      const off = b.offset[i] ?? 0
      out.push({ linkType: b.linkType[i] ?? -1, data: b.buf.slice(off, off + (b.caplen[i] ?? 0)) })
    }
  }
  expect([...src.stats.formatErrors.keys()]).toEqual([])
  await src.close()
  return out
}

function tshark(args: string[]): string {
  const r = spawnSync('tshark', ['-n', ...args], { encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  return r.stdout
}

describe('debug capture of a UDP export session', () => {
  for (const [family, host] of [
    ['IPv4', '127.0.0.1'],
    ['IPv6', '::1'],
  ] as const) {
    it(`${family}: the pcap holds every datagram the collector got, with the socket's real addresses`, async () => {
      const rx = dgram.createSocket(family === 'IPv4' ? 'udp4' : 'udp6')
      const got: Buffer[] = []
      rx.on('message', (m) => got.push(m))
      await new Promise<void>((r) => rx.bind(0, host, r))
      const port = rx.address().port
      try {
        const udp = new UdpTransport(host, port)
        const rec = new DebugCaptureRecorder()
        const tap = new TransportTap(udp, rec)
        await tap.open()
        const local = udp.socketEndpoints()?.local
        expect(local?.port).toBeGreaterThan(0)
        rec.start({ maxBytes: 1 << 20, maxSeconds: 60 })
        await exportSession(tap, 200, 77)
        const state = rec.stop()
        await until(() => got.length === udp.stats.messages)
        expect(got.length).toBeGreaterThan(3)
        expect(state).toMatchObject({ running: false, packets: got.length, stopReason: 'stopped' })
        const file = join(tmp, `udp-${family}.pcap`)
        const bytes = rec.pcap()
        expect(bytes.byteLength).toBe(state.bytes)
        writeFileSync(file, bytes)

        const pkts = await readPcap(file)
        expect(pkts.length).toBe(got.length)
        const ipLen = family === 'IPv4' ? 20 : 40
        pkts.forEach((p, i) => {
          expect(p.linkType).toBe(LINKTYPE_RAW)
          const v = new DataView(p.data.buffer, p.data.byteOffset, p.data.byteLength)
          expect(v.getUint8(0) >> 4).toBe(family === 'IPv4' ? 4 : 6)
          expect(v.getUint16(ipLen)).toBe(local?.port)
          expect(v.getUint16(ipLen + 2)).toBe(port)
          expect(Buffer.from(p.data.subarray(ipLen + 8)).equals(got[i] ?? Buffer.alloc(0))).toBe(true)
          expect(headerOf(p.data.subarray(ipLen + 8)).odid).toBe(77)
        })

        if (!hasTshark) return
        const checks = ['-o', 'udp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE']
        const decodeAs = ['-d', `udp.port==${port},cflow`]
        const fields = tshark([
          '-r',
          file,
          ...decodeAs,
          '-T',
          'fields',
          '-e',
          'cflow.od_id',
          '-e',
          'udp.srcport',
          '-e',
          'cflow.template_id',
        ])
        const rows = fields.trim().split('\n')
        expect(rows.length).toBe(got.length)
        for (const r of rows) expect(r.split('\t').slice(0, 2)).toEqual(['77', String(local?.port)])
        // Every record the exporter sent is decoded (applicationName shows as a field of each flow).
        const flows = tshark(['-r', file, ...decodeAs, '-T', 'fields', '-e', 'cflow.octets'])
        const octets = flows.split(/[\n,]/).filter((s) => s !== '')
        expect(octets.length).toBe(200)
        expect(octets.map(Number).sort((a, b) => a - b)[0]).toBe(1000)
        // The conformance gate of reference/standards.md §6.1: nothing malformed, no expert info.
        expect(tshark(['-r', file, ...decodeAs, ...checks, '-Y', '_ws.expert || _ws.malformed'])).toBe('')
      } finally {
        rx.close()
      }
    })
  }
})

describe('debug capture of a TCP export session', () => {
  it('records data segments with growing sequence numbers that tshark reassembles into the messages', async () => {
    const received: Buffer[] = []
    const server = net.createServer((s) => s.on('data', (d) => received.push(d)))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    try {
      const tcp = new TcpTransport('127.0.0.1', port)
      const rec = new DebugCaptureRecorder()
      const tap = new TransportTap(tcp, rec)
      await tap.open()
      rec.start({})
      await exportSession(tap, 150, 5)
      const state = rec.stop()
      const stream = Buffer.concat(received)
      await until(() => Buffer.concat(received).byteLength === tcp.stats.octets)
      expect(state.packets).toBe(tcp.stats.messages)
      const file = join(tmp, 'tcp.pcap')
      writeFileSync(file, rec.pcap())
      const pkts = await readPcap(file)
      // Sequence numbers: 1, then +payload each segment; the payloads concatenated are the TCP stream.
      let seq = 1
      const payloads: Uint8Array[] = []
      for (const p of pkts) {
        const v = new DataView(p.data.buffer, p.data.byteOffset, p.data.byteLength)
        expect(v.getUint16(22)).toBe(port)
        expect(v.getUint32(24)).toBe(seq)
        expect(v.getUint8(33)).toBe(0x18)
        const payload = p.data.subarray(40)
        seq += payload.byteLength
        payloads.push(payload)
      }
      expect(Buffer.concat(payloads).equals(Buffer.concat(received))).toBe(true)
      expect(stream.byteLength).toBeGreaterThan(0)

      if (!hasTshark) return
      const decodeAs = ['-d', `tcp.port==${port},cflow`]
      const ods = tshark(['-r', file, ...decodeAs, '-T', 'fields', '-e', 'cflow.od_id'])
      const odRows = ods.split(/[\n,]/).filter((s) => s !== '')
      expect(odRows.length).toBe(tcp.stats.messages)
      expect(new Set(odRows)).toEqual(new Set(['5']))
      const octets = tshark(['-r', file, ...decodeAs, '-T', 'fields', '-e', 'cflow.octets'])
      expect(octets.split(/[\n,]/).filter((s) => s !== '').length).toBe(150)
      const checks = ['-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE']
      expect(tshark(['-r', file, ...decodeAs, ...checks, '-Y', '_ws.expert || _ws.malformed'])).toBe('')
    } finally {
      await new Promise<void>((r) => server.close(() => r()))
    }
  })
})

describe('debug capture limits', () => {
  const ep: SocketEndpoints = {
    protocol: 'udp',
    local: { address: '192.0.2.1', port: 40000 },
    remote: { address: '198.51.100.7', port: 4739 },
  }
  const msg = (n: number): Uint8Array[] => [new Uint8Array(16).fill(1), new Uint8Array(n).fill(2)]

  it('stops at maxBytes without passing it (size-limit), keeping what fit', () => {
    const rec = new DebugCaptureRecorder({ schedule: () => () => {} })
    rec.start({ maxBytes: 2048 })
    let sent = 0
    while (rec.active && sent < 100) {
      rec.record(ep, msg(200))
      sent++
    }
    const s = rec.state()
    // 24-octet file header, then 16 + 20 + 8 + 216 = 260 per packet: 7 fit into 2048, the 8th stops it.
    expect(s).toMatchObject({ running: false, stopReason: 'size-limit', packets: 7, bytes: 24 + 7 * 260 })
    expect(sent).toBe(8)
    expect(rec.pcap().byteLength).toBe(s.bytes)
    rec.record(ep, msg(10))
    expect(rec.state().packets).toBe(7)
  })

  it('stops at maxSeconds by the injected clock (time-limit), even with no traffic', () => {
    let now = 1_800_000_000_000
    const rec = new DebugCaptureRecorder({ now: () => now, schedule: () => () => {} })
    rec.start({ maxSeconds: 5 })
    rec.record(ep, msg(10))
    now += 4999
    rec.record(ep, msg(10))
    expect(rec.state()).toMatchObject({ running: true, packets: 2 })
    now += 1
    expect(rec.state()).toMatchObject({ running: false, packets: 2, stopReason: 'time-limit' })
    rec.record(ep, msg(10))
    expect(rec.state().packets).toBe(2)
    expect(rec.state().stoppedAt).toBe(new Date(1_800_000_005_000).toISOString())
  })

  it('the scheduled timer stops an idle capture', () => {
    let fire: (() => void) | undefined
    let now = 0
    const rec = new DebugCaptureRecorder({
      now: () => now,
      schedule: (ms, cb) => {
        expect(ms).toBe(2000)
        fire = cb
        return () => (fire = undefined)
      },
    })
    rec.start({ maxSeconds: 2 })
    expect(rec.active).toBe(true)
    now = 2000
    fire?.()
    expect(rec.active).toBe(false)
  })

  it('a restart discards the previous pcap and restarts TCP sequence numbers', () => {
    const rec = new DebugCaptureRecorder({ schedule: () => () => {} })
    rec.start({})
    rec.record(ep, msg(100))
    rec.start({})
    expect(rec.state()).toMatchObject({ running: true, packets: 0, bytes: 24 })
    expect(rec.pcap().byteLength).toBe(24)
  })

  it('rejects limits outside the ranges with a message naming the option', () => {
    expect(debugCaptureLimits({})).toEqual({ maxBytes: 10 * 1024 * 1024, maxSeconds: 60 })
    expect(() => debugCaptureLimits({ maxBytes: DEBUG_CAPTURE_MAX_BYTES + 1 })).toThrow(/maxBytes/)
    expect(() => debugCaptureLimits({ maxBytes: 10 })).toThrow(/maxBytes/)
    expect(() => debugCaptureLimits({ maxBytes: 5000.5 })).toThrow(/maxBytes/)
    expect(() => debugCaptureLimits({ maxBytes: '5000' })).toThrow(/maxBytes/)
    expect(() => debugCaptureLimits({ maxSeconds: 0 })).toThrow(/maxSeconds/)
    expect(() => debugCaptureLimits({ maxSeconds: DEBUG_CAPTURE_MAX_SECONDS + 1 })).toThrow(/maxSeconds/)
    expect(() => debugCaptureLimits({ maxSeconds: Number.NaN })).toThrow(/maxSeconds/)
    expect(() => new DebugCaptureRecorder().start({ maxBytes: -1 })).toThrow(RangeError)
  })

  it('an empty capture is a valid pcap file header', () => {
    const h = new DebugCaptureRecorder().pcap()
    const v = new DataView(h.buffer, h.byteOffset, h.byteLength)
    expect([h.byteLength, v.getUint32(0, true), v.getUint32(20, true)]).toEqual([24, 0xa1b2c3d4, 101])
  })

  it('writes IPv6 addresses as the 16 octets they denote', () => {
    expect(Buffer.from(ipv6Bytes('2001:db8::1')).toString('hex')).toBe('20010db8000000000000000000000001')
    expect(Buffer.from(ipv6Bytes('::ffff:10.1.2.3')).toString('hex')).toBe('00000000000000000000ffff0a010203')
    expect(Buffer.from(ipv6Bytes('fe80::1%eth0')).toString('hex')).toBe('fe800000000000000000000000000001')
    expect(Buffer.from(ipv6Bytes('10.1.2.3')).toString('hex')).toBe('00000000000000000000ffff0a010203')
  })
})

describe('TransportTap', () => {
  it('forwards every message and hands it to the recorder only while active', () => {
    const sent: Uint8Array[][] = []
    const inner: Transport = {
      name: 'fake://x',
      periodicTemplates: true,
      stats: { messages: 0, octets: 0, errors: 0, dropped: 0 },
      open: () => Promise.resolve(),
      send: (m) => void sent.push(m),
      onNewSession: () => {},
      close: () => Promise.resolve(),
    }
    const recorded: { ep: SocketEndpoints; m: readonly Uint8Array[] }[] = []
    const rec: MessageRecorder & { active: boolean } = {
      active: false,
      record: (ep, m) => void recorded.push({ ep, m }),
    }
    const ep: SocketEndpoints = {
      protocol: 'udp',
      local: { address: '127.0.0.1', port: 1 },
      remote: { address: '127.0.0.1', port: 2 },
    }
    let haveSocket = true
    const tap = new TransportTap(inner, rec, () => (haveSocket ? ep : undefined))
    expect([tap.name, tap.periodicTemplates]).toEqual(['fake://x', true])
    const m1 = [new Uint8Array([1])]
    const m2 = [new Uint8Array([2])]
    const m3 = [new Uint8Array([3])]
    tap.send(m1)
    rec.active = true
    tap.send(m2)
    haveSocket = false
    tap.send(m3)
    expect(sent).toEqual([m1, m2, m3])
    expect(recorded).toEqual([{ ep, m: m2 }])
    expect(tap.unrecorded).toBe(1)
  })
})

describe('template sends per tap', () => {
  it('counts template-only messages of a real exporter session, whatever the chunking', async () => {
    const sent: Uint8Array[][] = []
    const inner: Transport = {
      name: 'mem',
      stats: { messages: 0, octets: 0, errors: 0, dropped: 0 },
      open: () => Promise.resolve(),
      send: (m) => void sent.push(m),
      onNewSession: () => {},
      close: () => Promise.resolve(),
    }
    const tap = new TransportTap(inner, new DebugCaptureRecorder())
    await exportSession(tap, 100, 1)
    const whole = sent.map((m) => Buffer.concat(m))
    const templates = whole.filter((m) => m.readUInt16BE(16) === 2 || m.readUInt16BE(16) === 3).length
    expect(templates).toBe(1)
    expect(tap.templateSends).toBe(templates)
    expect(whole.length).toBeGreaterThan(2)
    for (const m of whole) {
      const id = m.readUInt16BE(16)
      // Split at every position around the Set ID: the same answer.
      for (const cut of [15, 16, 17, 18])
        expect(firstSetId([m.subarray(0, cut), new Uint8Array(0), m.subarray(cut)])).toBe(id)
    }
    expect(firstSetId([new Uint8Array(17)])).toBe(-1)
  })
})

describe('TCP segments', () => {
  it('splits a message larger than one segment and keeps the sequence numbers continuous (IPv6)', async () => {
    const rec = new DebugCaptureRecorder({ schedule: () => () => {} })
    rec.start({})
    const ep: SocketEndpoints = {
      protocol: 'tcp',
      local: { address: '2001:db8::10', port: 40001 },
      remote: { address: '2001:db8::20', port: 4739 },
    }
    const big = new Uint8Array(65535).map((_, i) => i & 0xff)
    rec.record(ep, [big.subarray(0, 16), big.subarray(16)])
    rec.record(ep, [new Uint8Array(100).fill(7)])
    expect(rec.state().packets).toBe(3)
    const file = join(tmp, 'tcp-big.pcap')
    writeFileSync(file, rec.pcap())
    const pkts = await readPcap(file)
    const seqs = pkts.map((p) => new DataView(p.data.buffer, p.data.byteOffset).getUint32(40 + 4))
    expect(seqs).toEqual([1, 65001, 65536])
    const payload = Buffer.concat(pkts.slice(0, 2).map((p) => p.data.subarray(60)))
    expect(payload.equals(Buffer.from(big))).toBe(true)
    for (const p of pkts) {
      const v = new DataView(p.data.buffer, p.data.byteOffset, p.data.byteLength)
      expect(v.getUint16(4)).toBe(p.data.byteLength - 40) // IPv6 payload length
      expect(Buffer.from(p.data.subarray(8, 24)).toString('hex')).toBe('20010db8000000000000000000000010')
    }
  })
})
