// HTTP/1.x parser (RFC 9112): request/response fields, bodies skipped by Content-Length and chunked
// coding, pipelining and keep-alive (every transaction kept), HEAD/1xx/204, WebSocket and HTTP/2
// recognition, resync after a gap, messages cut at every byte boundary, probing, and fast-check fuzzing.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Driver, ascii, feedSplit } from '../../test/helpers/l7.js'
import { headBlock, httpParser, messageStart, type HttpState, type HttpTx } from './http.js'
import { L7Dir } from './parser.js'

const REQ = ascii(
  'POST /api/v1/items?x=1 HTTP/1.1\r\nHost: shop.example:8080\r\nUser-Agent: curl/8.0\r\n' +
    'Referer: http://a.example/\r\nX-Forwarded-For: 198.51.100.7\r\nContent-Type: application/json\r\n' +
    'Content-Length: 11\r\n\r\n{"a":"b  "}',
)
const RESP_CHUNKED = ascii(
  'HTTP/1.1 201 Created\r\nServer: nginx\r\nLocation: /api/v1/items/9\r\nContent-Type: text/plain\r\n' +
    'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n',
)
const GET = ascii('GET /next HTTP/1.1\r\nHost: shop.example\r\n\r\n')
const RESP_LEN = ascii('HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nContent-Type: text/html\r\n\r\nnope!')

const run = (msgs: ReadonlyArray<readonly [L7Dir, Uint8Array]>): HttpTx[] => {
  const d = new Driver<HttpTx>(httpParser)
  for (const [dir, m] of msgs) d.feed(dir, m)
  expect(d.ctx.anomalies).toEqual([])
  return d.finish()
}

