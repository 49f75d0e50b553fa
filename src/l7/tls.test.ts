// TLS hellos (RFC 8446 §4.1.2-4.1.3): ClientHello and ServerHello fields (SNI, ALPN, suites, groups,
// supported_versions), handshake messages across records, records cut at every byte boundary, probing,
// and fast-check fuzzing (malformed input only produces counted anomalies).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Driver, ascii, feedSplit, withoutSkip } from '../../test/helpers/l7.js'
import {
  ext,
  handshake,
  manySuitesHello,
  record,
  str,
  u16,
  u24,
  vec16,
  vec8,
} from '../../test/helpers/tls-bytes.js'
import { PacketInfo } from '../decode/packet.js'
import { L7Engine } from './engine.js'
import { L7Dir, type L7Parser } from './parser.js'
import {
  MAX_HELLO_LIST,
  newTlsTx,
  parseClientHello,
  retainedTxBytes,
  tlsParser,
  type TlsState,
  type TlsTx,
} from './tls.js'

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

describe('tls parser: records passed over (encrypted, alerts, ChangeCipherSpec) through the engine', () => {
  const opaque = (type: number, n: number, fill = 0x5a): Uint8Array =>
    Uint8Array.from([type, 3, 3, ...u16(n), ...new Array<number>(n).fill(fill)])
  const cat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]))
  const CCS = opaque(20, 1, 1)

  /** The same parser without skip: every byte goes to parse, and gaps reach it as before passing over. */
  const everyByte = withoutSkip(tlsParser)

  /**
   * Runs the flow through an engine: the client's hello whole, the server's stream cut at `cuts` without
   * the segments in `lost`, then the client's stream after its hello. Each segment is its own capture time,
   * so the setup time tells when a record took effect.
   */
  function run(
    parser: L7Parser<TlsState, TlsTx>,
    server: Uint8Array,
    client: Uint8Array,
    cuts: number[],
    lost: Set<number>,
    peak: { held: number } = { held: 0 },
  ): unknown {
    const txs: Array<[TlsTx, number]> = []
    const opts = { maxFlows: 2, maxBytesPerFlow: 1 << 20, maxBytesTotal: 1 << 22, probePackets: 4 }
    const e = new L7Engine<TlsTx>([parser], (_k, tx, ts) => txs.push([tx, ts]), opts)
    e.resize(2, 0)
    e.onCreate(1, 0)
    let ts = 1
    const send = (dir: L7Dir, data: Uint8Array, seq: number): void => {
      const p = new PacketInfo()
      p.buf = data
      p.payloadCaptured = p.payloadLength = data.byteLength
      p.protocol = 6
      p.ipVersion = 4
      ;[p.srcPort, p.dstPort] = dir === L7Dir.ToServer ? [40000, 443] : [443, 40000]
      p.tcpSeq = seq
      p.tcpFlags = 0x18
      e.onPacket(1, p, dir, ts++)
      peak.held = Math.max(peak.held, e.total.used)
    }
    send(L7Dir.ToServer, CLIENT_HELLO, 1000)
    const at = [
      0,
      ...cuts.filter((c) => c > 0 && c < server.byteLength).sort((a, b) => a - b),
      server.byteLength,
    ]
    for (let i = 0; i + 1 < at.length; i++)
      if (at[i] !== at[i + 1] && !lost.has(i))
        send(L7Dir.ToClient, server.slice(at[i], at[i + 1]), 50000 + at[i]!)
    send(L7Dir.ToServer, client, 1000 + CLIENT_HELLO.byteLength)
    e.end(1)
    return { txs, anomalies: [...e.counters.anomalies] }
  }

  const serverStreams = fc.constantFrom(
    // TLS 1.3: ServerHello, CCS, the encrypted flight and application data (a full-size record among them).
    cat(SERVER_HELLO, CCS, opaque(23, 3000), opaque(23, 16384 + 256), opaque(23, 40)),
    // An alert cut across segments ends the handshake.
    cat(SERVER_HELLO, opaque(23, 900), opaque(21, 2000), opaque(23, 500)),
    // A heartbeat and a ChangeCipherSpec cut across segments, then encrypted handshake records.
    cat(SERVER_HELLO, opaque(24, 700), opaque(20, 300, 1), opaque(22, 2500), opaque(23, 100)),
    // More records than the parser follows after the ServerHello.
    cat(SERVER_HELLO, ...Array.from({ length: 70 }, (_, i) => opaque(23, 50 + i * 7))),
  )
  const clientStreams = fc.constantFrom(
    cat(CCS, opaque(23, 53)),
    cat(CCS, opaque(23, 6000)),
    cat(opaque(21, 2)),
    new Uint8Array(0),
  )

  it('gives the same transactions, times and anomalies as parsing every byte, with any segmentation and losses', () => {
    fc.assert(
      fc.property(
        serverStreams,
        clientStreams,
        fc.array(fc.integer({ min: 1, max: 25000 }), { maxLength: 14 }),
        fc.array(fc.integer({ min: 1, max: 10 }), { maxLength: 2 }),
        (server, client, cuts, lost) => {
          expect(run(tlsParser, server, client, cuts, new Set(lost))).toEqual(
            run(everyByte, server, client, cuts, new Set(lost)),
          )
        },
      ),
      { numRuns: 300 },
    )
  })

  it('holds none of a record it passes over, and a loss inside one ends the transaction as any gap', () => {
    const server = cat(SERVER_HELLO, CCS, opaque(23, 16000), opaque(23, 40))
    const cuts = [SERVER_HELLO.byteLength + CCS.byteLength + 100, 8000, 12000]
    const peak = { held: 0 }
    const whole = run(tlsParser, server, cat(CCS, opaque(23, 53)), cuts, new Set(), peak) as {
      txs: Array<[TlsTx, number]>
    }
    // Client hello at 1; server segments at 2..5; the client's encrypted record at 6 ends the handshake.
    expect(whole.txs.map(([tx, ts]) => [tx.sni, tx.setupUs, ts])).toEqual([['www.example.org', 5, 6]])
    // Gathered whole, the 16 KB record would have waited in the engine's buffers (12000 octets at most).
    // What the budget holds is the open transaction the parser charges (its hello lists and strings).
    expect(peak.held).toBeLessThan(1000)
    // The segment 8000..12000 is lost and the client says nothing more: the flow's end finds the hole.
    const lossy = run(tlsParser, server, new Uint8Array(0), cuts, new Set([2])) as {
      txs: Array<[TlsTx, number]>
      anomalies: Array<[string, number]>
    }
    expect(lossy.anomalies).toContainEqual(['tls_gap', 1])
    expect(lossy.txs.map(([tx]) => [tx.sni, tx.setupUs])).toEqual([['www.example.org', 0]])
  })
})

