// QUIC handshakes (RFC 9000 §17.2, RFC 9001, RFC 9369): real captures (values from Zeek's quic.log/ssl.log,
// ipfixprobe's quic plugin, Arkime's ja3/ja4; see test/fixtures/pcap/quic/SOURCES.md), the RFC 9001 A.2/A.3
// exchange, a ClientHello cut at every byte boundary into two Initial packets fed in both orders, Retry,
// QUIC v2, bounds on CRYPTO reassembly, and fast-check fuzzing of datagrams and of sealed frame payloads
// (malformed input only produces counted `quic_*` anomalies).
import fc from 'fast-check'
import { createCipheriv } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Driver } from '../../test/helpers/l7.js'
import { udpDatagrams } from '../../test/helpers/pcap-udp.js'
import { L7Dir } from './parser.js'
import { QUIC_V1, QUIC_V2, headerMask, initialKeys, quicVersionInfo } from './quic-crypto.js'
import { isQuicInitial, quicParser, type QuicState, type QuicTx } from './quic.js'
import { ja3, ja4 } from './tls-fingerprint.js'

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/pcap/quic')
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** Replays a capture's UDP datagrams through the parser, one Driver per flow (initiator = ToServer). */
function replay(file: string): Map<string, Driver<QuicTx>> {
  const flows = new Map<string, { d: Driver<QuicTx>; initiator: string }>()
  for (const g of udpDatagrams(join(FIXTURES, file))) {
    const a = `${g.src} ${g.srcPort}`
    const k = [a, `${g.dst} ${g.dstPort}`].sort().join(' | ')
    let f = flows.get(k)
    if (f === undefined) {
      if (!quicParser.probe(g.payload, L7Dir.ToServer, 'udp')) continue
      f = { d: new Driver<QuicTx>(quicParser, 'udp'), initiator: a }
      flows.set(k, f)
    }
    f.d.ctx.tsUs = g.tsUs
    f.d.feed(a === f.initiator ? L7Dir.ToServer : L7Dir.ToClient, g.payload)
  }
  return new Map([...flows].map(([k, f]) => [k, f.d]))
}

// Building protected Initial packets (RFC 9001 §5): what a client or server sends. -----------------------

function varint(v: number): number[] {
  if (v < 64) return [v]
  if (v < 16384) return [0x40 | (v >> 8), v & 0xff]
  return [0x80 | (v >>> 24), (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]
}

function cryptoFrame(offset: number, data: Uint8Array): number[] {
  return [0x06, ...varint(offset), ...varint(data.byteLength), ...data]
}

interface Seal {
  version?: number
  /** The DCID the keys derive from (the client's first), and the header's DCID and SCID. */
  keyDcid: Uint8Array
  dcid?: Uint8Array
  scid?: Uint8Array
  side?: 'client' | 'server'
  pn?: number
  type?: number
}

/** A protected long-header packet carrying `payload` (padded so that the header protection can sample). */
function seal(payload: number[], o: Seal): Buffer {
  const version = o.version ?? QUIC_V1
  const info = quicVersionInfo(version)!
  const keys = initialKeys(info, o.keyDcid, o.side ?? 'client')
  const dcid = o.dcid ?? o.keyDcid
  const scid = o.scid ?? hex('c0ffee')
  const pn = o.pn ?? 0
  const plain = Buffer.from(payload.length < 20 ? [...payload, ...new Array<number>(20).fill(0)] : payload)
  const type = o.type ?? info.initialType
  const head = [
    0xc0 | (type << 4) | 3, // 4-octet packet number
    version >>> 24,
    (version >> 16) & 0xff,
    (version >> 8) & 0xff,
    version & 0xff,
    dcid.byteLength,
    ...dcid,
    scid.byteLength,
    ...scid,
    ...(type === info.initialType ? [0] : []), // no token
    ...varint(4 + plain.byteLength + 16),
  ]
  const pnOffset = head.length
  const header = Buffer.from([...head, pn >>> 24, (pn >> 16) & 0xff, (pn >> 8) & 0xff, pn & 0xff])
  const nonce = Buffer.from(keys.iv)
  for (let i = 0, v = pn; i < 4; i++, v >>>= 8) nonce[11 - i]! ^= v & 0xff
  const c = createCipheriv('aes-128-gcm', keys.key, nonce)
  c.setAAD(header)
  const body = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()])
  const mask = headerMask(keys.hp, body.subarray(0, 16))
  const out = Buffer.concat([header, body])
  out[0]! ^= mask[0]! & 0x0f
  for (let i = 0; i < 4; i++) out[pnOffset + i]! ^= mask[1 + i]!
  return out
}

