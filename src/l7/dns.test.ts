// DNS parser (RFC 1035): header, question and answer rendering per type, compression pointers (loops and
// out-of-range pointers counted), query/response pairing, TCP framing split at every byte, content probing,
// and fast-check fuzzing (malformed input only produces counted anomalies).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Driver, ascii, dnsMessage, dnsName, feedSplit, tcpFrame } from '../../test/helpers/l7.js'
import { ipv6Text } from '../util/address-text.js'
import { dnsParser, parseMessage, type DnsState, type DnsTx } from './dns.js'
import { L7Dir } from './parser.js'

const PTR_Q = [0xc0, 12] // pointer to the question name at offset 12

const query = dnsMessage({ id: 0x1234, flags: 0x0100, questions: [{ name: 'www.example.com', type: 1 }] })
const response = dnsMessage({
  id: 0x1234,
  flags: 0x8180,
  questions: [{ name: 'www.example.com', type: 1 }],
  answers: [
    { name: PTR_Q, type: 5, ttl: 60, data: dnsName('web.example.net') },
    { name: dnsName('web.example.net'), type: 1, ttl: 30, data: [192, 0, 2, 7] },
    { name: PTR_Q, type: 28, data: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] },
  ],
  authority: [{ name: PTR_Q, type: 2, data: dnsName('ns1.example.com') }],
})