describe('http parser', () => {
  it('reads a header exactly when its trimmed, lower-cased name is one it reads (fuzzed names)', () => {
    const read: Record<string, keyof HttpTx> = {
      host: 'host',
      'user-agent': 'userAgent',
      referer: 'referer',
      'x-forwarded-for': 'xForwardedFor',
    }
    const piece = fc.oneof(
      fc.constantFrom(...Object.keys(read), 'date', 'accept', 'hist', 'hosts', 'x'),
      fc.constantFrom(' ', '\t', '\v', '\f', '\xa0', '\x85', 'A', '-', 'ÿ', 'À'),
    )
    const name = fc
      .array(piece, { minLength: 1, maxLength: 3 })
      .chain((parts) =>
        fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }).map((up) => [parts, up] as const),
      )
      .map(([parts, up]) => {
        const n = parts.join('')
        return [...n].map((c, i) => (up[i % 8] ? c.toUpperCase() : c)).join('')
      })
      .filter((n) => !/[:\r\n]/.test(n) && [...n].every((c) => c.charCodeAt(0) < 256))
    fc.assert(
      fc.property(fc.array(name, { minLength: 1, maxLength: 6 }), (names) => {
        const lines = names.map((n, i) => `${n}: v${i}\r\n`).join('')
        const d = new Driver<HttpTx>(httpParser)
        d.feed(L7Dir.ToServer, Buffer.from(`GET / HTTP/1.1\r\n${lines}\r\n`, 'latin1'))
        const [tx] = d.finish()
        const expected: Record<string, string> = {}
        names.forEach((n, i) => {
          const key = read[n.trim().toLowerCase()]
          if (key !== undefined && !(key in expected)) expected[key] = `v${i}`
        })
        for (const key of Object.values(read)) expect(tx![key]).toBe(expected[key] ?? '')
      }),
      { numRuns: 500 },
    )
  })

  it('reads header names in any case and around whitespace, and no look-alike names', () => {
    const txs = run([
      [
        L7Dir.ToServer,
        ascii(
          'GET / HTTP/1.1\r\nHost : first.example\r\nHOST: second.example\r\nhosT2: x\r\n' +
            'Hist: x\r\nDate: today\r\n\tuser-AGENT\t: ua/1\r\nUser-Agents: no\r\n' +
            'x-forwarded-for: 192.0.2.1\r\n\r\n',
        ),
      ],
      [
        L7Dir.ToClient,
        ascii('HTTP/1.1 200 OK\r\nSERVER:  srv \r\nServe: no\r\nlocation: /l\r\nContent-Length: 0\r\n\r\n'),
      ],
    ])
    expect(txs).toHaveLength(1)
    expect(txs[0]).toMatchObject({
      host: 'first.example',
      userAgent: 'ua/1',
      xForwardedFor: '192.0.2.1',
      server: 'srv',
      location: '/l',
      contentLength: 0,
    })
  })

  it('extracts request and response fields and skips bodies', () => {
    const txs = run([
      [L7Dir.ToServer, REQ],
      [L7Dir.ToClient, RESP_CHUNKED],
      [L7Dir.ToServer, GET],
      [L7Dir.ToClient, RESP_LEN],
    ])
    expect(txs).toHaveLength(2)
    expect(txs[0]).toMatchObject({
      method: 'POST',
      target: '/api/v1/items?x=1',
      version: 'HTTP/1.1',
      host: 'shop.example:8080',
      userAgent: 'curl/8.0',
      referer: 'http://a.example/',
      xForwardedFor: '198.51.100.7',
      status: 201,
      reason: 'Created',
      server: 'nginx',
      location: '/api/v1/items/9',
      contentType: 'text/plain',
    })
    expect(txs[1]).toMatchObject({
      method: 'GET',
      target: '/next',
      status: 404,
      reason: 'Not Found',
      contentLength: 5,
    })
  })

  it('matches pipelined requests to responses in order, HEAD and 1xx included', () => {
    const head = ascii('HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n')
    const headResp = ascii('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n') // no body after HEAD
    const cont = ascii('HTTP/1.1 100 Continue\r\n\r\n')
    const txs = run([
      [L7Dir.ToServer, new Uint8Array([...head, ...GET, ...REQ])],
      [L7Dir.ToClient, new Uint8Array([...headResp, ...RESP_LEN, ...cont, ...RESP_CHUNKED])],
    ])
    expect(txs.map((t) => [t.method, t.status])).toEqual([
      ['HEAD', 200],
      ['GET', 404],
      ['POST', 201],
    ])
  })

  it('emits requests without a response at the end', () => {
    expect(run([[L7Dir.ToServer, GET]]).map((t) => t.status)).toEqual([-1])
  })

  it('recognises WebSocket upgrades and the HTTP/2 preface, then needs no more bytes', () => {
    const d = new Driver<HttpTx>(httpParser)
    d.feed(
      L7Dir.ToServer,
      ascii('GET /chat HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
    )
    d.feed(
      L7Dir.ToClient,
      ascii('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello'),
    )
    expect(httpParser.wantsMore(d.state as HttpState)).toBe(false)
    expect(d.finish()[0]).toMatchObject({ status: 101, upgrade: 'websocket' })
    const h2 = new Driver<HttpTx>(httpParser)
    h2.feed(L7Dir.ToServer, ascii('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0'))
    expect(httpParser.wantsMore(h2.state as HttpState)).toBe(false)
    expect(h2.finish()[0]).toMatchObject({ version: 'HTTP/2', upgrade: 'h2' })
  })

  it('absorbs a gap inside a body and resyncs after a gap in a head', () => {
    const d = new Driver<HttpTx>(httpParser)
    d.feed(L7Dir.ToServer, GET)
    d.feed(L7Dir.ToClient, ascii('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789'))
    httpParser.gap!(d.state as HttpState, L7Dir.ToClient, 50, d.ctx)
    d.feed(L7Dir.ToClient, new Uint8Array(40))
    d.feed(L7Dir.ToServer, GET)
    d.feed(L7Dir.ToClient, RESP_LEN)
    expect(d.ctx.anomalies).toEqual([])
    httpParser.gap!(d.state as HttpState, L7Dir.ToServer, 10, d.ctx)
    d.feed(L7Dir.ToServer, ascii('garbage after the gap\r\n'))
    d.feed(L7Dir.ToServer, GET)
    d.feed(L7Dir.ToClient, RESP_LEN)
    expect(d.finish().map((t) => t.status)).toEqual([200, 404, 404])
    expect(d.ctx.anomalies).toEqual(['http_gap_resync'])
  })

  it('gives the same transactions for messages cut at every byte boundary', () => {
    const msgs = [
      [L7Dir.ToServer, REQ],
      [L7Dir.ToClient, RESP_CHUNKED],
      [L7Dir.ToServer, GET],
      [L7Dir.ToClient, RESP_LEN],
    ] as const
    const whole = feedSplit<HttpTx>(httpParser, msgs, Infinity)
    expect(whole.txs).toHaveLength(2)
    for (let cut = 0; cut <= RESP_CHUNKED.byteLength; cut++)
      expect(feedSplit(httpParser, msgs, cut)).toEqual(whole)
    const d = new Driver<HttpTx>(httpParser)
    for (const [dir, m] of msgs) for (const b of m) d.feed(dir, Uint8Array.of(b))
    expect(d.finish()).toEqual(whole.txs)
  })

  it('probes by content, not port', () => {
    expect(httpParser.probe(GET, L7Dir.ToServer, 'tcp')).toBe(true)
    expect(httpParser.probe(RESP_LEN, L7Dir.ToClient, 'tcp')).toBe(true)
    expect(httpParser.probe(ascii('SSH-2.0-OpenSSH_9.0\r\n'), L7Dir.ToServer, 'tcp')).toBe(false)
    expect(httpParser.probe(ascii('\x16\x03\x01\x02\x00\x01'), L7Dir.ToServer, 'tcp')).toBe(false)
    expect(httpParser.probe(ascii('HELLO there, not a request\r\n'), L7Dir.ToServer, 'tcp')).toBe(false)
    expect(httpParser.probe(ascii('get / HTTP/1.1\r\n'), L7Dir.ToServer, 'tcp')).toBe(false)
    // Extension methods (RFC 9110 §9.1) with an origin-form target or an HTTP version.
    expect(httpParser.probe(ascii('CCM_POST / HTTP/1.\n'), L7Dir.ToServer, 'tcp')).toBe(true)
    expect(httpParser.probe(ascii('BREW coffee://pot HTTP/1.1\r\n'), L7Dir.ToServer, 'tcp')).toBe(true)
  })

  it('fuzz: arbitrary and mutated input only produces counted anomalies', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom(L7Dir.ToServer, L7Dir.ToClient),
            fc.oneof(
              fc.uint8Array({ maxLength: 300 }),
              fc.constantFrom(REQ, RESP_CHUNKED, GET, RESP_LEN),
              fc
                .tuple(
                  fc.constantFrom(REQ, RESP_CHUNKED),
                  fc.nat(200),
                  fc.uint8Array({ minLength: 1, maxLength: 6 }),
                )
                .map(([m, at, b]) => {
                  const c = m.slice()
                  c.set(b.subarray(0, Math.max(0, c.byteLength - (at % c.byteLength))), at % c.byteLength)
                  return c
                }),
            ),
          ),
          { maxLength: 8 },
        ),
        (msgs) => {
          const d = new Driver<HttpTx>(httpParser)
          for (const [dir, m] of msgs) d.feed(dir, m)
          d.finish()
          for (const a of d.ctx.anomalies) expect(a).toMatch(/^http_[a-z_]+$/)
        },
      ),
      { seed: 7, numRuns: 1500 },
    )
  })
})

