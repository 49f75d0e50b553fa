// The shared L7 engine (./l7-hub.ts): one hub per feature set in front of the first L7 group, the parsers
// the enabled groups need and no others, each flow parsed once however many groups take its transactions,
// records of a group unchanged by the other groups, and `app` alone stopping the parsers once a flow is named.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { LINKTYPE, PROTO, eth, ipv4, pcapFile, udp } from '../../../test/helpers/packet-builder.js'
import { tcpConversation } from '../../../test/helpers/tcp-conversation.js'
import { ascii, dnsMessage } from '../../../test/helpers/l7.js'
import { probeRecords, type JsonRecord } from '../../../test/helpers/probe-run.js'
import { L7Engine } from '../../l7/engine.js'
import { httpParser } from '../../l7/http.js'
import { createFieldGroups } from './index.js'
import { isL7Consumer, L7Hub } from './l7-hub.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-l7hub-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
afterEach(() => vi.restoreAllMocks())

const T0 = 1_700_000_000_000_000
const C = '10.0.0.1'
const S = '10.0.0.2'

function write(name: string, frames: Uint8Array[]): string {
  const file = join(dir, `${name}.pcap`)
  writeFileSync(
    file,
    pcapFile(
      LINKTYPE.ETHERNET,
      frames.map((data, i) => ({ data, tsUs: T0 + i * 1000 })),
    ),
  )
  return file
}