describe('tls parser: parsed state charged to the L7 memory budget', () => {
  /** An engine with the TLS parser and the given budgets; flows 1 and 2 exist. */
  function engine(maxBytesPerFlow: number, maxBytesTotal = 1 << 24) {
    const txs: TlsTx[] = []
    const e = new L7Engine<TlsTx>([tlsParser], (_k, tx) => txs.push(tx), {
      maxFlows: 4,
      maxBytesPerFlow,
      maxBytesTotal,
      probePackets: 4,
    })
    e.resize(4, 0)
    e.onCreate(1, 0)
    e.onCreate(2, 0)
    let ts = 1
    const send = (id: number, dir: L7Dir, data: Uint8Array, seq: number): void => {
      const p = new PacketInfo()
      p.buf = data
      p.payloadCaptured = p.payloadLength = data.byteLength
      p.protocol = 6
      p.ipVersion = 4
      ;[p.srcPort, p.dstPort] = dir === L7Dir.ToServer ? [40000 + id, 443] : [443, 40000 + id]
      p.tcpSeq = seq
      p.tcpFlags = 0x18
      e.onPacket(id, p, dir, ts++)
    }
    const anomalies = (): Map<string, number> => e.counters.anomalies
    return { e, txs, send, anomalies }
  }

  /** A ClientHello with `suites` cipher suites (a hostile one: real hellos offer a few dozen), in records. */
  function bigHello(suites: number): Uint8Array {
    const hs = handshake(1, manySuitesHello(suites, 'hostile.example'))
    const out: Uint8Array[] = []
    for (let i = 0; i < hs.length; i += 16000) out.push(record(hs.slice(i, i + 16000), 0x0303))
    return Uint8Array.from(out.flatMap((p) => [...p]))
  }

  it('charges the open transaction to the flow and total budget until it leaves, then releases it', () => {
    const { e, txs, send } = engine(1 << 20)
    send(1, L7Dir.ToServer, CLIENT_HELLO, 1000)
    send(1, L7Dir.ToClient, SERVER_HELLO, 50000)
    // Nothing waits in the engine's buffers: what the budget holds is the parser's open transaction.
    const open = newTlsTx()
    parseClientHello(Uint8Array.from(CH_BODY), open)
    expect(e.total.used).toBeGreaterThan(retainedTxBytes(open))
    e.end(1)
    expect(txs.map((t) => t.sni)).toEqual(['www.example.org'])
    expect(e.total.used).toBe(0)
  })

  /** Records of the start of a Certificate message that claims 60000 octets: `n` of them, 16000 octets each. */
  function partialCertificate(n: number): Uint8Array[] {
    const head = [11, ...u24(60000)]
    return Array.from({ length: n }, (_, i) =>
      record(
        [...(i === 0 ? head : []), ...new Array<number>(i === 0 ? 16000 - 4 : 16000).fill(0x30)],
        0x0303,
      ),
    )
  }

  it('stops a flow whose kept state passes the per-flow budget (tls_state_over_budget): the hello leaves, memory is freed', () => {
    // The hello (1000 suites: 8 kB of list) fits 24 kB; the server's certificate gathered after it does not.
    const { e, txs, send, anomalies } = engine(24 * 1024)
    send(1, L7Dir.ToServer, bigHello(1000), 1000)
    expect(e.total.used).toBeGreaterThan(1000 * 8)
    let seq = 50000
    for (const r of [SERVER_HELLO, ...partialCertificate(2)]) {
      send(1, L7Dir.ToClient, r, seq)
      seq += r.byteLength
    }
    expect(anomalies().get('tls_state_over_budget')).toBe(1)
    expect(txs.map((t) => [t.sni, t.cipherSuites.length, t.serverVersion])).toEqual([
      ['hostile.example', 1000, 0x0304],
    ])
    expect(e.total.used).toBe(0)
  })

  it('stops the flow whose state does not fit what the other flows left of the total budget', () => {
    const { e, txs, send, anomalies } = engine(1 << 20, 30 * 1024)
    send(1, L7Dir.ToServer, bigHello(1000), 1000)
    send(2, L7Dir.ToServer, bigHello(1000), 1000)
    expect(anomalies().get('tls_state_over_budget')).toBeUndefined()
    const held = e.total.used
    expect(held).toBeGreaterThan(2 * 1000 * 8)
    send(1, L7Dir.ToClient, SERVER_HELLO, 50000)
    send(1, L7Dir.ToClient, partialCertificate(1)[0]!, 50000 + SERVER_HELLO.byteLength)
    expect(anomalies().get('tls_state_over_budget')).toBe(1)
    expect(txs.map((t) => t.sni)).toEqual(['hostile.example'])
    e.end(2)
    expect(e.total.used).toBe(0)
  })

  it('keeps at most MAX_HELLO_LIST entries of a hello list (tls_list_cut), so a hostile hello costs little', () => {
    // 20000 suites: a 40 kB message in three records, whose list would cost the state 160 kB.
    const { e, txs, send, anomalies } = engine(64 * 1024)
    send(1, L7Dir.ToServer, bigHello(20000), 1000)
    expect(anomalies().get('tls_list_cut')).toBe(1)
    expect(anomalies().get('tls_state_over_budget')).toBeUndefined()
    expect(e.total.used).toBeLessThan(MAX_HELLO_LIST * 8 + 2048)
    e.end(1)
    expect(txs.map((t) => [t.sni, t.cipherSuites.length])).toEqual([['hostile.example', MAX_HELLO_LIST]])
    expect(e.total.used).toBe(0)
  })
})