describe('HTTP resync', () => {
  /** The line start search as a test per octet. */
  function reference(m: Uint8Array, from: number, toServer: boolean): number {
    for (let i = from; i < m.byteLength; i++) {
      if (i > 0 && m[i - 1] !== 0x0a) continue
      const rest = Buffer.from(m.subarray(i)).toString('latin1')
      if (
        toServer
          ? /^[A-Z0-9_.-]{1,32} /.test(rest)
          : rest.startsWith('HTTP/1.') || rest.startsWith('HTTP/0.9')
      )
        return i
    }
    return -1
  }

  it('finds the first message start at a line start, as a test per octet does', () => {
    const piece = fc.oneof(
      fc.constantFrom(
        '\n',
        '\r\n',
        'GET / HTTP/1.1\r\n',
        'HTTP/1.1 200 OK\r\n',
        'x',
        'HTTP/1.',
        'M-SEARCH ',
        'A ',
      ),
      fc.string({ maxLength: 12 }),
      fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b).toString('latin1')),
    )
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), fc.nat(80), fc.boolean(), (pieces, from, toServer) => {
        const m = Uint8Array.from(pieces.join(''), (c) => c.charCodeAt(0) & 0xff)
        const f = Math.min(from, m.byteLength)
        expect(messageStart(m, f, toServer)).toBe(reference(m, f, toServer))
      }),
      { numRuns: 3000 },
    )
  })
})

