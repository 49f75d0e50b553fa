// IPFIX over TLS (RFC 7011 §10.4, §11): our TLS exporter (transport-tls.ts) against our collector's tls://
// listener (collector/listener.ts), with certificates made by the openssl CLI in a temp dir. Shows: every
// record decoded; a new connection resends templates; a wrong CA or server name is refused and no IPFIX byte
// ever leaves in cleartext; a listener that requires client certificates refuses an exporter without one;
// and `openssl s_client` completes a handshake with the listener.
import { spawn } from 'node:child_process'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FlowCollector, type CollectedRecord } from '../src/collector/decode-message.js'
import { listen, parseListen, type Listener, type ListenOptions } from '../src/collector/listener.js'
import { recordToJson } from '../src/ipfix/decoder.js'
import { IpfixExporter } from '../src/ipfix/exporter.js'
import { Template } from '../src/ipfix/template.js'
import { TlsTransport, type TlsTransportOptions } from '../src/ipfix/transport-tls.js'
import { MemoryTransport } from '../src/ipfix/testing.js'
import { IpfixDecoder } from '../src/ipfix/decoder.js'
import { DEFAULT_PROBE_OPTIONS, runProbe } from '../src/probe/probe.js'
import { collectorDestinations } from '../src/probe/destinations.js'
import { REPO_ROOT } from './helpers/shared.js'
import { haveOpenssl, makeTestCerts, type TestCerts } from './helpers/tls-certs.js'
import path from 'node:path'

const tpl = Template.fromNames(256, [['sourceIPv4Address'], ['octetDeltaCount']])

function exporterOn(t: TlsTransport): { e: IpfixExporter; add: (i: number) => void } {
  const e = new IpfixExporter(
    {
      observationDomainId: 7,
      maxMessageSize: 1472,
      templateRefreshSeconds: 600,
      templateRefreshMessages: 0,
      statsIntervalSeconds: 0,
      now: () => Date.now() / 1000,
    },
    [t],
  )
  e.addTemplate(tpl)
  return {
    e,
    add: (i) => {
      const w = e.beginRecord(tpl, 12)
      w.ipv4(0x0a000000 + i)
      w.u64(i)
      e.endRecord()
    },
  }
}

