// End to end: the probe's JSON output shows the DNS answers of fragmented UDP datagrams (IPv4 in a real
// capture, IPv6 in a crafted one), rebuilt for the L7 groups only (src/decode/ip-reassembly.ts), while the
// flow records count every fragment exactly as without L7 groups; the summary counts the datagrams rebuilt
// and dropped.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { formatSummary } from '../src/cli/summary.js'
import { ascii, dnsMessage } from './helpers/l7.js'
import { LINKTYPE, PROTO, eth, fragmentExt, ipv4, ipv6, pcapFile, udp } from './helpers/packet-builder.js'
import { tcpConversation } from './helpers/tcp-conversation.js'
import { probeRecords, total, type JsonRecord } from './helpers/probe-run.js'
import { REPO_ROOT } from './helpers/shared.js'

// zeek/zeek testing/btest/Traces/dns-edns-ecs.pcap (BSD-3-Clause), see test/fixtures/pcap/ipv4/SOURCES.md: four
// DNS answers over IPv4 in two fragments each (1480 + 244/32/272 bytes of UDP).
const EDNS = join(REPO_ROOT, 'test/fixtures/pcap/ipv4/zeek-dns-edns-ecs.pcap')

const dir = mkdtempSync(join(tmpdir(), 'flowtel-ipfrag-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const dnsRecords = (rs: readonly JsonRecord[]): JsonRecord[] => rs.filter((r) => 'dnsId' in r)
const flowRecords = (rs: readonly JsonRecord[]): JsonRecord[] => rs.filter((r) => !('dnsId' in r))

describe('IP reassembly for the L7 groups (probe JSON output)', () => {
  it('gives the DNS group the whole answer of fragmented IPv4 datagrams (as tshark reassembles them)', async () => {
    const { records, summary } = await probeRecords([EDNS], { fields: ['core', 'dns'] })
    const byId = new Map(dnsRecords(records).map((r) => [r.dnsId, r]))
    // tshark -o ip.defragment:TRUE: 0xd43f, 0x15a8 and 0x89ce answer 4 RRs (2 DNSKEY, 2 RRSIG), all TTL 60;
    // the second RRSIG is in the second fragment. Before reassembly only 3 of the 4 answers were listed.
    for (const id of [0xd43f, 0x15a8, 0x89ce]) {
      const r = byId.get(id)!
      expect(r.dnsAnswrecCount).toBe(4)
      expect(r.flowtelDnsAnswers).toBe('DNSKEY 10,DNSKEY 10,RRSIG 48 weberlab.de,RRSIG 48 weberlab.de')
      expect(r.flowtelDnsAnswerTtls).toBe('60,60,60,60')
    }
    expect(summary.anomalies).toEqual({})
    // The summary says how many datagrams were rebuilt: the four fragmented answers.
    expect(summary.ipReassembly).toEqual({ reassembled: 4, timedOut: 0, evicted: 0, dropped: 0 })
  })

  it('counts every fragment in the flow records exactly as without L7 groups', async () => {
    const core = await probeRecords([EDNS], { fields: ['core'] })
    const l7 = await probeRecords([EDNS], { fields: ['core', 'dns'] })
    const counters = [
      'packetDeltaCount',
      'octetDeltaCount',
      'reversePacketDeltaCount',
      'reverseOctetDeltaCount',
    ]
    for (const c of counters) expect(total(flowRecords(l7.records), c)).toBe(total(core.records, c))
    expect(l7.summary.ipPackets).toBe(core.summary.ipPackets)
    expect(flowRecords(l7.records).length).toBe(core.records.length)
  })

  it('rebuilds a fragmented IPv6 DNS answer whose fragments come in reverse order', async () => {
    const C = '2001:db8::10'
    const S = '2001:db8::53'
    const q = dnsMessage({ id: 0x6601, flags: 0x0100, questions: [{ name: 'big.example', type: 16 }] })
    // Six TXT answers of 500 bytes: the first fragment holds two of them.
    const answers = Array.from({ length: 6 }, (_, i) => ({
      name: [0xc0, 12],
      type: 16,
      ttl: 101 + i,
      data: [255, ...new Array<number>(255).fill(0x61 + i), 243, ...new Array<number>(243).fill(0x41 + i)],
    }))
    const r = dnsMessage({
      id: 0x6601,
      flags: 0x8180,
      questions: [{ name: 'big.example', type: 16 }],
      answers,
    })
    const seg = udp({ sport: 53, dport: 41000, payload: r })
    expect(seg.length).toBeGreaterThan(2 * 1232)
    const frags: Uint8Array[] = []
    for (let o = 0; o < seg.length; o += 1232)
      frags.push(
        ipv6(
          {
            src: S,
            dst: C,
            proto: PROTO.UDP,
            ext: [fragmentExt({ offset: o, more: o + 1232 < seg.length, id: 77 })],
          },
          seg.subarray(o, o + 1232),
        ),
      )
    const query = ipv6({ src: C, dst: S, proto: PROTO.UDP }, udp({ sport: 41000, dport: 53, payload: q }))
    const T0 = 1_700_000_000_000_000
    const file = join(dir, 'dns6-frag.pcap')
    const packets = [query, ...frags.reverse()].map((data, i) => ({ data, tsUs: T0 + i * 100 }))
    writeFileSync(file, pcapFile(LINKTYPE.IPV6, packets))
    const { records, summary } = await probeRecords([file], { fields: ['core', 'dns'] })
    const [tx] = dnsRecords(records)
    expect(tx).toBeDefined()
    expect(tx!.dnsAnswrecCount).toBe(6)
    // All six answers, the last ones from the second and third fragments.
    expect(tx!.flowtelDnsAnswerTtls).toBe('101,102,103,104,105,106')
    // Later fragments before their first have no ports: flow accounting as before (fragment_without_first).
    expect(summary.anomalies).toEqual({ fragment_without_first: frags.length - 1 })
  })

  it('gives the HTTP group a request whose TCP segment was fragmented (IPv4, 2 fragments)', async () => {
    const req = ascii(
      `GET /x HTTP/1.1\r\nHost: frag.example\r\nCookie: ${'c'.repeat(2500)}\r\nUser-Agent: after-the-cut/1\r\n\r\n`,
    )
    const resp = ascii('HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n')
    const frames = tcpConversation({ cport: 40200, sport: 80 }, [
      { up: true, data: req },
      { up: false, data: resp },
    ])
    // Frame 3 is the request: Ethernet(14) IPv4(20) TCP segment; cut the segment into 1480-byte fragments.
    const seg = frames[3]!.subarray(34)
    const frags: Uint8Array[] = []
    for (let o = 0; o < seg.length; o += 1480)
      frags.push(
        eth(
          {},
          ipv4(
            {
              src: '10.0.0.1',
              dst: '10.0.0.2',
              proto: PROTO.TCP,
              id: 4242,
              mf: o + 1480 < seg.length,
              fragOffset: o,
            },
            seg.subarray(o, o + 1480),
          ),
        ),
      )
    expect(frags.length).toBe(2)
    const T0 = 1_700_000_000_000_000
    const file = join(dir, 'http-frag.pcap')
    const all = [...frames.slice(0, 3), ...frags, ...frames.slice(4)]
    writeFileSync(
      file,
      pcapFile(
        LINKTYPE.ETHERNET,
        all.map((data, i) => ({ data, tsUs: T0 + i * 100 })),
      ),
    )
    const { records, summary } = await probeRecords([file], { fields: ['core', 'http'] })
    const http = records.filter((r) => 'httpRequestHost' in r)
    expect(http.map((r) => [r.httpRequestHost, r.httpUserAgent, r.httpStatusCode])).toEqual([
      ['frag.example', 'after-the-cut/1', 204],
    ])
    expect(summary.anomalies).toEqual({})
  })

  it('keeps what a snap length left of a first fragment for the DNS group (the datagram cannot be rebuilt)', async () => {
    const q = dnsMessage({ id: 0x0b0b, flags: 0x0100, questions: [{ name: 'cut.example', type: 16 }] })
    const r = dnsMessage({
      id: 0x0b0b,
      flags: 0x8180,
      questions: [{ name: 'cut.example', type: 16 }],
      answers: Array.from({ length: 4 }, () => ({
        name: [0xc0, 12],
        type: 16,
        data: new Array<number>(500).fill(0x31),
      })),
    })
    const seg = udp({ sport: 53, dport: 40300, payload: r })
    const C = '10.0.0.1'
    const S = '10.0.0.53'
    const frames = [
      eth(
        {},
        ipv4({ src: C, dst: S, proto: PROTO.UDP, id: 1 }, udp({ sport: 40300, dport: 53, payload: q })),
      ),
      eth({}, ipv4({ src: S, dst: C, proto: PROTO.UDP, id: 99, mf: true }, seg.subarray(0, 1480))),
      eth({}, ipv4({ src: S, dst: C, proto: PROTO.UDP, id: 99, fragOffset: 1480 }, seg.subarray(1480))),
    ]
    const T0 = 1_700_000_000_000_000
    const file = join(dir, 'snap-frag.pcap')
    // A 200-byte snap length: the answer's first fragment is cut, the question survives.
    const packets = frames.map((f, i) => ({
      data: f.subarray(0, 200),
      origlen: f.length,
      tsUs: T0 + i * 100,
    }))
    writeFileSync(file, pcapFile(LINKTYPE.ETHERNET, packets, 200))
    const { records, summary } = await probeRecords([file], { fields: ['core', 'dns'] })
    const tx = dnsRecords(records)
    expect(tx.map((t) => [t.dnsId, t.dnsQname, t.dnsAnswrecCount])).toEqual([[0x0b0b, 'cut.example', 4]])
    expect(summary.anomalies).toMatchObject({ ip_reassembly_truncated: 1 })
  })

  it('shows dropped datagrams (IPv6 overlap, RFC 5722; incomplete at the end) in the summary anomalies', async () => {
    const seg = udp({ sport: 53, dport: 41000, payload: new Uint8Array(2000) })
    const frag = (offset: number, more: boolean, len: number): Uint8Array =>
      ipv6(
        { proto: PROTO.UDP, ext: [fragmentExt({ offset, more, id: 5 })] },
        seg.subarray(offset, offset + len),
      )
    const file = join(dir, 'overlap6.pcap')
    const T0 = 1_700_000_000_000_000
    // Datagram 5 overlaps; datagram 6 never gets its second fragment (counted at the end of the input).
    const lone = ipv6({ proto: PROTO.UDP, ext: [fragmentExt({ more: true, id: 6 })] }, seg.subarray(0, 1024))
    const frames = [frag(0, true, 1024), frag(1016, true, 512), frag(1024, false, 2008 - 1024), lone]
    writeFileSync(
      file,
      pcapFile(
        LINKTYPE.IPV6,
        frames.map((data, i) => ({ data, tsUs: T0 + i })),
      ),
    )
    const { summary } = await probeRecords([file], { fields: ['core', 'dns'] })
    expect(summary.anomalies).toEqual({ ipv6_fragment_overlap: 1, ip_reassembly_timeout: 1 })
    expect(summary.ipReassembly).toEqual({ reassembled: 0, timedOut: 1, evicted: 0, dropped: 1 })
    expect(formatSummary(summary)).toContain(
      'ip reassembly      0 datagrams rebuilt for L7, 1 timed out, 0 evicted (limits), 1 dropped (bad fragments)',
    )
    // Without an L7 group there is no reassembly, and nothing to count.
    const off = await probeRecords([file], { fields: ['core'] })
    expect(off.summary.anomalies).toEqual({})
    expect(off.summary.ipReassembly).toBeUndefined()
    expect(formatSummary(off.summary)).not.toContain('ip reassembly')
  })
})