describe('HTTP header blocks and chunk sizes', () => {
  /** The block end as a walk over lines: the first empty line ("\n" or "\r\n") ends it. */
  function reference(m: Uint8Array, from: number): string | undefined {
    let p = from
    for (;;) {
      const e = m.indexOf(0x0a, p)
      if (e < 0) return undefined
      if (e === p || (e === p + 1 && m[p] === 0x0d))
        return Buffer.from(m.subarray(from, e + 1)).toString('latin1')
      p = e + 1
    }
  }

  it('finds the end of a header block as a walk over its lines does', () => {
    const piece = fc.oneof(
      fc.constantFrom('\n', '\r\n', '\r', '\n\r\n', '\n\n', 'Host: a', 'x', ':', '\r\r\n'),
      fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b).toString('latin1')),
    )
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 14 }), fc.nat(40), (pieces, from) => {
        // A block starts with a character other than a line break (the parser steps over those first).
        const m = Uint8Array.from('G' + pieces.join(''), (c) => c.charCodeAt(0) & 0xff)
        const f = Math.min(from, m.byteLength - 1)
        if (m[f] === 0x0a || m[f] === 0x0d) return
        expect(headBlock(m, f)).toBe(reference(m, f))
      }),
      { numRuns: 3000 },
    )
  })

  it('reads chunk sizes: leading zeros, extensions, case and whitespace; too many digits resync', () => {
    const parse = (chunks: string): { txs: HttpTx[]; anomalies: string[] } => {
      const d = new Driver<HttpTx>(httpParser)
      d.feed(L7Dir.ToServer, GET)
      d.feed(L7Dir.ToClient, ascii(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`))
      d.feed(L7Dir.ToServer, GET)
      d.feed(L7Dir.ToClient, RESP_LEN)
      return { txs: d.finish(), anomalies: d.ctx.anomalies }
    }
    const ok = [
      '0000000000000000005\r\nhello\r\n0\r\n\r\n', // 19 digits, 1 significant
      ' \t5 ;name=value\r\nhello\r\n000\r\n\r\n',
      'aBc\r\n' + 'x'.repeat(0xabc) + '\r\n0\r\n\r\n',
      '\r\n5\r\nhello\r\n0;x\r\nTrailer: 1\r\n\r\n', // an empty line before the size is skipped
      '00000000000010\r\n' + 'y'.repeat(16) + '\r\n0\r\n\r\n',
    ]
    for (const c of ok) {
      const r = parse(c)
      expect(r.anomalies).toEqual([])
      expect(r.txs.map((t) => t.status)).toEqual([200, 404])
    }
    // 13 significant digits, no digit, a minus sign: not a size; the next response is found again.
    for (const c of ['1000000000000\r\n', 'g\r\n', '-5\r\n', ';5\r\n']) {
      const r = parse(c)
      expect(r.anomalies).toEqual(['http_bad_chunk_size'])
      expect(r.txs.map((t) => t.status)).toEqual([200, 404])
    }
    // 12 significant digits are a size (a body that long is only skipped).
    expect(parse('fffffffffff0\r\nabc').anomalies).toEqual([])
  })
})
