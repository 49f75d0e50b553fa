// The L7 engine (src/l7/engine.ts) from decoded packets: only flows whose first payload packets a parser
// claims get a slot; unclaimed flows are rejected after `probePackets`; slots are bounded and reused; the
// per-flow byte bound stops a flow that buffers too much; the parser stopping frees the slot at once; a
// parser hands a flow on (named target, or re-detection after an HTTP CONNECT) with the bytes it left.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PacketInfo } from '../decode/packet.js'
import { ascii, withoutSkip } from '../../test/helpers/l7.js'
import { L7Engine, type L7EngineOptions } from './engine.js'
import { httpParser, type HttpState, type HttpTx } from './http.js'
import { incomplete, L7Dir, OK, parseError, switchTo, type L7Parser } from './parser.js'

const OPTS: L7EngineOptions = { maxFlows: 2, maxBytesPerFlow: 1024, maxBytesTotal: 4096, probePackets: 2 }

/** A decoded TCP packet whose payload is `data` (the PacketInfo points into its own buffer). */
function pkt(data: Uint8Array, seq: number, flags = 0x18): PacketInfo {
  const p = new PacketInfo()
  p.buf = data
  p.payloadOffset = 0
  p.payloadCaptured = data.byteLength
  p.payloadLength = data.byteLength
  p.protocol = 6
  p.ipVersion = 4
  p.srcPort = 40000
  p.dstPort = 80
  p.tcpSeq = seq
  p.tcpFlags = flags
  return p
}

function engine(opts = OPTS): { e: L7Engine<HttpTx>; txs: HttpTx[] } {
  const txs: HttpTx[] = []
  const e = new L7Engine<HttpTx>([httpParser], (_k, tx) => txs.push(tx), opts)
  e.resize(16, 0)
  return { e, txs }
}

const GET = ascii('GET / HTTP/1.1\r\nHost: a\r\n\r\n')

