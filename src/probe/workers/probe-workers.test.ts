// The probe with N metering workers against the single-threaded probe: the same flow records, one valid
// IPFIX stream (one domain, one sequence space, one template set), clear failure, no thread left behind.
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { AppCatalogue } from '../../appid/classifier.js'
import { FlowCollector } from '../../collector/decode-message.js'
import { IpfixDecoder } from '../../ipfix/decoder.js'
import { MemoryTransport } from '../../ipfix/testing.js'
import { JsonTransport } from '../../ipfix/transport-json.js'
import { dnsMessage } from '../../../test/helpers/l7.js'
import { eth, ipv4, LINKTYPE, pcapFile, PROTO, TCP, tcp, udp } from '../../../test/helpers/packet-builder.js'
import { REPO_ROOT, HAVE_SHARED_PCAPS, SHARED_PCAPS } from '../../../test/helpers/shared.js'
import { DEFAULT_PROBE_OPTIONS, runProbe, type ProbeOptions, type ProbeSummary } from '../probe.js'
import { runProbeWorkers } from './probe-workers.js'
import { liveWorkerThreads } from './worker-pool.js'

/**
 * Fixture folders read as one stream. Their captures go forward in time from file to file; a stream whose
 * time jumps back years (the whole test/fixtures/pcap tree does) meets timeouts in an order that depends on
 * which other flows share a cache, so exact equality with one thread is not expected there (see below).
 */
const FIXTURE_DIRS = ['formats', 'interop', 'ipv4', 'ipv6', 'tunnels', 'vlan'].map((d) =>
  join(REPO_ROOT, 'test/fixtures/pcap', d),
)

interface Run {
  summary: ProbeSummary
  /** Flow records as JSON lines, sorted (a multiset). */
  lines: string[]
}

function memoryJson(): { transport: JsonTransport; lines: string[] } {
  const lines: string[] = []
  let partial = ''
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const parts = (partial + chunk.toString('utf8')).split('\n')
      partial = parts.pop() ?? ''
      for (const l of parts) if (l !== '') lines.push(l)
      cb()
    },
  })
  return { transport: new JsonTransport('memory', { stream }), lines }
}

async function run(reads: string[], workers: number, extra: Partial<ProbeOptions> = {}): Promise<Run> {
  const json = memoryJson()
  const opts: ProbeOptions = {
    ...DEFAULT_PROBE_OPTIONS,
    reads,
    destinations: [],
    ...extra,
    extraTransports: [json.transport, ...(extra.extraTransports ?? [])],
  }
  const summary = workers === 0 ? await runProbe(opts) : await runProbeWorkers({ ...opts, workers })
  return { summary, lines: json.lines.sort() }
}

/** The summary figures that must not depend on the number of workers. */
function metered(s: ProbeSummary): Record<string, unknown> {
  const sorted = (r: Record<string, number>): [string, number][] =>
    Object.entries(r).sort(([a], [b]) => a.localeCompare(b))
  return {
    packets: s.packets,
    capturedBytes: s.capturedBytes,
    ipPackets: s.ipPackets,
    ipBytes: s.ipBytes,
    nonIpPackets: s.nonIpPackets,
    malformedPackets: s.malformedPackets,
    unsupportedLinkTypePackets: s.unsupportedLinkTypePackets,
    flows: s.flows,
    endReasons: sorted(s.endReasons),
    anomalies: sorted(s.anomalies),
    formatErrors: sorted(s.formatErrors),
    droppedRecords: s.export.droppedRecords,
    ipReassembly: s.ipReassembly,
    l7: s.l7,
  }
}

/** Packets and octets per flow key and direction, summed over the records (however flows were split). */
function perKeyTotals(lines: readonly string[]): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const line of lines) {
    const r = JSON.parse(line) as Record<string, unknown>
    const a = `${String(r['sourceIPv4Address'] ?? r['sourceIPv6Address'])}|${String(r['sourceTransportPort'])}`
    const b = `${String(r['destinationIPv4Address'] ?? r['destinationIPv6Address'])}|${String(r['destinationTransportPort'])}`
    const fwd = a <= b
    const key = [fwd ? a : b, fwd ? b : a, r['protocolIdentifier'], r['vlanId'], r['icmpTypeCodeIPv4']].join(
      ' ',
    )
    const n = (f: string): number => (typeof r[f] === 'number' ? r[f] : 0)
    const v = [
      n('packetDeltaCount'),
      n('octetDeltaCount'),
      n('reversePacketDeltaCount'),
      n('reverseOctetDeltaCount'),
    ]
    const t = out.get(key) ?? [0, 0, 0, 0]
    const d = fwd ? v : [v[2]!, v[3]!, v[0]!, v[1]!]
    for (let i = 0; i < 4; i++) t[i]! += d[i]!
    out.set(key, t)
  }
  return out
}