const until = async (cond: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

interface Collector {
  l: Listener
  col: FlowCollector
  records: CollectedRecord[]
}

async function tlsCollector(opts: ListenOptions, port = 0): Promise<Collector> {
  const col = new FlowCollector()
  const records: CollectedRecord[] = []
  const l = await listen(
    { protocol: 'tls', host: '127.0.0.1', port },
    col,
    (o) => records.push(...o.records),
    opts,
  )
  return { l, col, records }
}

const fast = { reconnectInitialMs: 30, reconnectMaxMs: 200 }

describe.skipIf(!haveOpenssl())('IPFIX over TLS: our exporter to our collector', () => {
  let certs: TestCerts
  let server: ListenOptions
  beforeAll(() => {
    certs = makeTestCerts()
    server = { tls: { certFile: certs.serverCert, keyFile: certs.serverKey } }
  })
  afterAll(() => certs.remove())

  it('parses tls:// listen addresses and requires a certificate for them', async () => {
    expect(parseListen('tls://[::1]:4740')).toEqual({ protocol: 'tls', host: '::1', port: 4740 })
    await expect(
      listen({ protocol: 'tls', host: '127.0.0.1', port: 0 }, new FlowCollector(), () => {}),
    ).rejects.toThrow(/certificate and key are required/)
    await expect(
      listen({ protocol: 'tls', host: '127.0.0.1', port: 0 }, new FlowCollector(), () => {}, {
        tls: { certFile: '/nonexistent/cert.pem', keyFile: certs.serverKey },
      }),
    ).rejects.toThrow(/certificate file "\/nonexistent\/cert.pem"/)
    expect(() => new TlsTransport('127.0.0.1', 1, { caFile: '/nonexistent/ca.pem' })).toThrow(
      /CA file "\/nonexistent\/ca.pem"/,
    )
    expect(() => new TlsTransport('127.0.0.1', 1, { certFile: certs.clientCert })).toThrow(/both/)
  })

  it('decodes every record, and a new connection starts with the templates again', async () => {
    const c = await tlsCollector(server)
    let c2: Collector | undefined
    const t = new TlsTransport('127.0.0.1', c.l.port, { caFile: certs.caCert, ...fast })
    try {
      expect(t.name).toBe(`tls://127.0.0.1:${c.l.port}`)
      await t.open()
      expect(t.isConnected).toBe(true)
      const { e, add } = exporterOn(t)
      for (let i = 1; i <= 300; i++) add(i)
      e.flush()
      await until(() => c.records.length === 300)
      expect(c.records.map((r) => recordToJson(r).octetDeltaCount)).toEqual(
        Array.from({ length: 300 }, (_, i) => i + 1),
      )
      expect(c.records.every((r) => r.exporter === '127.0.0.1' && r.odid === 7)).toBe(true)
      // The collector goes away and comes back on the same port: the exporter reconnects (new TLS session),
      // resends its template first, and the data decodes although the old session's templates died with it.
      const port = c.l.port
      await c.l.close()
      await until(() => !t.isConnected)
      c2 = await tlsCollector(server, port)
      await until(() => t.isConnected)
      add(1000)
      add(1001)
      await e.close()
      await until(() => c2!.records.length === 2)
      expect(c2.records.map((r) => recordToJson(r).octetDeltaCount)).toEqual([1000, 1001])
      expect(c2.col.allCounters()['no_template'] ?? 0).toBe(0)
      expect(t.connections).toBe(2)
    } finally {
      await t.close()
      await c.l.close()
      await c2?.l.close()
    }
  })

  it('with mutual TLS, an exporter with a client certificate is accepted', async () => {
    const c = await tlsCollector({ tls: { ...server.tls!, clientCaFile: certs.caCert } })
    const t = new TlsTransport('localhost', c.l.port, {
      caFile: certs.caCert,
      certFile: certs.clientCert,
      keyFile: certs.clientKey,
      ...fast,
    })
    try {
      await t.open()
      const { e, add } = exporterOn(t)
      add(5)
      await e.close()
      await until(() => c.records.length === 1)
      expect(recordToJson(c.records[0]!).sourceIPv4Address).toBe('10.0.0.5')
    } finally {
      await t.close()
      await c.l.close()
    }
  })

  it('with mutual TLS required, an exporter without a client certificate is refused', async () => {
    const c = await tlsCollector({ tls: { ...server.tls!, clientCaFile: certs.caCert } })
    const t = new TlsTransport('127.0.0.1', c.l.port, { caFile: certs.caCert, ...fast })
    try {
      await t.open()
      const { e, add } = exporterOn(t)
      add(1)
      e.flush()
      await until(() => (c.l.counters['tls_handshake_errors'] ?? 0) >= 2 && t.stats.errors >= 1)
      await e.close()
      expect(c.records).toHaveLength(0)
      expect(c.l.counters['connections'] ?? 0).toBe(0)
    } finally {
      await t.close()
      await c.l.close()
    }
  })

  it.each([
    [
      'an unrelated CA',
      (x: TestCerts): TlsTransportOptions => ({ caFile: x.otherCaCert }),
      /self[- ]signed|unable to get|unable to verify/i,
    ],
    [
      'no CA file (system CAs)',
      (): TlsTransportOptions => ({}),
      /self[- ]signed|unable to get|unable to verify/i,
    ],
    [
      'the wrong server name',
      (x: TestCerts): TlsTransportOptions => ({ caFile: x.caCert, serverName: 'collector.example' }),
      /collector\.example|altnames/i,
    ],
  ])('refuses a collector verified with %s, counts errors and sends nothing', async (_n, o, why) => {
    const c = await tlsCollector(server)
    const t = new TlsTransport('127.0.0.1', c.l.port, { ...o(certs), ...fast })
    try {
      await t.open()
      expect(t.isConnected).toBe(false)
      const { e, add } = exporterOn(t)
      add(1)
      e.flush()
      await until(() => t.stats.errors >= 2) // it keeps retrying, and keeps refusing
      expect(t.isConnected).toBe(false)
      expect(t.connections).toBe(0)
      expect(t.stats.messages).toBe(0)
      expect(t.lastError).toMatch(why)
      await e.close()
      expect(c.records).toHaveLength(0)
    } finally {
      await t.close()
      await c.l.close()
    }
  })

  it('never writes IPFIX in cleartext: a plain TCP peer only sees TLS records', async () => {
    const seen: Buffer[] = []
    const plain = net.createServer((s) => {
      s.on('data', (d) => seen.push(d))
      s.on('error', () => {})
    })
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
    const port = (plain.address() as net.AddressInfo).port
    const t = new TlsTransport('127.0.0.1', port, { caFile: certs.caCert, ...fast, connectTimeoutMs: 300 })
    try {
      const opened = t.open()
      const { e, add } = exporterOn(t)
      add(1)
      e.flush()
      await until(() => seen.length > 0)
      await until(() => t.stats.errors >= 1) // the handshake times out against a peer that never answers
      await opened
      await e.close()
      const bytes = Buffer.concat(seen)
      expect(bytes[0]).toBe(0x16) // TLS handshake record (ClientHello)
      expect(bytes[1]).toBe(0x03)
      expect(bytes.indexOf(Buffer.from([0x00, 0x0a]))).not.toBe(0) // not an IPFIX header
      expect(t.stats.messages).toBe(0)
    } finally {
      await t.close()
      await new Promise<void>((r) => plain.close(() => r()))
    }
  })

  it('the probe exports a capture over TLS (--transport tls) and the collector decodes every record', async () => {
    const c = await tlsCollector(server)
    const mem = new MemoryTransport()
    try {
      await runProbe({
        ...DEFAULT_PROBE_OPTIONS,
        reads: [path.join(REPO_ROOT, 'test/fixtures/pcap/interop/ipfixprobe-smtp.pcap')],
        destinations: collectorDestinations([`localhost:${c.l.port}`], 'tls', {
          tls: { caFile: certs.caCert },
        }),
        extraTransports: [mem],
      })
      const dec = new IpfixDecoder({ transport: 'file' })
      const want = mem.messages.flatMap((m) =>
        dec.decode(m).records.map((r) => JSON.stringify(recordToJson(r))),
      )
      await until(() => c.records.length === want.length)
      expect(want.length).toBeGreaterThan(0)
      expect(c.records.map((r) => JSON.stringify(recordToJson(r))).sort()).toEqual(want.sort())
      // With the wrong CA the probe still finishes, and its summary says what went wrong.
      const bad = await runProbe({
        ...DEFAULT_PROBE_OPTIONS,
        reads: [path.join(REPO_ROOT, 'test/fixtures/pcap/interop/ipfixprobe-smtp.pcap')],
        destinations: collectorDestinations([`localhost:${c.l.port}`], 'tls', {
          tls: { caFile: certs.otherCaCert },
        }),
      })
      const problem = bad.transportProblems?.[`tls://localhost:${c.l.port}`]
      expect(problem?.errors).toBeGreaterThan(0)
      expect(problem?.dropped).toBeGreaterThan(0)
      expect(problem?.lastError).toMatch(/self[- ]signed|unable to (get|verify)/i)
      expect(c.records).toHaveLength(want.length)
    } finally {
      await c.l.close()
    }
  })

  it('openssl s_client completes a verified handshake with the listener', async () => {
    const c = await tlsCollector(server)
    try {
      // Asynchronously: a synchronous spawn would block the event loop that serves the listener.
      const r = await runOpenssl([
        's_client',
        '-connect',
        `127.0.0.1:${c.l.port}`,
        '-CAfile',
        certs.caCert,
        '-verify_return_error',
        '-verify_ip',
        '127.0.0.1',
        '-brief',
      ])
      const out = r.stdout + r.stderr
      expect(r.status, out).toBe(0)
      expect(out).toMatch(/Verification: OK/)
      expect(out).toMatch(/Protocol version: TLSv1\.[23]/)
    } finally {
      await c.l.close()
    }
  })
})

/** openssl with stdin closed at once, run without blocking the event loop (killed after 20 s). */
function runOpenssl(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.stdin.end()
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000)
    p.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ status: status ?? (signal === null ? null : -1), stdout, stderr })
    })
  })
}
