// DTLS handshakes (RFC 6347, RFC 9147): real captures (Zeek's ssl.log for WebRTC DTLS 1.0 behind STUN, Arkime's
// JA4 for a DTLS 1.2 ClientHello; see test/fixtures/pcap/dtls/SOURCES.md), handshake fragments cut at every
// byte boundary and fed in either order, HelloVerifyRequest, reassembly bounds, RFC 7983 demultiplexing, and
// fast-check fuzzing (malformed input only produces counted `dtls_*` anomalies).
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Driver, ascii } from '../../test/helpers/l7.js'
import { udpDatagrams } from '../../test/helpers/pcap-udp.js'
import { ext, u16, u24, vec16, vec8 } from '../../test/helpers/tls-bytes.js'
import { dtlsParser, isStun, type DtlsState } from './dtls.js'
import { L7Dir } from './parser.js'
import type { TlsTx } from './tls.js'
import { ja3, ja4 } from './tls-fingerprint.js'

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/pcap/dtls')

/** A DTLS record (RFC 6347 §4.1): type, version, epoch, 48-bit sequence number, length. */
function record(
  type: number,
  body: number[],
  o: { version?: number; epoch?: number; seq?: number } = {},
): number[] {
  const seq = o.seq ?? 0
  return [
    type,
    ...u16(o.version ?? 0xfefd),
    ...u16(o.epoch ?? 0),
    0,
    0,
    0,
    0,
    ...u16(seq),
    ...u16(body.length),
    ...body,
  ]
}

/** A handshake fragment (RFC 6347 §4.2.2): type, length, message_seq, fragment_offset, fragment_length. */
function fragment(type: number, body: number[], msgSeq: number, off = 0, len = body.length - off): number[] {
  return [type, ...u24(body.length), ...u16(msgSeq), ...u24(off), ...u24(len), ...body.slice(off, off + len)]
}

function clientHelloBody(cookie: number[] = [], versions: number[] = []): number[] {
  return [
    ...u16(0xfefd),
    ...new Array<number>(32).fill(3),
    ...vec8([]),
    ...vec8(cookie),
    ...vec16([...u16(0xc02b), ...u16(0xc02f), ...u16(0x00ff)]),
    ...vec8([0]),
    ...vec16([
      ...ext(0, vec16([0, ...vec16([...ascii('media.example.net')])])),
      ...ext(10, vec16([...u16(29), ...u16(23)])),
      ...ext(11, vec8([0])),
      ...ext(14, [0, 2, 0, 1, 0]), // use_srtp
      ...(versions.length > 0 ? ext(43, vec8(versions.flatMap(u16))) : []),
    ]),
  ]
}

const SH_BODY = [
  ...u16(0xfefd),
  ...new Array<number>(32).fill(4),
  ...vec8([]),
  ...u16(0xc02b),
  0,
  ...vec16([]),
]
const CH = clientHelloBody()
const dgram = (...records: number[][]): Uint8Array => Uint8Array.from(records.flat())

/** Replays the capture's datagrams, initiator = ToServer. */
function replay(file: string): Map<string, Driver<TlsTx>> {
  const flows = new Map<string, { d: Driver<TlsTx>; initiator: string }>()
  for (const g of udpDatagrams(join(FIXTURES, file))) {
    const a = `${g.src} ${g.srcPort}`
    const k = [a, `${g.dst} ${g.dstPort}`].sort().join(' | ')
    let f = flows.get(k)
    if (f === undefined) {
      if (!dtlsParser.probe(g.payload, L7Dir.ToServer, 'udp')) continue
      f = { d: new Driver<TlsTx>(dtlsParser, 'udp'), initiator: a }
      flows.set(k, f)
    }
    f.d.ctx.tsUs = g.tsUs
    f.d.feed(a === f.initiator ? L7Dir.ToServer : L7Dir.ToClient, g.payload)
  }
  return new Map([...flows].map(([k, f]) => [k, f.d]))
}

