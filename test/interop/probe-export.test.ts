// Interop suite: the probe's IPFIX export on small real captures, decoded by ipfixDump, tshark and
// nfcapd/nfdump and checked against the probe's own --json records; a softflowd block proves the harness first.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  captureExport,
  captureIpTotals,
  collectWithNfcapd,
  ipfixDump,
  ipfixDumpProblems,
  makeTempDir,
  missingBinaries,
  nfcapdExpectedSequenceErrors,
  parseIpfixDumpStats,
  parseIpfixDumpText,
  removeDir,
  replayDatagrams,
  runCommand,
  tsharkExpertLines,
  tsharkFields,
  tsharkJson,
  tsharkRecords,
  writeIpfixFile,
  writePcap,
  type IpfixDumpDecode,
  type NfcapdResult,
  type ReceivedDatagram,
  type RunResult,
  type TsharkRecord,
} from './export-harness.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const fixtureDir = path.join(repo, 'test/fixtures/pcap/interop')
const peers = ['tshark', 'ipfixDump', 'nfcapd', 'nfdump'] as const
const missingPeers = missingBinaries(...peers)
const missingSoftflowd = missingBinaries('softflowd')

/** Captures under test; `args` are extra probe options for that run. */
const cases: readonly { name: string; file: string; args: readonly string[] }[] = [
  { name: 'http-simple-get (IPv4 TCP)', file: 'arkime-http-simple-get.pcap', args: [] },
  { name: 'dns (IPv4 UDP)', file: 'ipfixprobe-dns.pcap', args: [] },
  { name: 'smtp (IPv4 TCP, UDP, ICMP)', file: 'ipfixprobe-smtp.pcap', args: [] },
  { name: 'v6 (IPv6 UDP, TCP, ICMPv6)', file: 'arkime-v6.pcap', args: [] },
  { name: 'v6 with --mtu 576 (many small messages)', file: 'arkime-v6.pcap', args: ['--mtu', '576'] },
]

// ---------------------------------------------------------------------------------------------------------
// A flow record reduced to what every decoder shows: key and both directions' counters.

interface FlowView {
  src: string
  dst: string
  srcPort: number
  dstPort: number
  proto: number
  octets: number
  packets: number
  revOctets: number
  revPackets: number
}

/** Ports are only compared for protocols that have them (ICMP type/code is placed differently by each tool). */
function keyOf(f: FlowView): string {
  const ported = f.proto === 6 || f.proto === 17 || f.proto === 132
  return [f.proto, normAddr(f.src), ported ? f.srcPort : 0, normAddr(f.dst), ported ? f.dstPort : 0].join(' ')
}

function viewString(f: FlowView): string {
  return `${keyOf(f)} fwd ${f.packets}p/${f.octets}B rev ${f.revPackets}p/${f.revOctets}B`
}

/** Canonical text for an IPv4 or IPv6 address (IPv6 fully expanded, lower case). */
function normAddr(a: string): string {
  const s = a.trim().toLowerCase()
  if (!s.includes(':')) return s
  const [head = '', tail] = s.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const fill = s.includes('::') ? Array<string>(8 - h.length - t.length).fill('0') : []
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16).toString(16).padStart(4, '0')).join(':')
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : ''
}

function n(v: unknown): number {
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') return Number(v)
  if (typeof v === 'string' && v.trim() !== '') return Number(v)
  return NaN
}

/** Flattens nested objects to leaf name -> value (last path segment; the first occurrence wins). */
function leaves(obj: unknown, out = new Map<string, unknown>()): Map<string, unknown> {
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
      if (v && typeof v === 'object' && !Array.isArray(v)) leaves(v, out)
      else if (!out.has(k)) out.set(k, v)
    }
  }
  return out
}

function pick(m: Map<string, unknown>, names: readonly string[]): unknown {
  for (const name of names) if (m.has(name)) return m.get(name)
  return undefined
}

