// The `dns` and `http` field groups through the probe on crafted captures: one record per transaction
// linked to its flow (key + flowStartMilliseconds), the flow record's transaction count, content-based
// selection on foreign ports (HTTP on 8080, DNS over UDP 5353 and over TCP), no misparse of other traffic
// on well-known ports, TCP reordering, and nothing extra when the groups are off.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { LINKTYPE, PROTO, TCP, eth, ipv4, pcapFile, tcp, udp } from '../../../test/helpers/packet-builder.js'
import { ascii, dnsMessage, tcpFrame } from '../../../test/helpers/l7.js'
import { probeRecords, total, type JsonRecord } from '../../../test/helpers/probe-run.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-l7-'))
afterAll(() => {
  if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true })
})

const T0 = 1_700_000_000_000_000
const C = '10.0.0.1'
const S = '10.0.0.2'
interface Pkt {
  t: number
  data: Uint8Array
}

/** A TCP connection's packets from (client port, server port) with payload segments given in order. */
function conn(
  cport: number,
  sport: number,
  segs: Array<{ t: number; up: boolean; seq: number; data: Uint8Array }>,
): Pkt[] {
  const p = (t: number, up: boolean, seq: number, flags: number, payload = new Uint8Array(0)): Pkt => ({
    t,
    data: eth(
      {},
      ipv4(
        { src: up ? C : S, dst: up ? S : C },
        tcp({ sport: up ? cport : sport, dport: up ? sport : cport, seq, flags, payload }),
      ),
    ),
  })
  return [
    p(0, true, 99, TCP.SYN),
    p(10, false, 499, TCP.SYN | TCP.ACK),
    p(20, true, 100, TCP.ACK),
    ...segs.map((s) => p(s.t, s.up, (s.up ? 100 : 500) + s.seq, TCP.PSH | TCP.ACK, new Uint8Array(s.data))),
  ]
}

function dgram(t: number, up: boolean, cport: number, sport: number, payload: Uint8Array): Pkt {
  return {
    t,
    data: eth(
      {},
      ipv4(
        { src: up ? C : S, dst: up ? S : C, proto: PROTO.UDP },
        udp({ sport: up ? cport : sport, dport: up ? sport : cport, payload }),
      ),
    ),
  }
}

async function run(name: string, pkts: Pkt[], fields = ['core', 'dns', 'http']): Promise<JsonRecord[]> {
  const file = join(dir, `${name}.pcap`)
  writeFileSync(
    file,
    pcapFile(
      LINKTYPE.ETHERNET,
      pkts.sort((a, b) => a.t - b.t).map((p) => ({ data: p.data, tsUs: T0 + p.t })),
    ),
  )
  return (await probeRecords([file], { fields })).records
}

const REQ1 = ascii('GET /a HTTP/1.1\r\nHost: h.example\r\nUser-Agent: t/1\r\n\r\n')
const REQ2 = ascii('GET /b HTTP/1.1\r\nHost: h.example\r\n\r\n')
const RESP = ascii('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: s\r\n\r\nabc')
const Q = dnsMessage({ id: 7, flags: 0x0100, questions: [{ name: 'x.test', type: 1 }] })
const R = dnsMessage({
  id: 7,
  flags: 0x8180,
  questions: [{ name: 'x.test', type: 1 }],
  answers: [{ name: [0xc0, 12], type: 1, data: [192, 0, 2, 1] }],
})