describe('L7 engine', () => {
  it('gives slots only to claimed flows and rejects the others after probePackets', () => {
    const { e } = engine()
    e.onCreate(1, 0)
    e.onPacket(1, pkt(ascii('SSH-2.0-x\r\n'), 1), L7Dir.ToServer, 1)
    e.onPacket(1, pkt(ascii('more'), 12), L7Dir.ToServer, 2)
    expect(e.counters.flowsRejected).toBe(1)
    expect(e.activeFlows).toBe(0)
    e.onPacket(1, pkt(GET, 16), L7Dir.ToServer, 3) // too late: the flow was rejected
    expect(e.activeFlows).toBe(0)
    e.onCreate(2, 0)
    e.onPacket(2, pkt(GET, 1), L7Dir.ToServer, 1)
    expect(e.counters.flowsClaimed).toBe(1)
    expect(e.activeFlows).toBe(1)
  })

  it('bounds the number of L7 flows and reuses freed slots', () => {
    const { e, txs } = engine()
    for (let id = 0; id < 3; id++) {
      e.onCreate(id, 0)
      e.onPacket(id, pkt(GET, 1), L7Dir.ToServer, 1)
    }
    expect(e.activeFlows).toBe(2)
    expect(e.counters.slotsExhausted).toBe(1)
    e.end(0)
    expect(txs).toHaveLength(1)
    e.onCreate(5, 0)
    e.onPacket(5, pkt(GET, 1), L7Dir.ToServer, 1)
    expect(e.activeFlows).toBe(2)
  })

  it('keeps the pending input of interleaved flows apart while their buffers go round the pool', () => {
    const got: [number, string, string][] = []
    const e = new L7Engine<HttpTx>([httpParser], (k, tx) => got.push([k.flowId, tx.target, tx.host]), {
      ...OPTS,
      maxBytesTotal: 1 << 20,
      maxBytesPerFlow: 1 << 16,
    })
    e.resize(16, 0)
    const seq = [1, 1, 1]
    const send = (id: number, text: string): void => {
      const p = pkt(ascii(text), seq[id]!)
      p.srcPort = 40000 + id
      e.onPacket(id, p, L7Dir.ToServer, 1)
      seq[id]! += text.length
    }
    e.onCreate(1, 0)
    e.onCreate(2, 0)
    for (let n = 0; n < 4; n++) {
      // Each request in three segments; the two flows' halves wait at the same time.
      send(1, `GET /one${n} HTTP/1.1\r\nHo`)
      send(2, `GET /two${n} HTTP/1.1\r\nHost: tw`)
      // The third requests carry long header lines: they wait in the larger pooled rooms.
      const pad = n === 2 ? `\r\nX-Pad: ${'p'.repeat(3000)}\r\nX-Pad2: ${'q'.repeat(9000)}` : ''
      send(1, `st: one${n}.example\r\nAccept: */*${pad}`)
      send(2, `o${n}.example\r\n${n === 2 ? `X-Pad: ${'r'.repeat(14000)}\r\n` : ''}`)
      send(1, '\r\n\r\n')
      send(2, '\r\n')
    }
    e.end(1)
    e.end(2)
    const expected = (id: number, name: string): [number, string, string][] =>
      [0, 1, 2, 3].map((n) => [id, `/${name}${n}`, `${name}${n}.example`])
    expect(got.filter((g) => g[0] === 1)).toEqual(expected(1, 'one'))
    expect(got.filter((g) => g[0] === 2)).toEqual(expected(2, 'two'))
  })

  it('stops a flow whose buffered bytes exceed the per-flow bound', () => {
    const { e } = engine()
    e.onCreate(0, 0)
    e.onPacket(0, pkt(ascii('GET / HTTP/1.1\r\n'), 1), L7Dir.ToServer, 1)
    // Out-of-order data beyond the bound, then a header that never ends.
    let seq = 17
    for (let i = 0; i < 20 && e.activeFlows > 0; i++) {
      e.onPacket(0, pkt(ascii(`X-Filler-${i}: ${'y'.repeat(100)}\r\n`), seq), L7Dir.ToServer, 2)
      seq += 13 + String(i).length + 100
    }
    expect(e.counters.bufferOverflows).toBe(1)
    expect(e.activeFlows).toBe(0)
    expect(e.total.used).toBe(0)
  })

  it('frees the slot as soon as the parser needs no more bytes (WebSocket upgrade)', () => {
    const { e, txs } = engine()
    e.onCreate(0, 0)
    e.onPacket(0, pkt(ascii('GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n'), 1), L7Dir.ToServer, 1)
    e.onPacket(0, pkt(ascii('HTTP/1.1 101 Switching Protocols\r\n\r\n'), 100), L7Dir.ToClient, 2)
    expect(e.activeFlows).toBe(0)
    expect(txs.map((t) => t.upgrade)).toEqual(['websocket'])
  })
})

/** A toy in-band upgrade: the client sends "UPGRADE <to>\n", the server "OK\n", then the flow is `to`. */
const upgrader: L7Parser<{ to: string | undefined }, never> = {
  name: 'toy',
  transports: ['tcp'],
  ports: [],
  upgradesTo: ['http'],
  probe: (b) => b[0] === 0x55, // 'U'
  newState: () => ({ to: undefined }),
  parse(s, dir, b) {
    const e = b.indexOf(0x0a)
    if (e < 0) return incomplete(0, b.byteLength + 1)
    const line = String.fromCharCode(...b.subarray(0, e))
    if (dir === L7Dir.ToServer) {
      s.to = line.slice('UPGRADE '.length)
      // Client bytes after the command belong to the next protocol: keep them until the server agrees.
      return e + 1 < b.byteLength ? incomplete(e + 1, b.byteLength - e) : OK
    }
    return line === 'OK' && s.to !== undefined ? switchTo(s.to, e + 1) : parseError('toy_refused')
  },
  wantsMore: () => true,
  finish: () => undefined,
}

function upgradeEngine(targets?: string[]): { e: L7Engine<HttpTx>; txs: HttpTx[]; parsers: string[] } {
  const txs: HttpTx[] = []
  const parsers: string[] = []
  const opts = { ...OPTS, ...(targets !== undefined ? { handoffTargets: targets } : {}) }
  const e = new L7Engine<HttpTx>(
    [httpParser, upgrader],
    (_k, tx, _ts, parser) => {
      txs.push(tx)
      parsers.push(parser)
    },
    opts,
  )
  e.resize(16, 0)
  e.onCreate(0, 0)
  return { e, txs, parsers }
}