/**
 * One probe --json line as a FlowView. The JSON uses IANA element names (the same names ipfixDump prints);
 * a few short aliases are accepted so that a renamed field fails the value checks, not the parser.
 */
function fromJson(rec: unknown): FlowView {
  const m = leaves(rec)
  return {
    src: str(pick(m, ['sourceIPv4Address', 'sourceIPv6Address', 'srcAddr', 'src'])),
    dst: str(pick(m, ['destinationIPv4Address', 'destinationIPv6Address', 'dstAddr', 'dst'])),
    srcPort: n(pick(m, ['sourceTransportPort', 'srcPort']) ?? 0),
    dstPort: n(pick(m, ['destinationTransportPort', 'dstPort']) ?? 0),
    proto: n(pick(m, ['protocolIdentifier', 'protocol', 'proto'])),
    octets: n(pick(m, ['octetDeltaCount', 'octetTotalCount', 'octets', 'bytes'])),
    packets: n(pick(m, ['packetDeltaCount', 'packetTotalCount', 'packets'])),
    revOctets: n(pick(m, ['reverseOctetDeltaCount', 'reverseOctetTotalCount', 'reverseOctets']) ?? 0),
    revPackets: n(pick(m, ['reversePacketDeltaCount', 'reversePacketTotalCount', 'reversePackets']) ?? 0),
  }
}

function fromIpfixDump(fields: ReadonlyMap<string, string>): FlowView {
  const g = (...names: string[]): string | undefined => {
    for (const name of names) {
      const v = fields.get(name)
      if (v !== undefined) return v
    }
    return undefined
  }
  return {
    src: g('sourceIPv4Address', 'sourceIPv6Address') ?? '',
    dst: g('destinationIPv4Address', 'destinationIPv6Address') ?? '',
    srcPort: n(g('sourceTransportPort') ?? 0),
    dstPort: n(g('destinationTransportPort') ?? 0),
    proto: n(g('protocolIdentifier')),
    octets: n(g('octetDeltaCount', 'octetTotalCount')),
    packets: n(g('packetDeltaCount', 'packetTotalCount')),
    revOctets: n(g('reverseOctetDeltaCount', 'reverseOctetTotalCount') ?? 0),
    revPackets: n(g('reversePacketDeltaCount', 'reversePacketTotalCount') ?? 0),
  }
}

function fromTshark(r: TsharkRecord): FlowView {
  const g = (label: string): string | undefined => r.fields.get(label)?.[0]
  const proto = /\((\d+)\)\s*$/.exec(g('Protocol') ?? '')?.[1] ?? g('Protocol')
  return {
    src: g('SrcAddr') ?? '',
    dst: g('DstAddr') ?? '',
    srcPort: n(g('SrcPort') ?? 0),
    dstPort: n(g('DstPort') ?? 0),
    proto: n(proto),
    octets: n(g('Octets')),
    packets: n(g('Packets')),
    revOctets: n(g('Reverse Octets') ?? 0),
    revPackets: n(g('Reverse Packets') ?? 0),
  }
}

/** Set IDs of one IPFIX message, walking the Set headers (RFC 7011 section 3.3.2). */
function setIds(msg: Buffer): number[] {
  const ids: number[] = []
  const end = Math.min(msg.length, msg.readUInt16BE(2))
  let off = 16
  while (off + 4 <= end) {
    const len = msg.readUInt16BE(off + 2)
    ids.push(msg.readUInt16BE(off))
    if (len < 4) break
    off += len
  }
  return ids
}

/** Sorted record strings; a field a decoder did not provide (NaN, empty address) fails here, not silently. */
function sorted(views: readonly FlowView[]): string[] {
  for (const v of views) {
    const numbers = [v.srcPort, v.dstPort, v.proto, v.octets, v.packets, v.revOctets, v.revPackets]
    if (v.src === '' || v.dst === '' || !numbers.every(Number.isFinite)) {
      throw new Error(`incomplete record: ${JSON.stringify(v)}`)
    }
  }
  return views.map(viewString).sort()
}