/** An unprotected long header of `type` with a Length (for Handshake packets, whose contents are ignored). */
function longPacket(type: number, dcid: Uint8Array, bodyLength: number, version = QUIC_V1): Buffer {
  return Buffer.from([
    0xc0 | (type << 4),
    version >>> 24,
    (version >> 16) & 0xff,
    (version >> 8) & 0xff,
    version & 0xff,
    dcid.byteLength,
    ...dcid,
    0,
    ...varint(bodyLength),
    ...new Array<number>(bodyLength).fill(0x55),
  ])
}

/** RFC 9001 A.2: the ClientHello (a handshake message) of the example client Initial. */
const RFC_CH = hex(`
  010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
  04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
  616d706c652e636f6dff01000100000a00080006001d00170018001000070005
  04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
  baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
  0d0010000e0403050306030203080408050806002d00020101001c0002400100
  3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
  75300901100f088394c8f03e51570806048000ffff`)
/** RFC 9001 A.3: the server's ServerHello. */
const RFC_SH = hex(`
  020000560303eefce7f7b37ba1d1632e96677825ddf739
  88cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c94
  0d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00
  020304`)
const RFC_DCID = hex('8394c8f03e515708')
const SERVER_CID = hex('f067a5502a4262b5')

const clientInitial = (frames: number[], pn = 0, keyDcid = RFC_DCID): Buffer =>
  seal([...frames, ...new Array<number>(1100).fill(0)], { keyDcid, pn })