describe('probe with N metering workers', () => {
  it('exports the same flow records as one thread, with 2 and 3 workers (fixture captures)', async () => {
    const one = await run(FIXTURE_DIRS, 0, { fields: ['all'] })
    expect(one.lines.length).toBeGreaterThan(200)
    // The fragmented DNS answers of ipv4/zeek-dns-edns-ecs.pcap: the summary sums the workers' reassembly.
    expect(one.summary.ipReassembly?.reassembled).toBeGreaterThanOrEqual(4)
    for (const workers of [2, 3]) {
      const many = await run(FIXTURE_DIRS, workers, { fields: ['all'] })
      expect(metered(many.summary)).toEqual(metered(one.summary))
      // Every field of every record: keys, packets and octets both ways, times, end reasons, L7 fields.
      expect(many.lines).toEqual(one.lines)
    }
    expect(liveWorkerThreads()).toBe(0)
  })

  it('fits records to the main exporter as one thread does: a long certificate is cut, not dropped', async () => {
    // Found by the probe fuzz campaign: a worker fitted a TLS record to its own 65535-octet messages, and
    // the main exporter, whose messages fit the MTU, then dropped the whole record (certificate, SNI, JA3).
    const reads = [join(REPO_ROOT, 'test/fixtures/pcap/starttls')]
    const one = await run(reads, 0, { fields: ['tls'], mtu: 900 })
    expect(one.summary.export.droppedRecords).toBe(0)
    const two = await run(reads, 2, { fields: ['tls'], mtu: 900 })
    expect(two.summary.export.droppedRecords).toBe(0)
    expect(two.lines).toEqual(one.lines)
    expect(liveWorkerThreads()).toBe(0)
  })

  it.skipIf(!HAVE_SHARED_PCAPS)(
    'agrees with one thread over the shared captures (sweep)',
    async () => {
      // Exact per capture folder where packet time only moves forward within a file.
      for (const dir of ['tunnels', 'vlan', 'ipv6', 'malformed']) {
        const reads = [join(SHARED_PCAPS, dir)]
        const one = await run(reads, 0)
        const two = await run(reads, 2)
        expect(metered(two.summary), dir).toEqual(metered(one.summary))
        expect(two.lines, dir).toEqual(one.lines)
      }
      // All captures as one stream: packet time jumps back between files (years apart), so which flows a
      // timeout pass finds first, and thus end reasons and splits, may depend on the other flows in the same
      // cache. What must match: every packet and octet, per flow key and direction, and every anomaly.
      const one = await run([SHARED_PCAPS], 0)
      const three = await run([SHARED_PCAPS], 3)
      const a = metered(one.summary)
      const b = metered(three.summary)
      for (const k of [
        'packets',
        'capturedBytes',
        'ipPackets',
        'ipBytes',
        'nonIpPackets',
        'malformedPackets',
        'anomalies',
      ])
        expect(b[k], k).toEqual(a[k])
      expect(perKeyTotals(three.lines)).toEqual(perKeyTotals(one.lines))
    },
    600_000,
  )

  it('sends one valid IPFIX stream: one domain, consecutive sequence numbers, templates before data', async () => {
    const wire = new MemoryTransport('wire', true)
    const single = new MemoryTransport('wire', true)
    await run(FIXTURE_DIRS, 3, { fields: ['all'], observationDomainId: 77, extraTransports: [wire] })
    await run(FIXTURE_DIRS, 0, { fields: ['all'], observationDomainId: 77, extraTransports: [single] })
    const decoder = new IpfixDecoder({ transport: 'udp' })
    let expected = 0
    let flowRecords = 0
    for (const m of wire.messages) {
      const d = decoder.decode(m)
      expect(d.error).toBeUndefined()
      expect(d.odid).toBe(77)
      // RFC 7011 §3.1: the count of data records sent before this message in the session.
      expect(d.sequence).toBe(expected)
      expected = (expected + d.records.length) % 2 ** 32
      flowRecords += d.records.filter((r) => !r.isOptions).length
    }
    expect(decoder.counters['no_template'] ?? 0).toBe(0)
    expect(decoder.counters['template_redefined'] ?? 0).toBe(0)
    expect(flowRecords).toBeGreaterThan(200)
    // The same template set as the single-threaded exporter announces.
    const templateIds = (ms: readonly Uint8Array[]): number[] => {
      const ids = new Set<number>()
      for (const m of ms) {
        const v = new DataView(m.buffer, m.byteOffset, m.byteLength)
        for (let p = 16; p + 4 <= m.byteLength; p += v.getUint16(p + 2)) {
          const setId = v.getUint16(p)
          if (setId !== 2 && setId !== 3) continue
          // Template records: id, field count, [scope count], field specifiers (+ PEN when the E bit is set).
          const end = p + v.getUint16(p + 2)
          for (let q = p + 4; q + 4 <= end;) {
            ids.add(v.getUint16(q))
            const fields = v.getUint16(q + 2)
            q += setId === 3 ? 6 : 4
            for (let i = 0; i < fields; i++) q += (v.getUint16(q) & 0x8000) !== 0 ? 8 : 4
          }
        }
      }
      return [...ids].sort((x, y) => x - y)
    }
    expect(templateIds(wire.messages)).toEqual(templateIds(single.messages))
  })

  it('sends the application catalogue as one thread does, not once per worker, and again after template refreshes', async () => {
    // The catalogue (RFC 6759 options records, template 290) went out once per worker, and was not sent
    // again after the main exporter's template refreshes (the workers' exporters never refresh).
    const entries = new AppCatalogue().entries.length
    const catalogueRecords = async (workers: number): Promise<number> => {
      const wire = new MemoryTransport('wire', true)
      await run(FIXTURE_DIRS, workers, {
        fields: ['app'],
        templateRefreshSeconds: 60,
        extraTransports: [wire],
      })
      const decoder = new IpfixDecoder({ transport: 'udp' })
      let n = 0
      for (const m of wire.messages) n += decoder.decode(m).records.filter((r) => r.templateId === 290).length
      return n
    }
    const one = await catalogueRecords(0)
    // The fixture stream's time crosses several refresh intervals: the catalogue follows some refreshes.
    expect(one % entries).toBe(0)
    expect(one / entries).toBeGreaterThan(2)
    expect(await catalogueRecords(2)).toBe(one)
    expect(await catalogueRecords(3)).toBe(one)
    expect(liveWorkerThreads()).toBe(0)
  })

  it('exports NetFlow v9 like one thread: datagrams fit --mtu 576, sysUpTime from the first packet', async () => {
    const DNS = join(REPO_ROOT, 'test/fixtures/pcap/interop/ipfixprobe-dns.pcap')
    /** NetFlow v9 datagrams on a loopback socket, and the flow records our collector decodes from them. */
    const netflow = async (
      workers: number,
    ): Promise<{ sizes: number[]; records: string[]; s: ProbeSummary }> => {
      const sock = createSocket('udp4')
      const got: Buffer[] = []
      sock.on('message', (m) => got.push(m))
      await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve))
      try {
        const { summary } = await run([DNS], workers, {
          mtu: 576,
          destinations: [
            { kind: 'udp', host: '127.0.0.1', port: sock.address().port, protocol: 'netflow-v9' },
          ],
        })
        const sent = Object.values(summary.netflow ?? {})[0]?.packets ?? 0
        for (let i = 0; i < 200 && got.length < sent; i++) await new Promise((r) => setTimeout(r, 10))
        expect(got.length).toBe(sent)
        const collector = new FlowCollector({ absoluteTimes: false })
        const key = {
          exporterAddress: '127.0.0.1',
          exporterPort: 1,
          collectorAddress: '127.0.0.1',
          collectorPort: 2,
          protocol: 'udp' as const,
        }
        const records = got
          .flatMap((m) => collector.decode(m, key, 0).records)
          .filter((r) => !r.isOptions)
          .map((r) => JSON.stringify(r.fields.map((f) => [f.name, String(f.value)])))
          .sort()
        return { sizes: got.map((m) => m.byteLength), records, s: summary }
      } finally {
        sock.close()
      }
    }
    const one = await netflow(0)
    const two = await netflow(2)
    expect(one.records.length).toBeGreaterThan(10)
    // 576 less the IPv4 and UDP headers: the worker run frames for the MTU too (it used 1500 before).
    expect(Math.max(...one.sizes)).toBeLessThanOrEqual(548)
    expect(Math.max(...two.sizes)).toBeLessThanOrEqual(548)
    // Every field, flowStartSysUpTime/flowEndSysUpTime included: the same uptime base (the first packet).
    expect(two.records).toEqual(one.records)
    expect(two.s.netflow).toBeDefined()
    expect(Object.values(two.s.netflow!)[0]!.flows).toBe(Object.values(one.s.netflow!)[0]!.flows)
    expect(liveWorkerThreads()).toBe(0)
  })

  it('names flows by DNS answers another worker metered, as one thread does (one DNS answer cache)', async () => {
    // The DNS flow (client ↔ resolver) and the flows to the servers it named are different address pairs,
    // so they are shared out to different workers: each worker had its own cache and missed the answers
    // the other one metered (ndpi-netflix.pcap: 4 records named differently with --workers 2).
    const s = 1e6
    const t0 = 1_700_000_000 * s
    const client = '10.0.0.1'
    const resolver = '10.0.0.53'
    const servers = Array.from({ length: 12 }, (_, i) => `192.0.2.${10 + i}`)
    const frames: { data: Uint8Array; tsUs: number }[] = []
    const dnsAnswer = (at: number, id: number, addresses: string[]): void => {
      const q = { name: 'www.netflix.com', type: 1 }
      frames.push({
        tsUs: at,
        data: eth(
          {},
          ipv4(
            { src: client, dst: resolver, proto: PROTO.UDP },
            udp({ sport: 33000 + id, dport: 53, payload: dnsMessage({ id, flags: 0x0100, questions: [q] }) }),
          ),
        ),
      })
      const answers = addresses.map((a) => ({
        name: [0xc0, 12],
        type: 1,
        ttl: 60,
        data: a.split('.').map(Number),
      }))
      frames.push({
        tsUs: at + 1000,
        data: eth(
          {},
          ipv4(
            { src: resolver, dst: client, proto: PROTO.UDP },
            udp({
              sport: 53,
              dport: 33000 + id,
              payload: dnsMessage({ id, flags: 0x8180, questions: [q], answers }),
            }),
          ),
        ),
      })
    }
    const syn = (at: number, dst: string, sport: number): void => {
      frames.push({
        tsUs: at,
        data: eth({}, ipv4({ src: client, dst }, tcp({ sport, dport: 443, flags: TCP.SYN }))),
      })
    }
    // Answers first, then a connection to each named server (a SYN: only the cache can name it).
    dnsAnswer(t0, 1, servers.slice(0, 10))
    servers.slice(0, 10).forEach((a, i) => syn(t0 + s + i, a, 40000 + i))
    // Server 10: its flow (idle, due 30 s after its SYN) is named by an answer 20 s later, before it is due.
    syn(t0 + 2 * s, servers[10]!, 41000)
    dnsAnswer(t0 + 22 * s, 2, [servers[10]!])
    // Server 11: the answer comes after its flow was due, and does not name it.
    syn(t0 + 3 * s, servers[11]!, 41001)
    dnsAnswer(t0 + 40 * s, 3, [servers[11]!])
    const dir = await mkdtemp(join(tmpdir(), 'flowtel-workers-dns-'))
    try {
      const file = join(dir, 'dns-then-syn.pcap')
      await writeFile(
        file,
        pcapFile(
          LINKTYPE.ETHERNET,
          frames.sort((a, b) => a.tsUs - b.tsUs),
        ),
      )
      const netflixOf = (lines: string[]): string[] =>
        lines
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((r) => r['destinationTransportPort'] === 443 && r['applicationId'] === '0d0000af')
          .map((r) => String(r['destinationIPv4Address']))
          .sort()
      const one = await run([file], 0, { fields: ['app'] })
      expect(netflixOf(one.lines)).toEqual(servers.slice(0, 11).sort())
      for (const workers of [2, 3]) {
        const many = await run([file], workers, { fields: ['app'] })
        expect(many.lines).toEqual(one.lines)
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    expect(liveWorkerThreads()).toBe(0)
  })

  it('fails with a clear error when a worker throws, and leaves no thread behind', async () => {
    await expect(
      run(FIXTURE_DIRS, 3, { fault: { worker: 1, slot: 2 } } as Partial<ProbeOptions>),
    ).rejects.toThrow(/metering worker 1 failed: injected fault/)
    expect(liveWorkerThreads()).toBe(0)
  })

  it('`flowtel probe --workers 2` exits by itself with the same records as --workers 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowtel-workers-'))
    try {
      const cli = (workers: number, out: string): Promise<number | null> =>
        new Promise((resolve, reject) => {
          const child = spawn(
            process.execPath,
            [
              '--import',
              'tsx',
              join(REPO_ROOT, 'test/helpers/run-cli.ts'),
              'probe',
              ...FIXTURE_DIRS.flatMap((d) => ['--read', d]),
              '--json',
              out,
              '--workers',
              String(workers),
              '--no-progress',
            ],
            { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
          )
          let stderr = ''
          child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
          // A thread left running would keep the process alive: the vitest timeout then fails the test.
          child.once('exit', (code) =>
            code === 0 ? resolve(code) : reject(new Error(`exit ${code}: ${stderr}`)),
          )
          child.once('error', reject)
        })
      await Promise.all([cli(1, join(dir, 'one.json')), cli(2, join(dir, 'two.json'))])
      const lines = async (f: string): Promise<string[]> =>
        (await readFile(join(dir, f), 'utf8'))
          .split('\n')
          .filter((l) => l !== '')
          .sort()
      const one = await lines('one.json')
      expect(one.length).toBeGreaterThan(100)
      expect(await lines('two.json')).toEqual(one)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    expect(await readdir(dir).catch(() => 'removed')).toBe('removed')
  })
})