function sums(views: readonly FlowView[]): {
  octets: number
  packets: number
  revOctets: number
  revPackets: number
} {
  const s = { octets: 0, packets: 0, revOctets: 0, revPackets: 0 }
  for (const v of views) {
    s.octets += v.octets
    s.packets += v.packets
    s.revOctets += v.revOctets
    s.revPackets += v.revPackets
  }
  return s
}

/** Flow data records (not options records) in an ipfixDump decode. */
function flowRecords(d: IpfixDumpDecode): FlowView[] {
  return d.records.filter((r) => !d.optionsTemplates.has(r.templateId)).map((r) => fromIpfixDump(r.fields))
}

/** Everything the peers said about one export, gathered once per capture. */
interface Decoded {
  /** Where export.ipfix and export.pcap (the datagrams) were written. */
  dir: string
  datagrams: readonly ReceivedDatagram[]
  port: number
  dump: { code: number | null; stdout: string; stderr: string }
  stats: { code: number | null; stdout: string; stderr: string }
  decode: IpfixDumpDecode
  expert: string[]
  tshark: TsharkRecord[]
  nf: NfcapdResult
}

async function decodeAll(
  dir: string,
  datagrams: readonly ReceivedDatagram[],
  port: number,
): Promise<Decoded> {
  const ipfixFile = path.join(dir, 'export.ipfix')
  const pcapFile = path.join(dir, 'export.pcap')
  await writeIpfixFile(datagrams, ipfixFile)
  await writePcap(datagrams, pcapFile, { dstPort: port })
  const dump = await ipfixDump(ipfixFile)
  const stats = await ipfixDump(ipfixFile, ['--stats'])
  const expert = await tsharkExpertLines(pcapFile, port)
  const tshark = (await tsharkRecords(pcapFile, port)).filter((r) => r.fields.has('SrcAddr'))
  const nf = await collectWithNfcapd((p) => replayDatagrams(datagrams, p))
  return { dir, datagrams, port, dump, stats, decode: parseIpfixDumpText(dump.stdout), expert, tshark, nf }
}

// ---------------------------------------------------------------------------------------------------------
// Harness self-check: softflowd as the exporter, so the harness is proven independently of the probe.