describe('dns parser', () => {
  it('parses header, question and answers of each type as Zeek renders them', () => {
    const an: string[] = []
    const rr = (type: number, data: number[]): string =>
      parseMessage(
        dnsMessage({
          id: 1,
          flags: 0x8180,
          questions: [{ name: 'a.test', type }],
          answers: [{ name: PTR_Q, type, data }],
        }),
        (n) => an.push(n),
      )!.answers[0]!.data
    expect(rr(1, [10, 1, 2, 3])).toBe('10.1.2.3')
    expect(rr(28, [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0, 0xde, 0xff, 0xfe, 0xad, 0xbe, 0xef])).toBe(
      'fe80::200:deff:fead:beef',
    )
    expect(rr(5, dnsName('b.test'))).toBe('b.test')
    expect(rr(2, dnsName('ns.test'))).toBe('ns.test')
    expect(rr(12, dnsName('host.test'))).toBe('host.test')
    expect(rr(15, [0, 10, ...dnsName('mx.test')])).toBe('mx.test')
    expect(rr(33, [0, 1, 0, 2, 0x13, 0xc4, ...dnsName('sip.test')])).toBe('sip.test')
    expect(rr(6, [...dnsName('ns.test'), ...dnsName('admin.test'), ...new Array<number>(20).fill(0)])).toBe(
      'ns.test',
    )
    expect(rr(16, [3, 0x61, 0x62, 0x63, 1, 0x64])).toBe('TXT 3 abc TXT 1 d')
    expect(rr(1, [1, 2, 3])).toBe('') // bad A length: not rendered
    expect(an).toEqual([])
  })

  it('pairs a query and its response into one transaction with counts, rcode and timing', () => {
    const d = new Driver<DnsTx>(dnsParser, 'udp')
    d.ctx.tsUs = 1000
    d.feed(L7Dir.ToServer, query)
    expect(d.ctx.txs).toHaveLength(0)
    d.ctx.tsUs = 1500
    d.feed(L7Dir.ToClient, response)
    const [tx] = d.finish()
    expect(tx).toMatchObject({
      id: 0x1234,
      flags: 0x8180,
      rcode: 0,
      qname: 'www.example.com',
      qtype: 1,
      qclass: 1,
      qdcount: 1,
      ancount: 3,
      nscount: 1,
      arcount: 0,
      queryUs: 1000,
      responseUs: 1500,
      queryToServer: true,
    })
    expect(tx!.answers.map((a) => a.data)).toEqual(['web.example.net', '192.0.2.7', '2001:db8::1'])
    expect(tx!.answers.map((a) => a.ttl)).toEqual([60, 30, 300])
  })

  it('keeps every transaction on one socket and emits unanswered queries at the end', () => {
    const d = new Driver<DnsTx>(dnsParser, 'udp')
    for (let id = 1; id <= 5; id++)
      d.feed(L7Dir.ToServer, dnsMessage({ id, flags: 0x0100, questions: [{ name: `q${id}.test`, type: 1 }] }))
    d.feed(L7Dir.ToClient, dnsMessage({ id: 3, flags: 0x8183, questions: [{ name: 'q3.test', type: 1 }] }))
    const txs = d.finish()
    expect(txs.map((t) => t.qname)).toEqual(['q3.test', 'q1.test', 'q2.test', 'q4.test', 'q5.test'])
    expect(txs[0]!.rcode).toBe(3)
    expect(txs[1]!.rcode).toBe(-1)
  })

  it('counts compression loops and out-of-range pointers instead of following them', () => {
    const an: string[] = []
    // The question name points at itself.
    const loop = Uint8Array.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1])
    expect(parseMessage(loop, (n) => an.push(n))?.qname).toBe('')
    // Two names pointing at each other.
    const pingPong = Uint8Array.from([
      0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0xc0, 18, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1,
    ])
    parseMessage(pingPong, (n) => an.push(n))
    const out = Uint8Array.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc3, 0xff, 0, 1, 0, 1])
    parseMessage(out, (n) => an.push(n))
    expect(an).toEqual([
      'dns_pointer_loop',
      'dns_pointer_loop',
      'dns_pointer_loop',
      'dns_pointer_out_of_range',
    ])
  })

  it('reads a name a pointer repeats like the first time, within the jump budget across both walks', () => {
    // Question "b.a" (offset 12). Answer 1: name → the question; CNAME data (offset 33) = a chain of `first`
    // pointers ending at "a" (offset 14), read as "a" with `first` jumps. Answer 2: name = a pointer to its
    // own data, a chain of `second - 1` pointers ending at answer 1's data: `second + first` jumps in all,
    // against the budget of 32.
    const chained = (first: number, second: number): Uint8Array => {
      const b = [0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0x62, 1, 0x61, 0, 0, 1, 0, 1]
      const rr = (name: number[], data: number[]): void =>
        void b.push(...name, 0, 5, 0, 1, 0, 0, 0, 60, data.length >> 8, data.length & 0xff, ...data)
      const chain = (at: number, n: number, to: number): number[] =>
        Array.from({ length: n }, (_, i) => (i < n - 1 ? [0xc0, at + 2 * (i + 1)] : [0xc0, to])).flat()
      rr([0xc0, 12], chain(33, first, 14))
      const n = b.length
      rr([0xc0, n + 12], chain(n + 12, second - 1, 33))
      return Uint8Array.from(b)
    }
    const an: string[] = []
    const names = (m: Uint8Array): string[] =>
      parseMessage(m, (a) => an.push(a))!.answers.flatMap((a) => [a.name, a.data])
    expect(names(chained(20, 12))).toEqual(['b.a', 'a', 'a', 'a'])
    expect(an).toEqual([])
    // 20 + 13 jumps: answer 2's name is a loop (its data, 20 + 12, is not).
    expect(names(chained(20, 13))).toEqual(['b.a', 'a', '', 'a'])
    expect(an).toEqual(['dns_pointer_loop'])
  })

  it('renders the addresses of A and AAAA answers, for any address', () => {
    const rand = fc.sample(fc.uint8Array({ minLength: 16, maxLength: 16 }), { numRuns: 2000, seed: 3 })
    for (const [i, a] of rand.entries()) {
      const v4 = Array.from(a.subarray(0, 4))
      const m = dnsMessage({
        id: i,
        flags: 0x8180,
        questions: [{ name: 'a.test', type: 1 }],
        answers: [
          { name: PTR_Q, type: 1, data: v4 },
          { name: PTR_Q, type: 28, data: Array.from(a) },
        ],
      })
      const [four, six] = parseMessage(m, () => undefined)!.answers
      expect(four!.data).toBe(v4.join('.'))
      expect(six!.data).toBe(ipv6Text(new DataView(a.buffer, a.byteOffset, 16), 0))
    }
  })

  it('counts truncated messages', () => {
    const an: string[] = []
    const m = parseMessage(response.subarray(0, 70), (n) => an.push(n))
    expect(m?.qname).toBe('www.example.com')
    expect(m?.answers.map((a) => a.data)).toEqual(['web.example.net'])
    expect(parseMessage(response.subarray(0, 11), (n) => an.push(n))).toBeUndefined()
    expect(an).toEqual(['dns_truncated_message', 'dns_truncated_message'])
  })

  it('gives the same transactions for TCP messages cut at every byte boundary', () => {
    const msgs = [
      [L7Dir.ToServer, tcpFrame(query)],
      [L7Dir.ToClient, tcpFrame(response)],
    ] as const
    const whole = feedSplit<DnsTx>(dnsParser, msgs, Infinity)
    expect(whole.txs).toHaveLength(1)
    for (let cut = 0; cut <= tcpFrame(response).byteLength; cut++) {
      const r = feedSplit<DnsTx>(dnsParser, msgs, cut)
      expect(r).toEqual(whole)
    }
    // Two messages in one segment, then byte by byte.
    const d = new Driver<DnsTx>(dnsParser)
    const both = new Uint8Array([...tcpFrame(query), ...tcpFrame(query)])
    for (const b of both) d.feed(L7Dir.ToServer, Uint8Array.of(b))
    expect(d.finish()).toHaveLength(2)
  })

  it('stops a TCP direction after a gap instead of misreading lengths', () => {
    const d = new Driver<DnsTx>(dnsParser)
    d.feed(L7Dir.ToServer, tcpFrame(query))
    dnsParser.gap!(d.state as DnsState, L7Dir.ToClient, 5, d.ctx)
    d.feed(L7Dir.ToClient, tcpFrame(response).subarray(5))
    expect(d.ctx.anomalies).toEqual(['dns_tcp_gap'])
    expect(dnsParser.wantsMore(d.state as DnsState)).toBe(true)
    expect(d.finish().map((t) => t.rcode)).toEqual([-1])
  })

  it('probes by content: DNS on any port, not random bytes or HTTP on port 53', () => {
    expect(dnsParser.probe(query, L7Dir.ToServer, 'udp')).toBe(true)
    expect(dnsParser.probe(response, L7Dir.ToClient, 'udp')).toBe(true)
    expect(dnsParser.probe(tcpFrame(query), L7Dir.ToServer, 'tcp')).toBe(true)
    expect(dnsParser.probe(ascii('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), L7Dir.ToServer, 'udp')).toBe(false)
    expect(dnsParser.probe(ascii('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), L7Dir.ToServer, 'tcp')).toBe(false)
    expect(dnsParser.probe(new Uint8Array(40), L7Dir.ToServer, 'udp')).toBe(false)
  })

  it('fuzz: arbitrary and mutated input only produces counted anomalies', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }),
          fc
            .tuple(fc.nat(response.byteLength - 1), fc.uint8Array({ minLength: 1, maxLength: 8 }))
            .map(([at, bytes]) => {
              const m = response.slice()
              m.set(bytes.subarray(0, m.byteLength - at), at)
              return m
            }),
        ),
        fc.boolean(),
        (bytes, tcp) => {
          const d = new Driver<DnsTx>(dnsParser, tcp ? 'tcp' : 'udp')
          d.feed(L7Dir.ToServer, bytes)
          d.feed(L7Dir.ToClient, bytes)
          d.finish()
          for (const a of d.ctx.anomalies) expect(a).toMatch(/^dns_[a-z_]+$/)
        },
      ),
      { seed: 42, numRuns: 2000 },
    )
  })
})