describe('quic parser', () => {
  it('reads the Zeek capture as quic.log and ssl.log do (v1, CIDs, SNI, ALPN, TLS 1.3 suite, setup time)', () => {
    const flows = replay('zeek-quic-curl-8.1.2-dev-http3-www-google-de.pcap')
    expect(flows.size).toBe(1)
    const d = [...flows.values()][0]!
    const [tx, ...more] = d.finish()
    expect(more).toEqual([])
    expect(d.ctx.anomalies).toEqual([])
    expect(tx).toMatchObject({
      quicVersion: 1,
      sni: 'www.google.de',
      cipherSuite: 0x1301, // TLS_AES_128_GCM_SHA256
      serverVersion: 0x0304, // TLSv13
      transport: 'q',
    })
    expect(tx!.alpnOffered[0]).toBe('h3') // quic.log client_protocol
    expect(toHex(tx!.dcid)).toBe('815d62c70884f4b51e8ccadd5beed372')
    expect(toHex(tx!.scid)).toBe('e5ec6b26584229be98a164349ae910351c40d10b')
    expect(toHex(tx!.serverScid)).toBe('c15d62c70884f4b5')
    expect(tx!.supportedGroups[0]).toBe(0x1d) // ssl.log curve x25519 (the client's first group)
    // The client's first Handshake packet is frame 4, 40.547 ms after its Initial (tshark frame times).
    expect(tx!.setupUs).toBe(40_547)
    expect(quicParser.wantsMore(d.state as QuicState)).toBe(false)
  })

  it('reads a draft-29 Initial (ipfixprobe quic_initial-sample: version, SNI, extension types)', () => {
    const [d] = [...replay('ipfixprobe-quic_initial-sample.pcap').values()]
    const tx = d!.finish()[0]!
    expect(tx.quicVersion).toBe(0xff00001d) // QUIC_CLIENT_VERSION 4278190109
    expect(tx.sni).toBe('www.google.com')
    expect(tx.extensionTypes).toEqual([0, 10, 16, 13, 51, 45, 42, 43, 65445, 27, 17513, 41])
    expect(toHex(tx.dcid)).toBe('d3e8e06049a4f6b2') // QUIC_OCCID
    expect(d!.ctx.anomalies).toEqual([])
  })

  it("gives Arkime's JA3 and JA4 for a ClientHello over two Initials with out-of-order CRYPTO frames", () => {
    const flows = replay('arkime-synthetic-quic.pcap')
    const byPort = new Map([...flows].map(([k, d]) => [k.split(' | ').find((e) => !e.endsWith(' 443')), d]))
    const d = [...byPort].find(([k]) => k?.endsWith(' 10000'))![1]
    const tx = d.finish()[0]!
    expect(ja4(tx, 'q').text).toBe('q13d0311h3_55b375c5d22e_653d80c3fe9d')
    expect(ja3(tx).hash).toBe('b2bc2d5e347cf1b325aff36e38929a37')
    expect(d.ctx.anomalies).toEqual([])
    // The two synthetic Initials that do not decrypt: counted, no transaction. Q043 (no Initial keys) is
    // not probed as QUIC at all.
    const others = [...byPort].filter(([k]) => !k?.endsWith(' 10000')).map(([, x]) => x)
    expect(others).toHaveLength(2)
    for (const o of others) {
      expect(o.finish()).toEqual([])
      expect(o.ctx.anomalies).toEqual(['quic_undecryptable'])
    }
  })

  it('follows the RFC 9001 A.2/A.3 exchange: ClientHello, ServerHello, then the client Handshake packet', () => {
    const d = new Driver<QuicTx>(quicParser, 'udp')
    d.ctx.tsUs = 1_000
    d.feed(L7Dir.ToServer, clientInitial(cryptoFrame(0, RFC_CH), 2))
    d.ctx.tsUs = 31_000
    const serverInitial = seal([0x02, 0, 0, 0, 0, ...cryptoFrame(0, RFC_SH)], {
      keyDcid: RFC_DCID,
      dcid: new Uint8Array(0),
      scid: SERVER_CID,
      side: 'server',
      pn: 1,
    })
    // Coalesced with a Handshake packet the observer cannot open (RFC 9000 §12.2).
    d.feed(L7Dir.ToClient, Buffer.concat([serverInitial, longPacket(2, new Uint8Array(0), 40)]))
    expect(quicParser.wantsMore(d.state as QuicState)).toBe(true)
    // An Initial with an ACK, then zeros after the packet: padding, not a 1-RTT packet (no fixed bit).
    d.feed(L7Dir.ToServer, Buffer.concat([clientInitial([0x02, 1, 0, 0, 0], 3), Buffer.alloc(60)]))
    expect(quicParser.wantsMore(d.state as QuicState)).toBe(true)
    d.ctx.tsUs = 45_000
    d.feed(L7Dir.ToServer, longPacket(2, SERVER_CID, 30))
    expect(quicParser.wantsMore(d.state as QuicState)).toBe(false)
    const [tx] = d.ctx.txs
    expect(tx).toMatchObject({
      sni: 'example.com',
      alpnOffered: ['alpn'], // RFC 9001 A.2's ClientHello: ALPN "alpn", two suites
      cipherSuites: [0x1301, 0x1302],
      cipherSuite: 0x1301,
      serverVersion: 0x0304,
      supportedVersions: [0x0304],
      clientHelloUs: 1_000,
      serverHelloUs: 31_000,
      setupUs: 44_000,
    })
    expect(toHex(tx!.serverScid)).toBe(toHex(SERVER_CID))
    expect(d.ctx.anomalies).toEqual([])
  })

  it('gives the same transaction for a ClientHello cut at every byte boundary, the pieces in either order', () => {
    const run = (pkts: Buffer[]): { txs: QuicTx[]; anomalies: string[] } => {
      const d = new Driver<QuicTx>(quicParser, 'udp')
      for (const p of pkts) d.feed(L7Dir.ToServer, p)
      return { txs: d.finish(), anomalies: d.ctx.anomalies }
    }
    const whole = run([clientInitial(cryptoFrame(0, RFC_CH))])
    expect(whole.txs[0]?.sni).toBe('example.com')
    for (let cut = 1; cut < RFC_CH.byteLength; cut++) {
      const a = clientInitial(cryptoFrame(0, RFC_CH.subarray(0, cut)), 0)
      const b = clientInitial(cryptoFrame(cut, RFC_CH.subarray(cut)), 1)
      expect(run([a, b])).toEqual(whole)
      expect(run([b, a])).toEqual(whole)
    }
    // Both pieces in one packet, the later one first; and a duplicate (retransmitted) piece.
    const mid = 100
    const swapped = [...cryptoFrame(mid, RFC_CH.subarray(mid)), ...cryptoFrame(0, RFC_CH.subarray(0, mid))]
    expect(run([clientInitial(swapped)])).toEqual(whole)
    const first = clientInitial(cryptoFrame(0, RFC_CH.subarray(0, mid)), 0)
    expect(run([first, first, clientInitial(cryptoFrame(mid, RFC_CH.subarray(mid)), 1)])).toEqual(whole)
  })

  it("re-derives the keys from the client's new DCID after a Retry, not when it adopts the server's SCID", () => {
    const d = new Driver<QuicTx>(quicParser, 'udp')
    const first = hex('0102030405060708')
    const retried = hex('a1a2a3a4a5a6a7a8')
    d.feed(L7Dir.ToServer, clientInitial([0x01], 0, first)) // PING only
    d.feed(L7Dir.ToClient, longPacket(3, hex('c0ffee'), 0).subarray(0, 8 + 3)) // Retry (type 3), abridged
    d.feed(L7Dir.ToServer, clientInitial(cryptoFrame(0, RFC_CH), 1, retried))
    // Later client Initials address the server's CID but keep the keys of `retried`.
    d.feed(L7Dir.ToServer, seal([0x01], { keyDcid: retried, dcid: SERVER_CID, pn: 2 }))
    const [tx] = d.finish()
    expect(tx?.sni).toBe('example.com')
    expect(toHex(tx!.dcid)).toBe(toHex(first))
    expect(d.ctx.anomalies).toEqual([])
  })

  it('reads QUIC v2 (RFC 9369: its salt, labels and Initial packet type)', () => {
    expect(isQuicInitial(seal([0x01], { keyDcid: RFC_DCID, version: QUIC_V2 }))).toBe(true)
    const d = new Driver<QuicTx>(quicParser, 'udp')
    d.feed(
      L7Dir.ToServer,
      seal([...cryptoFrame(0, RFC_CH), ...new Array<number>(900).fill(0)], {
        keyDcid: RFC_DCID,
        version: QUIC_V2,
      }),
    )
    expect(d.finish()[0]).toMatchObject({ quicVersion: QUIC_V2, sni: 'example.com' })
    // A v1-typed packet under the v2 version number is not an Initial.
    expect(isQuicInitial(seal([0x01], { keyDcid: RFC_DCID, version: QUIC_V2, type: 0 }))).toBe(false)
  })

  it('reads the SNI of a Google Q050 CHLO (tag map in frame 0x08) and a T051 TLS ClientHello', () => {
    const le32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24]
    const sni = [...Buffer.from('www.gstatic.com')]
    const ua = [...Buffer.from('Chrome/80')]
    const tags = [
      ...Buffer.from('SNI\0'),
      ...le32(sni.length),
      ...Buffer.from('UAID'),
      ...le32(sni.length + ua.length),
    ]
    const chloMsg = [...Buffer.from('CHLO'), 2, 0, 0, 0, ...tags, ...sni, ...ua]
    const frame = (type: number, data: number[]): number[] => [type, 0, ...varint(data.length), ...data]
    const q = new Driver<QuicTx>(quicParser, 'udp')
    q.feed(
      L7Dir.ToServer,
      seal([...frame(0x08, chloMsg), ...new Array<number>(900).fill(0)], {
        keyDcid: RFC_DCID,
        version: 0x51303530,
      }),
    )
    expect(q.finish()[0]).toMatchObject({ quicVersion: 0x51303530, sni: 'www.gstatic.com', clientVersion: 0 })
    expect(q.ctx.anomalies).toEqual([])
    const t = new Driver<QuicTx>(quicParser, 'udp')
    t.feed(
      L7Dir.ToServer,
      seal([...frame(0x08, [...RFC_CH]), ...new Array<number>(900).fill(0)], {
        keyDcid: RFC_DCID,
        version: 0x54303531,
      }),
    )
    expect(t.finish()[0]).toMatchObject({ quicVersion: 0x54303531, sni: 'example.com' })
  })

  it('ends the transaction on CONNECTION_CLOSE, and after a bounded number of datagrams without one', () => {
    const d = new Driver<QuicTx>(quicParser, 'udp')
    d.feed(L7Dir.ToServer, clientInitial(cryptoFrame(0, RFC_CH)))
    d.feed(L7Dir.ToServer, clientInitial([0x1c, 0x0a, 0x06, 0x00], 1)) // PROTOCOL_VIOLATION in CRYPTO
    expect(quicParser.wantsMore(d.state as QuicState)).toBe(false)
    expect(d.ctx.txs).toHaveLength(1)

    const e = new Driver<QuicTx>(quicParser, 'udp')
    e.feed(L7Dir.ToServer, clientInitial(cryptoFrame(0, RFC_CH)))
    for (let i = 0; i < 40 && quicParser.wantsMore(e.state as QuicState); i++)
      e.feed(L7Dir.ToClient, Buffer.from([0x40, 1, 2, 3, 4, 5, 6, 7, 8]))
    expect(quicParser.wantsMore(e.state as QuicState)).toBe(false)
    expect(e.ctx.txs).toHaveLength(1)
  })

  it('bounds CRYPTO reassembly: far offsets and too many pieces are refused and counted', () => {
    const d = new Driver<QuicTx>(quicParser, 'udp')
    d.feed(L7Dir.ToServer, clientInitial(cryptoFrame(70_000, RFC_CH.subarray(0, 10))))
    expect(d.ctx.anomalies).toEqual(['quic_crypto_too_long'])
    const e = new Driver<QuicTx>(quicParser, 'udp')
    const pieces: number[] = []
    for (let i = 0; i < 300; i++) pieces.push(...cryptoFrame(1000 + 2 * i, RFC_CH.subarray(0, 1)))
    e.feed(L7Dir.ToServer, seal(pieces, { keyDcid: RFC_DCID }))
    expect(e.ctx.anomalies).toEqual(new Array<string>(300 - 256).fill('quic_crypto_too_fragmented'))
    // Repeated pieces waiting for a gap: at most MAX_CRYPTO (64 KiB) octets of them are kept.
    const g = new Driver<QuicTx>(quicParser, 'udp')
    const same: number[] = []
    for (let i = 0; i < 100; i++) same.push(...cryptoFrame(1000, new Uint8Array(1000).fill(i)))
    g.feed(L7Dir.ToServer, seal(same, { keyDcid: RFC_DCID }))
    expect(g.ctx.anomalies).toEqual(new Array<string>(100 - 65).fill('quic_crypto_too_fragmented'))
  })

  it('counts frames that do not belong in an Initial and headers that do not parse', () => {
    const d = new Driver<QuicTx>(quicParser, 'udp')
    d.feed(L7Dir.ToServer, clientInitial([...cryptoFrame(0, RFC_CH), 0x08, 0, 0])) // STREAM: not allowed
    expect(d.finish()[0]?.sni).toBe('example.com')
    expect(d.ctx.anomalies).toEqual(['quic_bad_frame'])
    const e = new Driver<QuicTx>(quicParser, 'udp')
    const cut = clientInitial(cryptoFrame(0, RFC_CH)).subarray(0, 300)
    e.feed(L7Dir.ToServer, cut)
    expect(e.ctx.anomalies).toEqual(['quic_truncated_packet'])
  })

  it('probes by content: an Initial of a known version on any port, nothing else', () => {
    const ci = clientInitial(cryptoFrame(0, RFC_CH))
    expect(quicParser.probe(ci, L7Dir.ToServer, 'udp')).toBe(true)
    expect(quicParser.probe(ci, L7Dir.ToServer, 'tcp')).toBe(false)
    const unknown = Buffer.from(ci)
    unknown.writeUInt32BE(0x1a2a3a4a, 1) // a version-negotiation-forcing version
    expect(quicParser.probe(unknown, L7Dir.ToServer, 'udp')).toBe(false)
    expect(quicParser.probe(longPacket(2, RFC_DCID, 30), L7Dir.ToServer, 'udp')).toBe(false) // Handshake
    expect(quicParser.probe(Buffer.from([0x40, 1, 2, 3, 4, 5, 6, 7]), L7Dir.ToServer, 'udp')).toBe(false)
  })

  it('fuzz: arbitrary datagrams, mutated Initials and sealed random frames only produce counted anomalies', () => {
    const ci = clientInitial(cryptoFrame(0, RFC_CH))
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 1400 }),
          fc
            .tuple(fc.nat(ci.byteLength - 1), fc.uint8Array({ minLength: 1, maxLength: 4 }))
            .map(([at, b]) => {
              const m = Uint8Array.from(ci)
              m.set(b.subarray(0, m.byteLength - at), at)
              return m
            }),
          // Random plaintext under valid protection: reaches the frame and hello parsers.
          fc.array(fc.nat(255), { maxLength: 400 }).map((frames) => clientInitial(frames)),
          fc.tuple(fc.nat(RFC_CH.byteLength - 1), fc.nat(255)).map(([at, v]) => {
            const ch = Uint8Array.from(RFC_CH)
            ch[at] = v
            return clientInitial(cryptoFrame(0, ch))
          }),
        ),
        (bytes) => {
          const d = new Driver<QuicTx>(quicParser, 'udp')
          d.feed(L7Dir.ToServer, bytes)
          d.feed(L7Dir.ToClient, bytes)
          d.finish()
          for (const a of d.ctx.anomalies) expect(a).toMatch(/^quic_[a-z_]+$/)
        },
      ),
      { seed: 17, numRuns: 1500 },
    )
  })
})