describe('L7 engine hand-off', () => {
  it('hands the flow to the named parser with the bytes the old one left, both directions', () => {
    const { e, txs, parsers } = upgradeEngine()
    const up = ascii('UPGRADE http\n')
    // The client's request is captured before the server's OK: it waits as the old parser's input.
    e.onPacket(0, pkt(new Uint8Array([...up, ...GET]), 1), L7Dir.ToServer, 1)
    expect(e.parserOf(0)).toBe(1)
    e.onPacket(0, pkt(ascii('OK\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 100), L7Dir.ToClient, 2)
    expect(e.parserOf(0)).toBe(0)
    expect(e.counters.handoffs).toBe(1)
    expect(e.counters.byParser.get('http')!.handoffs).toBe(1)
    expect(txs.map((t) => [t.host, t.status])).toEqual([['a', 200]])
    expect(parsers).toEqual(['http'])
  })

  it('ends L7 work quietly when the target takes no hand-offs', () => {
    const { e, txs } = upgradeEngine([])
    e.onPacket(0, pkt(ascii('UPGRADE http\n'), 1), L7Dir.ToServer, 1)
    e.onPacket(0, pkt(ascii('OK\n'), 100), L7Dir.ToClient, 2)
    expect(e.activeFlows).toBe(0)
    e.onPacket(0, pkt(GET, 14), L7Dir.ToServer, 3)
    expect(txs).toEqual([])
    expect(e.counters.handoffs).toBe(0)
    expect([...e.counters.anomalies.keys()]).toEqual([])
  })

  it("re-detects the tunnel's protocol after an HTTP CONNECT", () => {
    const { e, txs, parsers } = upgradeEngine()
    e.onPacket(0, pkt(ascii('CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\n\r\n'), 1), L7Dir.ToServer, 1)
    e.onPacket(0, pkt(ascii('HTTP/1.1 200 Connection established\r\n\r\n'), 100), L7Dir.ToClient, 2)
    e.onPacket(0, pkt(ascii('UPGRADE http\n'), 38), L7Dir.ToServer, 3)
    expect(e.parserOf(0)).toBe(1)
    e.onPacket(0, pkt(ascii('OK\n'), 139), L7Dir.ToClient, 4)
    e.onPacket(0, pkt(GET, 51), L7Dir.ToServer, 5)
    e.end(0)
    expect(parsers).toEqual(['http', 'http'])
    expect(txs.map((t) => [t.method, t.upgrade])).toEqual([
      ['CONNECT', 'connect'],
      ['GET', ''],
    ])
    expect(e.counters.handoffs).toBe(2)
  })
})

describe('L7 engine: skipped bytes (L7Parser.skip)', () => {
  /** The HTTP parser without `skip`: every body byte goes through parse, as before skipping existed. */
  const noSkip = withoutSkip(httpParser)

  const body = (n: number): string => 'x'.repeat(n)
  const chunked = (sizes: number[]): string =>
    sizes.map((n) => `${n.toString(16)}\r\n${body(n)}\r\n`).join('') + '0\r\n\r\n'
  const request = fc.constantFrom(
    'GET /a HTTP/1.1\r\nHost: a\r\n\r\n',
    `POST /b HTTP/1.1\r\nHost: b\r\nContent-Length: 300\r\n\r\n${body(300)}`,
    `PUT /c HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n${chunked([5, 200, 17])}`,
  )
  const response = fc.constantFrom(
    `HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${body(1000)}`,
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunked([100, 1, 700])}`,
    'HTTP/1.1 304 Not Modified\r\n\r\n',
  )

  /**
   * Feeds `stream` of direction `dir` as segments cut at `cuts`, leaving out the segments in `lost`; `swaps`
   * exchange segments after the first (reordering) and `dups` segments are sent again at the end.
   */
  function feed(
    e: L7Engine<HttpTx>,
    dir: L7Dir,
    stream: Uint8Array,
    cuts: number[],
    lost: Set<number>,
    swaps: number[] = [],
    dups = 0,
  ): void {
    const at = [
      0,
      ...cuts.filter((c) => c > 0 && c < stream.byteLength).sort((a, b) => a - b),
      stream.byteLength,
    ]
    const order = at.slice(0, -1).map((_, i) => i)
    for (const w of swaps) {
      const a = 1 + (w % Math.max(1, order.length - 1))
      const b = 1 + ((w >>> 4) % Math.max(1, order.length - 1))
      if (a < order.length && b < order.length) [order[a], order[b]] = [order[b]!, order[a]!]
    }
    for (const i of [...order, ...order.slice(1, 1 + dups)]) {
      if (at[i] === at[i + 1] || lost.has(i)) continue
      const p = pkt(stream.slice(at[i], at[i + 1]), (dir === L7Dir.ToServer ? 1000 : 500000) + at[i]!)
      if (dir === L7Dir.ToClient) [p.srcPort, p.dstPort] = [80, 40000]
      e.onPacket(1, p, dir, 1 + i)
    }
  }

  /**
   * One flow of `parser` carrying the requests and responses of `pairs` as `send` feeds the two streams
   * (whole requests, whole responses) to the engine: its transactions, anomalies and reassembly counts.
   */
  function exchange(
    parser: L7Parser<HttpState, HttpTx>,
    pairs: [string, string][],
    send: (e: L7Engine<HttpTx>, up: Uint8Array, down: Uint8Array) => void,
  ): { txs: HttpTx[]; anomalies: [string, number][]; reassembly: unknown } {
    const txs: HttpTx[] = []
    const opts = { maxFlows: 4, maxBytesPerFlow: 1 << 20, maxBytesTotal: 1 << 22, probePackets: 4 }
    const e = new L7Engine<HttpTx>([parser], (_k, tx) => txs.push(tx), opts)
    e.resize(4, 0)
    e.onCreate(1, 0)
    send(e, ascii(pairs.map((p) => p[0]).join('')), ascii(pairs.map((p) => p[1]).join('')))
    e.end(1)
    return { txs, anomalies: [...e.counters.anomalies], reassembly: e.counters.reassembly }
  }

  it('gives the same transactions and anomalies as parsing every byte, with any segmentation and losses', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(request, response), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 6000 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 6000 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 2 }),
        (pairs, cutsUp, cutsDown, lostDown) => {
          // The first request segment whole, so the flow is claimed.
          const run = (parser: L7Parser<HttpState, HttpTx>): unknown => {
            const { txs, anomalies } = exchange(parser, pairs, (e, up, down) => {
              feed(e, L7Dir.ToServer, up, cutsUp, new Set())
              feed(e, L7Dir.ToClient, down, cutsDown, new Set(lostDown))
            })
            return { txs, anomalies }
          }
          expect(run(httpParser)).toEqual(run(noSkip))
        },
      ),
      { numRuns: 300 },
    )
  })

  it('gives the same transactions, anomalies and stream counts as parsing every byte, segments reordered', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(request, response), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 6000 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 6000 }), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.nat(3),
        fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 2 }),
        (pairs, cutsUp, cutsDown, swapsUp, swapsDown, dups, lostDown) => {
          const run = (parser: L7Parser<HttpState, HttpTx>): unknown =>
            exchange(parser, pairs, (e, up, down) => {
              feed(e, L7Dir.ToServer, up, cutsUp, new Set(), swapsUp, dups)
              feed(e, L7Dir.ToClient, down, cutsDown, new Set(lostDown), swapsDown, dups)
            })
          expect(run(httpParser)).toEqual(run(noSkip))
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('L7 engine: segments that arrive before the claiming one', () => {
  const REQ = ascii('GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: t/1\r\n\r\n')
  const RESP = ascii('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
  const OOO: L7EngineOptions = { ...OPTS, maxBytesPerFlow: 1 << 16, maxBytesTotal: 1 << 20, probePackets: 4 }

  /** The fields of transactions `txs` that tell whether a request was read whole. */
  const fieldsOf = (txs: HttpTx[]): string[][] =>
    txs.map((t) => [t.method, t.host, t.target, String(t.status)])

  /** The request cut at `cuts`, its pieces sent in `order`, then the response; the transactions' fields. */
  function run(cuts: number[], order: number[]): { e: L7Engine<HttpTx>; got: string[][] } {
    const { e, txs } = engine(OOO)
    e.onCreate(0, 0)
    const bounds = [0, ...cuts, REQ.byteLength]
    for (const i of order)
      e.onPacket(0, pkt(REQ.subarray(bounds[i], bounds[i + 1]), 1000 + bounds[i]!), L7Dir.ToServer, 1)
    e.onPacket(0, pkt(RESP, 5000), L7Dir.ToClient, 2)
    e.end(0)
    return { e, got: fieldsOf(txs) }
  }
  const WHOLE = [['GET', 'www.example.com', '/index.html', '200']]

  it('reads the request whole when its second segment came first', () => {
    const { e, got } = run([30], [1, 0])
    expect(got).toEqual(WHOLE)
    expect(e.held.used).toBe(0)
  })

  it('reads the request whole for any order of its first four segments', () => {
    fc.assert(
      fc.property(
        // The first piece holds the method and a space, so that the probe can recognise it.
        fc.uniqueArray(fc.integer({ min: 4, max: REQ.byteLength - 1 }), { minLength: 1, maxLength: 3 }),
        fc.nat(),
        (cutList, seed) => {
          const cuts = [...cutList].sort((a, b) => a - b)
          const order = cuts.map((_, i) => i).concat(cuts.length)
          // A seeded permutation of the pieces.
          let r = seed
          for (let i = order.length - 1; i > 0; i--) {
            r = (r * 1103515245 + 12345) >>> 0
            const j = r % (i + 1)
            ;[order[i], order[j]] = [order[j]!, order[i]!]
          }
          const { e, got } = run(cuts, order)
          expect(got).toEqual(WHOLE)
          expect(e.held.used).toBe(0)
          expect(e.total.used).toBe(0)
        },
      ),
    )
  })

  it('drops held segments that lie before the claiming one, as if never held', () => {
    const { e, txs } = engine(OOO)
    e.onCreate(0, 0)
    e.onPacket(0, pkt(ascii('\x00\x01junk'), 994), L7Dir.ToServer, 1)
    e.onPacket(0, pkt(REQ, 1000), L7Dir.ToServer, 2)
    e.end(0)
    expect(txs.map((t) => t.target)).toEqual(['/index.html'])
    expect(e.counters.reassembly.retransmissions).toBe(0)
    expect(e.held.used).toBe(0)
  })

  it('holds at most probePackets - 1 segments of a flow, and releases them on rejection', () => {
    const { e } = engine(OOO)
    e.onCreate(0, 0)
    e.onPacket(0, pkt(ascii('SSH-2.0-x\r\n'), 1), L7Dir.ToServer, 1)
    e.onPacket(0, pkt(ascii('in order'), 12), L7Dir.ToServer, 2)
    e.onPacket(0, pkt(ascii('ahead'), 100), L7Dir.ToServer, 3)
    expect(e.held.used).toBe(24)
    e.onPacket(0, pkt(ascii('more'), 20), L7Dir.ToServer, 4) // the fourth probe: rejected
    expect(e.counters.flowsRejected).toBe(1)
    expect(e.held.used).toBe(0)
  })

  it('holds only segments beyond the next expected one when the handshake was seen', () => {
    const { e, txs } = engine(OOO)
    e.onHandshake(0, L7Dir.ToServer, 999) // the initiator's SYN (while the flow had no payload)
    e.onCreate(0, 0)
    e.onPacket(0, pkt(ascii('SSH-2.0-x\r\n'), 1000), L7Dir.ToServer, 1) // in order: not held
    e.onPacket(0, pkt(ascii('in order'), 1011), L7Dir.ToServer, 2) // in order: not held
    expect(e.held.used).toBe(0)
    e.onPacket(0, pkt(ascii('ahead'), 1100), L7Dir.ToServer, 3) // beyond a hole: held
    expect(e.held.used).toBe(5)
    e.end(0)
    expect(e.held.used).toBe(0)
    // The responder's SYN/ACK seen after the first payload, while unprobed: its in-order bytes are not held
    // either. A new flow on the id knows no handshake (forgetHandshake).
    e.onHandshake(1, L7Dir.ToServer, 999)
    e.forgetHandshake(1)
    e.onCreate(1, 0)
    e.onHandshake(1, L7Dir.ToClient, 4999)
    e.onPacket(1, pkt(ascii('220 banner\r\n'), 5000), L7Dir.ToClient, 1)
    expect(e.held.used).toBe(0)
    e.onPacket(1, pkt(REQ.subarray(20), 1020), L7Dir.ToServer, 2) // no SYN seen this way: held
    expect(e.held.used).toBe(REQ.byteLength - 20)
    e.onPacket(1, pkt(REQ.subarray(0, 20), 1000), L7Dir.ToServer, 3)
    e.end(1)
    expect(txs.map((t) => [t.method, t.target])).toEqual([['GET', '/index.html']])
    expect(e.held.used).toBe(0)
  })

  it("drops the other direction's held bytes: they came before the claim (an exchange before the protocol)", () => {
    const { e, txs } = engine(OOO)
    e.onCreate(0, 0)
    e.onPacket(0, pkt(ascii('\x03\x00\x00\x0bgreeting\r\n'), 5000), L7Dir.ToClient, 1)
    e.onPacket(0, pkt(REQ, 1000), L7Dir.ToServer, 2)
    e.onPacket(0, pkt(RESP, 5014), L7Dir.ToClient, 3)
    e.end(0)
    expect(txs.map((t) => [t.target, t.status])).toEqual([['/index.html', 200]])
    expect([...e.counters.anomalies.keys()]).toEqual([])
    expect(e.held.used).toBe(0)
  })

  it('bounds the bytes held in all, counting what it does not hold', () => {
    const small = { ...OOO, maxBytesTotal: 16 * 40 } // 40 bytes may be held in all
    const { e } = engine(small)
    e.onCreate(0, 0)
    e.onCreate(1, 0)
    e.onPacket(0, pkt(new Uint8Array(30), 1), L7Dir.ToServer, 1)
    e.onPacket(1, pkt(new Uint8Array(30), 1), L7Dir.ToServer, 1)
    expect(e.held.used).toBe(30)
    expect(e.counters.anomalies.get('l7_unclaimed_not_held')).toBe(1)
    e.end(0)
    e.end(1)
    expect(e.held.used).toBe(0)
  })

  it('keeps held segments with their direction when the initiator turns out to be the other side', () => {
    const { e, txs } = engine(OOO)
    e.onCreate(0, 0)
    // The request's second half, seen first and taken for the responder's bytes; then the flow is turned.
    e.onPacket(0, pkt(REQ.subarray(30), 1030), L7Dir.ToClient, 1)
    e.onSwap(0)
    e.onPacket(0, pkt(REQ.subarray(0, 30), 1000), L7Dir.ToServer, 2)
    e.onPacket(0, pkt(RESP, 5000), L7Dir.ToClient, 3)
    e.end(0)
    expect(fieldsOf(txs)).toEqual(WHOLE)
    expect(e.held.used).toBe(0)
  })
})

describe('L7 engine: what a parser charges to the flow budget', () => {
  it('returns to the total what a parser charged and did not release, and counts it', () => {
    const leaky: L7Parser<object, never> = {
      name: 'leaky',
      transports: ['tcp'],
      ports: [],
      probe: (b) => b[0] === 0x4c, // 'L'
      newState: () => ({}),
      parse(_s, _d, _b, ctx) {
        ctx.budget?.reserve(100)
        return OK
      },
      wantsMore: () => true,
      finish: () => undefined,
    }
    const e = new L7Engine<never>([leaky], () => undefined, OPTS)
    e.resize(16, 0)
    e.onCreate(0, 0)
    e.onPacket(0, pkt(ascii('Leak'), 1), L7Dir.ToServer, 1)
    expect(e.total.used).toBe(100)
    e.end(0)
    expect(e.total.used).toBe(0)
    expect(e.counters.anomalies.get('l7_budget_not_released')).toBe(1)
    expect(e.counters.byParser.get('leaky')!.anomalies.get('l7_budget_not_released')).toBe(1)
  })
})