describe('DNS name text', () => {
  /** Zeek's rendering of a name from its labels: printable ASCII as is, other octets as \xNN, dots between. */
  const reference = (labels: Uint8Array[]): string =>
    labels
      .map((l) =>
        Array.from(l, (c) =>
          c > 0x20 && c < 0x7f ? String.fromCharCode(c) : '\\x' + c.toString(16).padStart(2, '0'),
        ).join(''),
      )
      .join('.')

  it('renders every label octet as Zeek prints it, for any labels', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 63 }), { minLength: 1, maxLength: 3 }),
        (labels) => {
          // A query whose question name is these labels.
          const name = labels.flatMap((l) => [l.length, ...l])
          const msg = Uint8Array.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...name, 0, 0, 1, 0, 1])
          const m = parseMessage(msg, () => undefined)
          expect(m?.qname).toBe(reference(labels))
        },
      ),
      { numRuns: 500 },
    )
  })

  it('renders names right however often they repeat', () => {
    // Names that differ in one octet, asked twice each.
    const labels = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 12 }), { numRuns: 1000, seed: 5 })
    for (const round of [0, 1])
      for (const [i, l] of labels.entries()) {
        const twin = Uint8Array.from(l, (c, k) => (k === 0 ? c ^ 1 : c))
        for (const label of [l, twin]) {
          const msg = Uint8Array.from([
            i >> 8,
            i & 0xff,
            1,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            label.length,
            ...label,
          ])
          const m = parseMessage(Uint8Array.from([...msg, 0, 0, 1, 0, 1]), () => undefined)
          expect(m?.qname, `round ${round}`).toBe(reference([label]))
        }
      }
  })
})