const REQ = (host: string, path: string): Uint8Array =>
  ascii(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: t/1\r\n\r\n`)
const RESP = ascii('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: s\r\n\r\nabc')

/** Keep-alive HTTP to a catalogue name (www.google.com), three exchanges, plus one DNS exchange. */
function capture(): string {
  const q = dnsMessage({ id: 9, flags: 0x0100, questions: [{ name: 'www.youtube.com', type: 1 }] })
  const r = dnsMessage({
    id: 9,
    flags: 0x8180,
    questions: [{ name: 'www.youtube.com', type: 1 }],
    answers: [{ name: [0xc0, 12], type: 1, data: [192, 0, 2, 7] }],
  })
  const dns = (up: boolean, payload: Uint8Array): Uint8Array =>
    eth(
      {},
      ipv4(
        { src: up ? C : S, dst: up ? S : C, proto: PROTO.UDP },
        udp({ sport: up ? 40100 : 53, dport: up ? 53 : 40100, payload }),
      ),
    )
  return write('mixed', [
    dns(true, q),
    dns(false, r),
    ...tcpConversation({ client: C, server: S, cport: 40000, sport: 8080 }, [
      { up: true, data: REQ('www.google.com', '/a') },
      { up: false, data: RESP },
      { up: true, data: REQ('www.google.com', '/b') },
      { up: false, data: RESP },
      { up: true, data: REQ('www.google.com', '/c') },
      { up: false, data: RESP },
    ]),
  ])
}

/** Probe run with `fields`; returns the records and how often the HTTP parser's parse() ran. */
async function run(file: string, fields: string[]): Promise<{ records: JsonRecord[]; httpParses: number }> {
  const spy = vi.spyOn(httpParser, 'parse')
  const { records } = await probeRecords([file], { fields: ['core', ...fields] })
  const httpParses = spy.mock.calls.length
  spy.mockRestore()
  return { records, httpParses }
}

const only = (records: JsonRecord[], key: string): JsonRecord[] => records.filter((r) => key in r)

/** A UDP datagram between C (port `cport`) and S (port `sport`): from C when `up`. */
const frame = (up: boolean, cport: number, sport: number, payload: Uint8Array): Uint8Array =>
  eth(
    {},
    ipv4(
      { src: up ? C : S, dst: up ? S : C, proto: PROTO.UDP },
      udp({ sport: up ? cport : sport, dport: up ? sport : cport, payload }),
    ),
  )
/** A DNS query for example.org, and its answer (192.0.2.9). */
const q = (id: number): Uint8Array =>
  dnsMessage({ id, flags: 0x0100, questions: [{ name: 'example.org', type: 1 }] })
const r = (id: number): Uint8Array =>
  dnsMessage({
    id,
    flags: 0x8180,
    questions: [{ name: 'example.org', type: 1 }],
    answers: [{ name: [0xc0, 12], type: 1, data: [192, 0, 2, 9] }],
  })
/** A capture of `frames`, each at its time in seconds after T0. */
function timed(name: string, frames: [seconds: number, frame: Uint8Array][]): string {
  const file = join(dir, `${name}.pcap`)
  writeFileSync(
    file,
    pcapFile(
      LINKTYPE.ETHERNET,
      frames.map(([s, data]) => ({ data, tsUs: T0 + Math.round(s * 1e6) })),
    ),
  )
  return file
}
/** The flow records of the flow from client port `cport`. */
const flowsOf = (records: JsonRecord[], cport: number): JsonRecord[] =>
  records.filter((x) => 'flowEndReason' in x && x['sourceTransportPort'] === cport)

describe('one L7 engine per feature set', () => {
  it('puts one hub in front of the first L7 group, with the parsers the groups need', () => {
    const features = createFieldGroups(['core', 'dns', 'http', 'tls', 'app'])
    const hubs = features.filter((f): f is L7Hub => f instanceof L7Hub)
    expect(hubs).toHaveLength(1)
    expect(features.findIndex((f) => f instanceof L7Hub)).toBe(features.findIndex(isL7Consumer) - 1)
    const names = hubs[0]!.engine.parserList.map((p) => p.name)
    // DNS over TCP is only a plausibility test: it is probed after the parsers with exact signatures.
    expect(names.slice(0, 6)).toEqual(['http', 'tls', 'dtls', 'quic', 'dhcp', 'dns'])

    const dnsOnly = createFieldGroups(['core', 'dns']).find((f): f is L7Hub => f instanceof L7Hub)!
    expect(dnsOnly.engine.parserList.map((p) => p.name)).toEqual(['dns'])
    expect(createFieldGroups(['core', 'npm']).some((f) => f instanceof L7Hub)).toBe(false)
    // `app` takes no transactions after a hand-off, so the upgrade parsers (STARTTLS...) stay out.
    const appOnly = createFieldGroups(['core', 'app']).find((f): f is L7Hub => f instanceof L7Hub)!
    expect(appOnly.engine.parserList.map((p) => p.name)).toEqual([
      'http',
      'tls',
      'quic',
      'dtls',
      'dhcp',
      'dns',
    ])
  })

  it('parses each flow once however many groups take its transactions, with unchanged records', async () => {
    const file = capture()
    const http = await run(file, ['http'])
    const many = await run(file, ['dns', 'http', 'tls', 'dhcp', 'app'])
    expect(http.httpParses).toBeGreaterThan(0)
    expect(many.httpParses).toBe(http.httpParses)
    expect(only(many.records, 'httpRequestMethod')).toEqual(only(http.records, 'httpRequestMethod'))
    expect(only(many.records, 'httpRequestMethod').map((r) => r['httpRequestTarget'])).toEqual([
      '/a',
      '/b',
      '/c',
    ])

    const app = await run(file, ['app'])
    const appIds = (rs: JsonRecord[]): unknown[] => only(rs, 'applicationId').map((r) => r['applicationId'])
    expect(appIds(many.records)).toEqual(appIds(app.records))
    const dns = await run(file, ['dns'])
    expect(only(many.records, 'dnsQname')).toEqual(only(dns.records, 'dnsQname'))
  })

  it('stops the parsers of a flow `app` alone has named', async () => {
    const file = capture()
    const app = await run(file, ['app'])
    const http = await run(file, ['http'])
    // Named by the first exchange's Host: the later requests and responses are not parsed.
    expect(app.httpParses).toBe(2)
    expect(http.httpParses).toBe(6)
    expect(only(app.records, 'applicationId')).toHaveLength(2)
  })
})

describe('transaction counts kept by the hub', () => {
  it('counts the transactions of each record of a flow, an active timeout starting again from 0', async () => {
    const file = timed('count-per-record', [
      [0, frame(true, 40100, 53, q(1))],
      [0.001, frame(false, 40100, 53, r(1))],
      [1.5, frame(true, 40100, 53, q(2))],
      [1.501, frame(false, 40100, 53, r(2))],
    ])
    const { records } = await probeRecords([file], { fields: ['core', 'dns'], activeTimeout: 1 })
    const flows = flowsOf(records, 40100)
    expect(flows.map((x) => x['flowEndReason'])).toEqual([2, 4])
    expect(flows.map((x) => x['flowtelDnsTransactions'])).toEqual([1, 1])
  })

  it('does not count the open transactions of a flow removed without a record on the flow that reuses its id', async () => {
    // A: a query without answer; its active-timeout record leaves at 1 s (X's packet), and it is removed at
    // its idle timeout (2 s) without a record. B, the next flow, takes its id: the hub emits A's open query
    // then, and B's record counts only B's own exchange.
    const file = timed('id-reuse', [
      [0, frame(true, 40100, 53, q(3))],
      [1, frame(true, 40300, 7, ascii('x'))],
      [2.5, frame(true, 40200, 53, q(4))],
      [2.501, frame(false, 40200, 53, r(4))],
    ])
    const { records } = await probeRecords([file], {
      fields: ['core', 'dns'],
      activeTimeout: 1,
      inactiveTimeout: 2,
    })
    expect(only(records, 'dnsQname').map((x) => x['dnsId'])).toEqual([3, 4])
    expect(flowsOf(records, 40100).map((x) => x['flowtelDnsTransactions'])).toEqual([undefined])
    expect(flowsOf(records, 40200).map((x) => x['flowtelDnsTransactions'])).toEqual([1])
  })
})

describe('flows the L7 work is done with', () => {
  const junk = (i: number): Uint8Array =>
    Uint8Array.from({ length: 40 }, (_, k) => (i * 31 + k * 7 + 1) & 0xff)

  /** 20 datagrams no parser and no signature knows (flow A, 0..1.9 s), then at 40 s a DNS query (flow B). */
  function settleFile(): string {
    const frames = Array.from({ length: 20 }, (_, i) => frame(i % 2 === 0, 40500, 7000, junk(i)))
    const file = join(dir, 'settle.pcap')
    writeFileSync(
      file,
      pcapFile(LINKTYPE.ETHERNET, [
        ...frames.map((data, i) => ({ data, tsUs: T0 + i * 100_000 })),
        { data: frame(true, 40600, 53, q(5)), tsUs: T0 + 40_000_000 },
      ]),
    )
    return file
  }

  async function engineCalls(fields: string[]): Promise<{ calls: number; records: JsonRecord[] }> {
    const spy = vi.spyOn(L7Engine.prototype, 'onPacket')
    const { records } = await probeRecords([settleFile()], { fields: ['core', ...fields] })
    const calls = spy.mock.calls.length
    spy.mockRestore()
    return { calls, records }
  }

  it('stop reaching the engine once it and the payload hooks are done, until their id is reused', async () => {
    // dns alone: the engine rejects A after its 4 probe packets; app tries its signatures on 8.
    const dns = await engineCalls(['dns'])
    expect(dns.calls).toBe(4 + 1)
    const app = await engineCalls(['dns', 'app'])
    expect(app.calls).toBe(8 + 1)
    // B took A's id after A's idle timeout and was parsed: its query is a transaction.
    for (const r of [dns.records, app.records])
      expect(only(r, 'dnsQname').map((x) => x['dnsId'])).toEqual([5])
  })
})

describe('L7 state set up at the first payload (flows without payload)', () => {
  it('a flow without payload reusing the id of a flow with an open transaction: emitted once, counted for none, not named by it', async () => {
    // A (40100 -> 53): a query without answer; its active-timeout record leaves at 1 s (X's packet) and it
    // is removed at its idle timeout (2 s) without a record. B (40200 -> NTP's port 123), an empty datagram,
    // takes A's id: the hub emits A's open query then. B never has payload: no L7 state is set up for it, its
    // record counts no transaction and is named by its port, not by A's DNS. C, with payload, comes after.
    const file = timed('lazy-reuse', [
      [0, frame(true, 40100, 53, q(3))],
      [1, frame(true, 40300, 7, ascii('x'))],
      [2.5, frame(true, 40200, 123, new Uint8Array(0))],
      [2.6, frame(false, 40200, 123, new Uint8Array(0))],
      [2.7, frame(true, 40400, 53, q(4))],
      [2.701, frame(false, 40400, 53, r(4))],
    ])
    const created = vi.spyOn(L7Engine.prototype, 'onCreate')
    const { records } = await probeRecords(
      [file],
      { fields: ['core', 'dns', 'app'], activeTimeout: 1, inactiveTimeout: 2 },
      [],
      true,
    )
    // L7 state for A, X and C only.
    expect(created.mock.calls.length).toBe(3)
    created.mockRestore()
    const names = new Map<string, string>()
    for (const r of records)
      if (typeof r['applicationName'] === 'string')
        names.set(String(r['applicationId']), r['applicationName'])
    expect(only(records, 'dnsQname').map((x) => x['dnsId'])).toEqual([3, 4])
    const b = flowsOf(records, 40200)
    expect(b.map((x) => x['flowtelDnsTransactions'])).toEqual([undefined])
    expect(b.map((x) => names.get(String(x['applicationId'])))).toEqual(['NTP'])
    expect(flowsOf(records, 40100).map((x) => names.get(String(x['applicationId'])))).toEqual(['DNS'])
    expect(flowsOf(records, 40400).map((x) => x['flowtelDnsTransactions'])).toEqual([1])
    expect(flowsOf(records, 40400).map((x) => names.get(String(x['applicationId'])))).toEqual(['DNS'])
  })
})

describe('payload that arrives out of order before a parser claims the flow', () => {
  it("keeps a request's second segment that was captured before its first", async () => {
    const req = REQ('www.example.com', '/swapped')
    const frames = tcpConversation({ client: C, server: S, cport: 40500, sport: 80 }, [
      { up: true, data: req.subarray(0, 20) },
      { up: true, data: req.subarray(20) },
      { up: false, data: RESP },
    ])
    // SYN, SYN/ACK, ACK, then the request's two segments swapped, then the response.
    const file = write('swapped', [frames[0]!, frames[1]!, frames[2]!, frames[4]!, frames[3]!, frames[5]!])
    const { records } = await run(file, ['http'])
    const tx = only(records, 'httpRequestMethod')
    expect(tx.map((x) => [x['httpRequestMethod'], x['httpRequestHost'], x['httpRequestTarget']])).toEqual([
      ['GET', 'www.example.com', '/swapped'],
    ])
    expect(tx.map((x) => x['httpStatusCode'])).toEqual([200])
  })
})