describe('dns and http field groups', () => {
  it('writes one record per HTTP transaction on a foreign port, reordered segments included', async () => {
    const half = 20
    const recs = await run(
      'http',
      conn(40000, 8080, [
        // The request's second half arrives before its first half.
        { t: 110, up: true, seq: half, data: REQ1.subarray(half) },
        { t: 100, up: true, seq: 0, data: REQ1.subarray(0, half) },
        { t: 200, up: false, seq: 0, data: RESP },
        { t: 300, up: true, seq: REQ1.byteLength, data: REQ2 },
        { t: 400, up: false, seq: RESP.byteLength, data: RESP },
      ]),
    )
    const txs = recs.filter((r) => 'httpRequestMethod' in r)
    expect(txs.map((r) => [r['httpRequestTarget'], r['httpStatusCode'], r['flowtelHttpServer']])).toEqual([
      ['/a', 200, 's'],
      ['/b', 200, 's'],
    ])
    expect(txs[0]).toMatchObject({
      httpRequestHost: 'h.example',
      httpUserAgent: 't/1',
      sourceIPv4Address: C,
      destinationTransportPort: 8080,
      protocolIdentifier: 6,
    })
    const flow = recs.find((r) => 'flowtelHttpTransactions' in r)!
    expect(flow['flowtelHttpTransactions']).toBe(2)
    expect(txs[0]!['flowStartMilliseconds']).toBe(flow['flowStartMilliseconds'])
  })

  it('finds DNS over UDP on 5353 and over TCP, and pairs queries with responses', async () => {
    const recs = await run('dns', [
      dgram(100, true, 5353, 5353, Q),
      dgram(150, false, 5353, 5353, R),
      ...conn(40001, 53, [
        { t: 200, up: true, seq: 0, data: tcpFrame(Q) },
        { t: 250, up: false, seq: 0, data: tcpFrame(R) },
      ]),
    ])
    const txs = recs.filter((r) => 'dnsQname' in r)
    expect(
      txs.map((r) => [
        r['protocolIdentifier'],
        r['dnsQname'],
        r['flowtelDnsAnswers'],
        r['flowtelDnsResponseTime'],
      ]),
    ).toEqual([
      [17, 'x.test', '192.0.2.1', 50],
      [6, 'x.test', '192.0.2.1', 50],
    ])
  })

  it('does not misparse other traffic on well-known ports', async () => {
    const recs = await run('negative', [
      ...conn(40002, 80, [{ t: 100, up: true, seq: 0, data: ascii('\x16\x03\x01\x00\x05hello not http') }]),
      dgram(200, true, 40003, 53, ascii('this is not a dns message at all')),
    ])
    expect(recs.filter((r) => 'dnsQname' in r || 'httpRequestMethod' in r)).toEqual([])
  })

  it('packs transaction records tightly: the exporter is told their exact length', async () => {
    // 300 DNS transactions on one socket: ~90-octet records. With a 1 kB bound per record a message would
    // be sent whenever a quarter of it was used; with the exact length each 1500-octet message is filled.
    const pkts: Pkt[] = []
    for (let i = 0; i < 300; i++) {
      const name = `host${i}.example`
      pkts.push(
        dgram(
          100 + 10 * i,
          true,
          40000,
          53,
          dnsMessage({ id: i, flags: 0x0100, questions: [{ name, type: 1 }] }),
        ),
      )
      pkts.push(
        dgram(
          105 + 10 * i,
          false,
          40000,
          53,
          dnsMessage({
            id: i,
            flags: 0x8180,
            questions: [{ name, type: 1 }],
            answers: [{ name: [0xc0, 12], type: 1, data: [192, 0, 2, i & 0xff] }],
          }),
        ),
      )
    }
    const file = join(dir, 'dns-many.pcap')
    writeFileSync(
      file,
      pcapFile(
        LINKTYPE.ETHERNET,
        pkts.map((p) => ({ data: p.data, tsUs: T0 + p.t })),
      ),
    )
    const { records, summary } = await probeRecords([file], { fields: ['core', 'dns'] })
    expect(records.filter((r) => 'dnsQname' in r)).toHaveLength(300)
    const { messages, octets } = summary.export
    // Every message but the last (and the templates' own) at least 1200 of its 1452 octets of room full.
    expect(messages).toBeLessThanOrEqual(Math.ceil(octets / 1200) + 1)
  })

  it('adds nothing when the groups are off', async () => {
    const recs = await run('off', [dgram(100, true, 5353, 5353, Q)], ['core'])
    expect(recs).toHaveLength(1)
    expect(Object.keys(recs[0]!).some((k) => k.startsWith('dns') || k.includes('Dns'))).toBe(false)
  })
})

describe('transaction counts on flow records (RecordKind.Transactions)', () => {
  const DNS = 'test/fixtures/pcap/interop/ipfixprobe-dns.pcap'
  const HTTP = 'test/fixtures/pcap/interop/arkime-http-simple-get.pcap'
  const SMTP = 'test/fixtures/pcap/interop/ipfixprobe-smtp.pcap'
  const COUNTS = ['flowtelDnsTransactions', 'flowtelHttpTransactions'] as const

  it('carries every group count on flows with transactions and none on the others; the counts add up', async () => {
    const { records } = await probeRecords([DNS, HTTP, SMTP], { fields: ['core', 'dns', 'http'] })
    const flows = records.filter((r) => 'packetDeltaCount' in r)
    const withCounts = flows.filter((r) => COUNTS.some((k) => k in r))
    const without = flows.filter((r) => !COUNTS.some((k) => k in r))
    expect(withCounts.length).toBeGreaterThan(0)
    expect(without.length).toBeGreaterThan(0)
    // All count fields or none (one template per kind), and a record with them has at least one transaction.
    for (const r of withCounts) {
      for (const k of COUNTS) expect(typeof r[k]).toBe('number')
      expect(COUNTS.reduce((n, k) => n + (r[k] as number), 0)).toBeGreaterThan(0)
    }
    // The counts are the transaction records written.
    expect(total(withCounts, 'flowtelDnsTransactions')).toBe(records.filter((r) => 'dnsId' in r).length)
    expect(total(withCounts, 'flowtelHttpTransactions')).toBe(
      records.filter((r) => 'httpRequestMethod' in r || 'httpStatusCode' in r).length,
    )
    // Flows without a transaction (SMTP here: no dns/http parser claims it) leave with the plain template.
    expect(without.some((r) => r['destinationTransportPort'] === 25 || r['sourceTransportPort'] === 25)).toBe(
      true,
    )
  })
})