describe('dtls parser', () => {
  it('reads WebRTC DTLS 1.0 behind STUN as Zeek ssl.log does (version, cipher, certificate)', () => {
    const flows = replay('zeek-tls-webrtc-stun.pcap')
    expect(flows.size).toBe(1)
    const d = [...flows.values()][0]!
    expect(dtlsParser.wantsMore(d.state as DtlsState)).toBe(false)
    const [tx, ...more] = d.ctx.txs
    expect(more).toEqual([])
    expect(d.ctx.anomalies).toEqual([])
    expect(tx).toMatchObject({
      recordVersion: 0xfeff,
      clientVersion: 0xfeff,
      serverVersion: 0xfeff, // DTLSv10
      cipherSuite: 0xc00a, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
      sni: '',
      transport: 'd',
      chainLength: 1,
    })
    expect(tx!.supportedGroups[0]).toBe(14) // sect571r1 offered first; Zeek logs the server's choice
    expect(tx!.certificate).toMatchObject({ subject: 'CN=a', issuer: 'CN=a' })
    // ssl.log cert_chain_fps: the SHA-256 of the server's certificate.
    expect(Buffer.from(tx!.certificate!.sha256).toString('hex')).toBe(
      '968126882d68eb80b03392edb9cce7260eec15a04b206ddfb5231449b5aaaa2f',
    )
    // The ClientHello (frame 9, 0.017013) to the client's first epoch-1 record (frame 13, 0.027733).
    expect(tx!.setupUs).toBe(10_720)
    expect(ja4(tx!, 'd').text.startsWith('dd1i')).toBe(true)
  })

  it("gives Arkime's JA4 for a DTLS 1.2 ClientHello (arkime_synthetic)", () => {
    const flows = replay('arkime-synthetic-dtls.pcap')
    const d = [...flows].find(([k]) => k.includes(' 49900'))![1]
    const tx = d.finish()[0]!
    expect(tx.sni).toBe('test.example.com')
    expect(ja4(tx, 'd').text).toBe('dd2d020400_c1929292aa6b_c91bed236abd')
    expect(ja4(tx, 'd').raw).toBe('dd2d020400_1301,c02f_000a,000d,002b_0401,0501')
    expect(d.ctx.anomalies).toEqual([])
    // The other synthetic ClientHello (CoAP port 5684): one suite, TLS_RSA_WITH_AES_128_CBC_SHA (tshark).
    const coap = [...flows].find(([k]) => k.includes(' 5684'))![1].finish()[0]!
    expect(coap.cipherSuites).toEqual([0x002f])
  })

  it('reads ClientHello, ServerHello and the setup time; the first ClientHello survives a HelloVerifyRequest', () => {
    const d = new Driver<TlsTx>(dtlsParser, 'udp')
    d.ctx.tsUs = 100
    d.feed(L7Dir.ToServer, dgram(record(22, fragment(1, CH, 0), { version: 0xfeff })))
    d.feed(L7Dir.ToClient, dgram(record(22, fragment(3, [...u16(0xfeff), ...vec8([9, 9, 9])], 0))))
    d.ctx.tsUs = 200
    d.feed(L7Dir.ToServer, dgram(record(22, fragment(1, clientHelloBody([9, 9, 9]), 1), { seq: 1 })))
    d.feed(L7Dir.ToClient, dgram(record(22, fragment(2, SH_BODY, 1), { seq: 1 })))
    d.feed(L7Dir.ToClient, dgram(record(20, [1], { seq: 2 }), record(22, [1, 2, 3], { epoch: 1 })))
    expect(dtlsParser.wantsMore(d.state as DtlsState)).toBe(true) // the server's encrypted records do not count
    d.ctx.tsUs = 900
    d.feed(L7Dir.ToServer, dgram(record(22, [7, 7, 7, 7], { epoch: 1 })))
    expect(dtlsParser.wantsMore(d.state as DtlsState)).toBe(false)
    expect(d.ctx.txs).toEqual([
      expect.objectContaining({
        recordVersion: 0xfeff,
        clientVersion: 0xfefd,
        serverVersion: 0xfefd,
        sni: 'media.example.net',
        cipherSuites: [0xc02b, 0xc02f, 0x00ff],
        cipherSuite: 0xc02b,
        extensionTypes: [0, 10, 11, 14],
        clientHelloUs: 100,
        setupUs: 800,
      }),
    ])
    expect(ja3(d.ctx.txs[0]!).text).toBe('65277,49195-49199-255,0-10-11-14,29-23,0')
    expect(d.ctx.anomalies).toEqual([])
  })

  it('gives the same transaction for a handshake message cut at every byte boundary, fragments in either order', () => {
    const run = (parts: Uint8Array[]): { txs: TlsTx[]; anomalies: string[] } => {
      const d = new Driver<TlsTx>(dtlsParser, 'udp')
      for (const p of parts) d.feed(L7Dir.ToServer, p)
      return { txs: d.finish(), anomalies: d.ctx.anomalies }
    }
    const whole = run([dgram(record(22, fragment(1, CH, 0)))])
    expect(whole.txs[0]?.sni).toBe('media.example.net')
    for (let cut = 1; cut < CH.length; cut++) {
      const a = dgram(record(22, fragment(1, CH, 0, 0, cut)))
      const b = dgram(record(22, fragment(1, CH, 0, cut), { seq: 1 }))
      expect(run([a, b])).toEqual(whole)
      expect(run([b, a])).toEqual(whole)
      // Both fragments in one record, and an overlapping retransmission of the first half.
      expect(run([dgram(record(22, [...fragment(1, CH, 0, cut), ...fragment(1, CH, 0, 0, cut)]))])).toEqual(
        whole,
      )
      expect(run([a, a, dgram(record(22, fragment(1, CH, 0, Math.max(0, cut - 3))))])).toEqual(whole)
    }
  })

  it('bounds reassembly: oversized messages and too many open messages are refused and counted', () => {
    const d = new Driver<TlsTx>(dtlsParser, 'udp')
    d.feed(L7Dir.ToServer, dgram(record(22, [1, ...u24(70_000), 0, 0, 0, 0, 0, 0, 0, 0, 1, 0])))
    expect(d.ctx.anomalies).toEqual(['dtls_message_too_long'])
    const e = new Driver<TlsTx>(dtlsParser, 'udp')
    const frags: number[] = []
    for (let seq = 0; seq < 10; seq++) frags.push(...fragment(1, CH, seq, 0, 10))
    e.feed(L7Dir.ToServer, dgram(record(22, frags)))
    expect(e.ctx.anomalies).toEqual(['dtls_too_many_fragments', 'dtls_too_many_fragments'])
    const f = new Driver<TlsTx>(dtlsParser, 'udp')
    f.feed(L7Dir.ToServer, dgram(record(22, [1, ...u24(10), 0, 0, ...u24(8), ...u24(5), 1, 2, 3, 4, 5])))
    expect(f.ctx.anomalies).toEqual(['dtls_bad_fragment']) // offset + length beyond the message
  })

  it('skips STUN and RTP on a WebRTC 5-tuple (RFC 7983), and gives up without DTLS', () => {
    const stun = Uint8Array.from([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, ...new Array<number>(12).fill(1)])
    expect(isStun(stun)).toBe(true)
    expect(dtlsParser.probe(stun, L7Dir.ToServer, 'udp')).toBe(true)
    const rtp = Uint8Array.from([0x80, 0x60, 0, 1, ...new Array<number>(20).fill(0)])
    expect(dtlsParser.probe(rtp, L7Dir.ToServer, 'udp')).toBe(false)
    const d = new Driver<TlsTx>(dtlsParser, 'udp')
    for (let i = 0; i < 40 && dtlsParser.wantsMore(d.state as DtlsState); i++)
      d.feed(L7Dir.ToServer, i % 2 ? stun : rtp)
    expect(dtlsParser.wantsMore(d.state as DtlsState)).toBe(false)
    expect(d.finish()).toEqual([])
    expect(d.ctx.anomalies).toEqual([])
  })

  it('probes by content and tells DTLS 1.3 in JA4 (0xfefc is above 0xfefd)', () => {
    const ch = dgram(record(22, fragment(1, clientHelloBody([], [0xfefc, 0xfefd]), 0)))
    expect(dtlsParser.probe(ch, L7Dir.ToServer, 'udp')).toBe(true)
    expect(dtlsParser.probe(ch, L7Dir.ToServer, 'tcp')).toBe(false)
    expect(dtlsParser.probe(dgram(record(23, [1, 2, 3], { epoch: 1 })), L7Dir.ToServer, 'udp')).toBe(false)
    const tls = Uint8Array.from([22, 3, 3, 0, 20, 1, ...new Array<number>(19).fill(0)])
    expect(dtlsParser.probe(tls, L7Dir.ToServer, 'udp')).toBe(false)
    const d = new Driver<TlsTx>(dtlsParser, 'udp')
    d.feed(L7Dir.ToServer, ch)
    expect(ja4(d.finish()[0]!, 'd').text.slice(0, 4)).toBe('dd3d')
  })

  it('fuzz: arbitrary and mutated datagrams only produce counted anomalies', () => {
    const flight = dgram(record(22, fragment(1, CH, 0)), record(22, fragment(2, SH_BODY, 0)))
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }),
          fc
            .tuple(fc.nat(flight.byteLength - 1), fc.uint8Array({ minLength: 1, maxLength: 6 }))
            .map(([at, b]) => {
              const m = flight.slice()
              m.set(b.subarray(0, m.byteLength - at), at)
              return m
            }),
          fc.uint8Array({ maxLength: 300 }).map((b) => dgram(record(22, [...b]))),
        ),
        (bytes) => {
          const d = new Driver<TlsTx>(dtlsParser, 'udp')
          d.feed(L7Dir.ToServer, bytes)
          d.feed(L7Dir.ToClient, bytes)
          d.finish()
          for (const a of d.ctx.anomalies) expect(a).toMatch(/^dtls_[a-z_]+$/)
        },
      ),
      { seed: 23, numRuns: 2000 },
    )
  })
})
