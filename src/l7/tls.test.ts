// TLS hellos (RFC 8446 §4.1.2-4.1.3): ClientHello and ServerHello fields (SNI, ALPN, suites, groups,
// supported_versions), handshake messages across records, records cut at every byte boundary, probing,
// and fast-check fuzzing (malformed input only produces counted anomalies).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Driver, ascii, feedSplit } from '../../test/helpers/l7.js'
import { L7Dir } from './parser.js'
import { newTlsTx, parseClientHello, tlsParser, type TlsState, type TlsTx } from './tls.js'

const u16 = (v: number): number[] => [v >> 8, v & 0xff]
const u24 = (v: number): number[] => [v >> 16, (v >> 8) & 0xff, v & 0xff]
const vec16 = (b: number[]): number[] => [...u16(b.length), ...b]
const vec8 = (b: number[]): number[] => [b.length, ...b]
const ext = (type: number, body: number[]): number[] => [...u16(type), ...vec16(body)]
const str = (s: string): number[] => [...ascii(s)]

function handshake(type: number, body: number[]): number[] {
  return [type, ...u24(body.length), ...body]
}
function record(body: number[], version = 0x0301): Uint8Array {
  return Uint8Array.from([22, ...u16(version), ...u16(body.length), ...body])
}

const CH_BODY = [
  ...u16(0x0303),
  ...new Array<number>(32).fill(7),
  ...vec8([1, 2, 3, 4]),
  ...vec16([...u16(0x1301), ...u16(0xc02f), ...u16(0x002f)]),
  ...vec8([0]),
  ...vec16([
    ...ext(0, vec16([0, ...vec16(str('www.example.org'))])),
    ...ext(10, vec16([...u16(29), ...u16(23)])),
    ...ext(11, vec8([0])),
    ...ext(16, vec16([...vec8(str('h2')), ...vec8(str('http/1.1'))])),
    ...ext(43, vec8([...u16(0x0304), ...u16(0x0303)])),
  ]),
]
const SH_BODY = [
  ...u16(0x0303),
  ...new Array<number>(32).fill(9),
  ...vec8([]),
  ...u16(0x1301),
  0,
  ...vec16([...ext(43, u16(0x0304)), ...ext(16, vec16(vec8(str('h2'))))]),
]
const CLIENT_HELLO = record(handshake(1, CH_BODY))
const SERVER_HELLO = record(handshake(2, SH_BODY), 0x0303)