describe.skipIf(missingPeers.length > 0 || missingSoftflowd.length > 0)(
  'harness self-check (softflowd)',
  () => {
    let dir = ''
    let run: RunResult
    let d: Decoded
    const capture = path.join(fixtureDir, 'arkime-v6.pcap')

    beforeAll(async () => {
      dir = await makeTempDir()
      // 1.1.0 quirk: no -c in -r mode (it would block in accept() on the control socket).
      const r = await captureExport(
        (port) => ['softflowd', '-r', capture, '-n', `127.0.0.1:${port}`, '-v', '10', '-b', '-d'],
        { timeoutMs: 30_000 },
      )
      run = r.run
      d = await decodeAll(dir, r.datagrams, r.port)
    })
    afterAll(async () => {
      if (dir) await removeDir(dir)
    })

    it('softflowd ran to completion and its datagrams were all received', () => {
      expect(run.timedOut).toBe(false)
      expect(run.code).toBe(0)
      const m = /Flows exported: (\d+) \((\d+) records\) in (\d+) packets/.exec(run.stdout + run.stderr)
      expect(m, run.stdout + run.stderr).not.toBeNull()
      expect(d.datagrams.length).toBe(Number(m?.[3]))
    })

    it('ipfixDump reads the raw message file written by the harness', () => {
      // ipfixDump warns about softflowd's sequence numbers (standards.md 6.5); nothing else may show.
      expect(ipfixDumpProblems(d.dump).filter((l) => !/out of sequence/.test(l))).toEqual([])
      const stats = parseIpfixDumpStats(d.stats.stdout)
      expect(stats?.messages).toBe(d.datagrams.length)
      const flows = flowRecords(d.decode)
      const m = /Flows exported: (\d+)/.exec(run.stdout)
      expect(flows.length).toBe(Number(m?.[1]))
      // softflowd counts IP-level bytes; the capture has 161 packets, all IPv6.
      const s = sums(flows)
      expect(s.packets + s.revPackets).toBe(161)
    })

    it('tshark decodes the synthesized pcap, and its records equal ipfixDump records', async () => {
      // softflowd's sequence numbers are off by its own message (standards.md 6.5); nothing else may show.
      const unexpected = d.expert.filter((l) => !/^frame \d+: Unexpected flow sequence[^|]*$/.test(l))
      expect(unexpected).toEqual([])
      expect(sorted(d.tshark.map(fromTshark))).toEqual(sorted(flowRecords(d.decode)))
      // The field and JSON helpers see one IPFIX frame per datagram.
      const pcap = path.join(dir, 'export.pcap')
      const rows = await tsharkFields(pcap, d.port, ['frame.number', 'cflow.od_id', 'cflow.sequence'])
      expect(rows.map((r) => r[1])).toEqual(d.datagrams.map(() => ['0']))
      expect(rows.map((r) => Number(r[2]?.[0]))).toEqual(d.datagrams.map((dg) => dg.data.readUInt32BE(8)))
      expect(await tsharkJson(pcap, d.port)).toHaveLength(d.datagrams.length)
    })

    it('the gates are not vacuous: a set length below 4 is reported by ipfixDump and tshark', async () => {
      const last = d.datagrams[d.datagrams.length - 1]
      expect(last).toBeDefined()
      if (!last) return
      // The first set header follows the 16-octet message header; its Length is at offset 18. (A set length
      // that overruns the message is not flagged by tshark 4.0, so only ipfixDump would catch that one.)
      const data = Buffer.from(last.data)
      data.writeUInt16BE(2, 18)
      const broken = [...d.datagrams.slice(0, -1), { ...last, data }]
      const ipfixFile = path.join(dir, 'broken.ipfix')
      const pcapFile = path.join(dir, 'broken.pcap')
      await writeIpfixFile(broken, ipfixFile)
      await writePcap(broken, pcapFile, { dstPort: d.port })
      const problems = ipfixDumpProblems(await ipfixDump(ipfixFile)).filter((l) => !/out of sequence/.test(l))
      expect(problems.length).toBeGreaterThan(0)
      const expert = (await tsharkExpertLines(pcapFile, d.port)).filter(
        (l) => !/^frame \d+: Unexpected flow sequence[^|]*$/.test(l),
      )
      expect(expert.length).toBeGreaterThan(0)
    })

    it('nfcapd/nfdump totals equal the ipfixDump records, forward and reverse', () => {
      const flows = flowRecords(d.decode)
      const s = sums(flows)
      expect(d.nf.totals).toEqual({
        flows: flows.length,
        packets: s.packets + s.revPackets,
        bytes: s.octets + s.revOctets,
      })
      expect(d.nf.flows.reduce((a, f) => a + f.inBytes, 0)).toBe(s.octets)
      expect(d.nf.flows.reduce((a, f) => a + f.outBytes, 0)).toBe(s.revOctets)
      expect(d.nf.stat?.flows).toBe(flows.length)
      expect(d.nf.summary).toEqual(d.nf.totals)
    })
  },
)

// ---------------------------------------------------------------------------------------------------------
// The probe

const probeBin = path.join(repo, 'bin/flowtel.js')
const probeBuilt = existsSync(path.join(repo, 'dist/cli/main.js'))

interface ProbeRun {
  run: RunResult
  /** IP packets and IP-level octets of the input capture, from tshark. */
  truth: { packets: number; octets: number }
  json: unknown[]
  views: FlowView[]
  d: Decoded
}