describe('tls parser', () => {
  it("reads ClientHello and ServerHello into one transaction, done at the client's first encrypted record", () => {
    const d = new Driver<TlsTx>(tlsParser)
    d.feed(L7Dir.ToServer, CLIENT_HELLO)
    d.feed(L7Dir.ToClient, SERVER_HELLO)
    expect(tlsParser.wantsMore(d.state as TlsState)).toBe(true)
    d.feed(L7Dir.ToClient, Uint8Array.from([23, 3, 3, 0, 2, 0xaa, 0xbb]))
    d.feed(L7Dir.ToServer, Uint8Array.from([20, 3, 3, 0, 1, 1]))
    expect(tlsParser.wantsMore(d.state as TlsState)).toBe(true)
    d.feed(L7Dir.ToServer, Uint8Array.from([23, 3, 3, 0, 2, 0xcc, 0xdd]))
    expect(tlsParser.wantsMore(d.state as TlsState)).toBe(false)
    expect(d.finish()).toEqual([
      expect.objectContaining({
        recordVersion: 0x0301,
        clientVersion: 0x0303,
        serverVersion: 0x0304,
        sni: 'www.example.org',
        alpnOffered: ['h2', 'http/1.1'],
        alpn: 'h2',
        cipherSuites: [0x1301, 0xc02f, 0x002f],
        cipherSuite: 0x1301,
        extensionTypes: [0, 10, 11, 16, 43],
        supportedGroups: [29, 23],
        ecPointFormats: [0],
        supportedVersions: [0x0304, 0x0303],
        sessionIdLength: 4,
        resumed: 0,
      }),
    ])
    expect(d.ctx.anomalies).toEqual([])
  })

  it("measures the setup time: ClientHello to the client's first encrypted record", () => {
    const d = new Driver<TlsTx>(tlsParser)
    const at = (us: number): void => {
      ;(d.ctx as { tsUs: number }).tsUs = us
    }
    at(1_000_000)
    d.feed(L7Dir.ToServer, CLIENT_HELLO)
    at(1_030_000)
    d.feed(L7Dir.ToClient, SERVER_HELLO)
    at(1_075_000)
    d.feed(L7Dir.ToServer, Uint8Array.from([23, 3, 3, 0, 1, 0]))
    expect(d.finish()[0]?.setupUs).toBe(75_000)
  })

  it('tells a resumed TLS 1.2 session (abbreviated handshake) by session ID and by ticket', () => {
    const sid = new Array<number>(32).fill(5)
    const ch = (withTicket: boolean): Uint8Array =>
      record(
        handshake(1, [
          ...u16(0x0303),
          ...new Array<number>(32).fill(7),
          ...vec8(sid),
          ...vec16(u16(0xc02f)),
          ...vec8([0]),
          ...vec16(withTicket ? ext(35, [1, 2, 3, 4]) : []),
        ]),
      )
    const sh = (echo: boolean, more: number[] = []): Uint8Array =>
      record(
        [
          ...handshake(2, [
            ...u16(0x0303),
            ...new Array<number>(32).fill(9),
            ...vec8(echo ? sid : []),
            ...u16(0xc02f),
            0,
          ]),
          ...more,
        ],
        0x0303,
      )
    const ccs = Uint8Array.from([20, 3, 3, 0, 1, 1])
    const run = (client: Uint8Array, server: Uint8Array): number => {
      const d = new Driver<TlsTx>(tlsParser)
      d.feed(L7Dir.ToServer, client)
      d.feed(L7Dir.ToClient, server)
      d.feed(L7Dir.ToClient, ccs)
      d.feed(L7Dir.ToServer, ccs)
      d.feed(L7Dir.ToServer, Uint8Array.from([22, 3, 3, 0, 2, 0xee, 0xee])) // encrypted Finished
      return d.finish()[0]!.resumed
    }
    expect(run(ch(false), sh(true))).toBe(1)
    expect(run(ch(true), sh(false))).toBe(2)
    // A full handshake: Certificate and ServerHelloDone follow the ServerHello before the server's CCS.
    expect(run(ch(false), sh(false, [...handshake(11, [0, 0, 0]), ...handshake(14, [])]))).toBe(0)
  })

  it('reads the other extensions when one is malformed (counted)', () => {
    const body = [
      ...u16(0x0303),
      ...new Array<number>(32).fill(7),
      ...vec8([]),
      ...vec16(u16(0x1301)),
      ...vec8([0]),
      ...vec16([...ext(16, [0, 9, 1]), ...ext(0, vec16([0, ...vec16(str('a.example'))]))]),
    ]
    const d = new Driver<TlsTx>(tlsParser)
    d.feed(L7Dir.ToServer, record(handshake(1, body)))
    expect(d.finish()[0]).toMatchObject({ sni: 'a.example', extensionTypes: [16, 0] })
    expect(d.ctx.anomalies).toEqual(['tls_bad_extension'])
  })

  it('keeps what a ClientHello cut short gave before the cut', () => {
    const body = Uint8Array.from(CH_BODY)
    const whole = newTlsTx()
    expect(parseClientHello(body, whole)).toBe(0)
    // version 2, random 32, session ID 1 + 4, suites 2 + 6, compression 1 + 1: the extensions start at 51.
    for (let cut = 0; cut < body.byteLength; cut++) {
      const tx = newTlsTx()
      expect(parseClientHello(body.subarray(0, cut), tx)).toBe(cut === 49 || cut === 50 ? 0 : undefined)
      expect(tx.clientVersion).toBe(cut >= 2 ? 0x0303 : 0)
      expect([...tx.clientSessionId]).toEqual(cut >= 35 ? [1, 2, 3, 4].slice(0, cut - 35) : [])
      expect(tx.cipherSuites).toEqual(cut >= 47 ? whole.cipherSuites : [])
      expect(tx.sni).toBe('')
    }
  })

  it('gathers a handshake message split over several records', () => {
    const hs = handshake(1, CH_BODY)
    const d = new Driver<TlsTx>(tlsParser)
    d.feed(L7Dir.ToServer, record(hs.slice(0, 10)))
    d.feed(L7Dir.ToServer, record(hs.slice(10)))
    expect(d.finish()[0]?.sni).toBe('www.example.org')
  })

  it("keeps its own copy of a message cut across records (the caller's buffer is reused)", () => {
    // The engine hands the parser views of packet buffers that the next packet overwrites.
    const hs = handshake(1, CH_BODY)
    const whole = new Driver<TlsTx>(tlsParser)
    whole.feed(L7Dir.ToServer, record(hs))
    for (const cut of [1, 4, 10, 60, hs.length - 1]) {
      const s = tlsParser.newState('tcp')
      const d = new Driver<TlsTx>(tlsParser)
      for (const part of [hs.slice(0, cut), hs.slice(cut)]) {
        const buf = record(part)
        expect(tlsParser.parse(s, L7Dir.ToServer, buf, d.ctx).kind).toBe('ok')
        buf.fill(0xee)
      }
      tlsParser.finish(s, d.ctx)
      expect(d.ctx.txs).toEqual(whole.finish())
    }
  })

  it('gives the same transaction for records cut at every byte boundary', () => {
    const msgs = [
      [L7Dir.ToServer, CLIENT_HELLO],
      [L7Dir.ToClient, SERVER_HELLO],
    ] as const
    const whole = feedSplit<TlsTx>(tlsParser, msgs, Infinity)
    for (let cut = 0; cut <= CLIENT_HELLO.byteLength; cut++)
      expect(feedSplit(tlsParser, msgs, cut)).toEqual(whole)
  })

  it('probes by content', () => {
    expect(tlsParser.probe(CLIENT_HELLO, L7Dir.ToServer, 'tcp')).toBe(true)
    expect(tlsParser.probe(SERVER_HELLO, L7Dir.ToClient, 'tcp')).toBe(true)
    expect(tlsParser.probe(SERVER_HELLO, L7Dir.ToServer, 'tcp')).toBe(false)
    expect(tlsParser.probe(ascii('GET / HTTP/1.1\r\n\r\n'), L7Dir.ToServer, 'tcp')).toBe(false)
  })

  it('fuzz: arbitrary and mutated input only produces counted anomalies', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }),
          fc
            .tuple(fc.nat(CLIENT_HELLO.byteLength - 1), fc.uint8Array({ minLength: 1, maxLength: 6 }))
            .map(([at, b]) => {
              const m = CLIENT_HELLO.slice()
              m.set(b.subarray(0, m.byteLength - at), at)
              return m
            }),
        ),
        (bytes) => {
          const d = new Driver<TlsTx>(tlsParser)
          d.feed(L7Dir.ToServer, bytes)
          d.feed(L7Dir.ToClient, SERVER_HELLO)
          d.finish()
          for (const a of d.ctx.anomalies) expect(a).toMatch(/^tls_[a-z_]+$/)
        },
      ),
      { seed: 11, numRuns: 2000 },
    )
  })
})