describe.skipIf(missingPeers.length > 0)('probe IPFIX export interop', () => {
  for (const c of cases) {
    describe(c.name, () => {
      let dir = ''
      let p: ProbeRun | undefined
      let setupError: unknown

      beforeAll(async () => {
        dir = await makeTempDir()
        try {
          if (!probeBuilt) throw new Error(`probe not built: ${probeBin} needs dist/ (run npm run build)`)
          const jsonFile = path.join(dir, 'records.jsonl')
          const capture = path.join(fixtureDir, c.file)
          const r = await captureExport(
            (port) => [
              process.execPath,
              probeBin,
              'probe',
              '--read',
              capture,
              '--collector',
              `127.0.0.1:${port}`,
              '--json',
              jsonFile,
              ...c.args,
            ],
            { timeoutMs: 60_000, cwd: repo },
          )
          if (r.run.code !== 0 || r.run.timedOut) {
            throw new Error(
              `probe failed (code ${r.run.code}, signal ${r.run.signal}, timedOut ${r.run.timedOut}):\n${r.run.stderr}`,
            )
          }
          const lines = existsSync(jsonFile) ? (await readFile(jsonFile, 'utf8')).split('\n') : []
          const json = lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown)
          const d = await decodeAll(dir, r.datagrams, r.port)
          p = { run: r.run, truth: await captureIpTotals(capture), json, views: json.map(fromJson), d }
        } catch (e) {
          setupError = e
        }
      })
      afterAll(async () => {
        if (dir) await removeDir(dir)
      })

      /** The run's results, or the setup failure as this test's failure. */
      function probe(): ProbeRun {
        if (!p) throw setupError instanceof Error ? setupError : new Error(String(setupError))
        return p
      }

      it('exports at least one message and one JSON record', () => {
        const { d, json } = probe()
        expect(d.datagrams.length).toBeGreaterThan(0)
        expect(json.length).toBeGreaterThan(0)
        for (const v of probe().views) {
          expect(v.src, JSON.stringify(v)).not.toBe('')
          expect(Number.isFinite(v.proto) && Number.isFinite(v.octets) && Number.isFinite(v.packets)).toBe(
            true,
          )
        }
      })

      it('the records account for every IP packet and octet of the capture (tshark on the input)', () => {
        const { truth, views } = probe()
        const s = sums(views)
        expect({ packets: s.packets + s.revPackets, octets: s.octets + s.revOctets }).toEqual(truth)
      })

      it('every datagram is one IPFIX message whose header length matches', () => {
        for (const dg of probe().d.datagrams) {
          expect(dg.data.readUInt16BE(0)).toBe(10)
          expect(dg.data.readUInt16BE(2)).toBe(dg.data.length)
        }
      })

      it('ipfixDump decodes every message without error; flow record count = JSON lines', () => {
        const { d, json } = probe()
        expect(ipfixDumpProblems(d.dump)).toEqual([])
        expect(ipfixDumpProblems(d.stats)).toEqual([])
        const stats = parseIpfixDumpStats(d.stats.stdout)
        expect(stats?.messages).toBe(d.datagrams.length)
        const flows = flowRecords(d.decode)
        expect(flows.length).toBe(json.length)
        // Records without a template are silently dropped by ipfixDump (6.2): its total must cover all.
        expect(stats?.dataRecords).toBe(d.decode.records.length)
      })

      it('ipfixDump record values equal the JSON records', () => {
        const { d, views } = probe()
        expect(sorted(flowRecords(d.decode))).toEqual(sorted(views))
      })

      it('tshark reports no expert info or malformed packets', () => {
        expect(probe().d.expert).toEqual([])
      })

      it('Export Times (ipfixDump, tshark) and statistics times lie within the capture, none at 1970', async () => {
        // Offline the exporter's clock is packet time; the templates and options sent before the first
        // packet was metered carried Export Time 0, and the statistics' observation times were 0.
        const { d } = probe()
        const r = await runCommand([
          'tshark',
          '-n',
          '-r',
          path.join(fixtureDir, c.file),
          '-T',
          'fields',
          '-e',
          'frame.time_epoch',
        ])
        const packetTimes = r.stdout
          .split('\n')
          .filter((l) => l !== '')
          .map(Number)
        const first = Math.floor(Math.min(...packetTimes))
        const last = Math.ceil(Math.max(...packetTimes))
        const utc = (text: string): number => Date.parse(`${text.replace(' ', 'T')}Z`) / 1000
        const exportTimes = [...d.dump.stdout.matchAll(/export time: (\S+ \S+)/g)].map((m) => utc(m[1]!))
        expect(exportTimes.length).toBe(d.datagrams.length)
        const byTshark = (
          await tsharkFields(path.join(d.dir, 'export.pcap'), d.port, ['cflow.exporttime'])
        ).map((row) => Number(row[0]?.[0]))
        expect(byTshark).toEqual(exportTimes)
        const observed = [...d.dump.stdout.matchAll(/observationTimeMilliseconds : (\S+ \S+)/g)].map((m) =>
          utc(m[1]!),
        )
        expect(observed.length).toBeGreaterThan(0)
        for (const t of [...exportTimes, ...observed]) {
          expect(t).toBeGreaterThanOrEqual(first)
          expect(t).toBeLessThanOrEqual(last)
        }
      })

      it('tshark per-record addresses, ports, protocol and counters (incl. reverse) equal the JSON records', () => {
        const { d, views } = probe()
        expect(d.tshark.length).toBe(views.length)
        expect(sorted(d.tshark.map(fromTshark))).toEqual(sorted(views))
      })

      it('nfcapd/nfdump see the same flows, packets and bytes (both directions), no unexplained sequence errors', () => {
        const { d, views } = probe()
        const s = sums(views)
        expect(d.nf.totals).toEqual({
          flows: views.length,
          packets: s.packets + s.revPackets,
          bytes: s.octets + s.revOctets,
        })
        expect(d.nf.flows.reduce((a, f) => a + f.inPackets, 0)).toBe(s.packets)
        expect(d.nf.flows.reduce((a, f) => a + f.inBytes, 0)).toBe(s.octets)
        expect(d.nf.flows.reduce((a, f) => a + f.outPackets, 0)).toBe(s.revPackets)
        expect(d.nf.flows.reduce((a, f) => a + f.outBytes, 0)).toBe(s.revOctets)
        expect(d.nf.summary).toEqual(d.nf.totals)
        // Our sequence numbers follow RFC 7011 (ipfixDump and tshark check them above); nfcapd does not count
        // options records, so it reports exactly the failures its own rule predicts, and no others.
        expect(d.nf.stat).toMatchObject({
          flows: views.length,
          sequenceErrors: nfcapdExpectedSequenceErrors(d.decode),
          badPackets: 0,
        })
      })

      it('the probe summary on stderr agrees with what was exported', () => {
        const { run, d, json } = probe()
        const summary = run.stderr
        // "export  N messages, N records, N octets, N template sends, N dropped": messages counts data messages
        // and template-only messages are the template sends. Numbers carry thousands separators.
        const m =
          /([\d,]+) messages, ([\d,]+) records, ([\d,]+) octets, ([\d,]+) template sends, ([\d,]+) dropped/.exec(
            summary,
          )
        expect(m, `no export line in the summary:\n${summary}`).not.toBeNull()
        const [messages, records, , templateSends, dropped] = (m ?? [])
          .slice(1)
          .map((x) => Number(x.replace(/,/g, '')))
        const dataMessages = d.datagrams.filter((dg) => setIds(dg.data).some((id) => id >= 256)).length
        expect(messages).toBe(dataMessages)
        // Template sends are summed over destinations, and the --json output is a destination too.
        expect([1, 2].map((k) => k * (d.datagrams.length - dataMessages))).toContain(templateSends)
        expect(dropped).toBe(0)
        // The summary counts flow and options data records together.
        expect([json.length, d.decode.records.length]).toContain(records)
        const flows = /^flows\s+([\d,]+)/m.exec(summary)
        expect(Number(flows?.[1]?.replace(/,/g, ''))).toBe(json.length)
      })
    })
  }
})
