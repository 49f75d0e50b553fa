// QUIC Initial protection against the RFC test vectors: RFC 9001 Appendix A (QUIC v1: the keys of A.1, the
// client Initial of A.2, the server Initial of A.3) and RFC 9369 Appendix A.1 (QUIC v2 keys), plus the
// rejection of tampered packets and wrong keys.
import { createCipheriv } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  QUIC_V1,
  QUIC_V2,
  headerMask,
  hkdfExpandLabel,
  hkdfExtract,
  initialKeys,
  openLongHeader,
  quicVersionInfo,
  quicVersionName,
} from './quic-crypto.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const DCID = hex('8394c8f03e515708')

/** RFC 9001 A.2: the CRYPTO frame of the client Initial (a ClientHello for example.com), then PADDING. */
const A2_CRYPTO = hex(`
  060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
  04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
  616d706c652e636f6dff01000100000a00080006001d00170018001000070005
  04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
  baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
  0d0010000e0403050306030203080408050806002d00020101001c0002400100
  3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
  75300901100f088394c8f03e51570806048000ffff`)
const A2_PAYLOAD = Buffer.concat([A2_CRYPTO, Buffer.alloc(1162 - A2_CRYPTO.length)])
const A2_HEADER = hex('c300000001088394c8f03e5157080000449e00000002')
const A2_PROTECTED_HEADER = hex('c000000001088394c8f03e5157080000449e7b9aec34')
const A2_SAMPLE = hex('d1b1c98dd7689fb8ec11d242b123dc9b')
const A2_END = hex(`7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241
  e221af44860018ab0856972e194cd934`)

/** RFC 9001 A.3: the server Initial (ACK and a ServerHello), protected, whole. */
const A3_PACKET = hex(`
  cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a
  5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3
  dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84
  022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4
  2158407dd074ee`)
const A3_PAYLOAD = hex(`
  02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf739
  88cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c94
  0d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00
  020304`)

/**
 * The protected A.2 packet: the RFC's protected header, then the payload sealed with the RFC's key and IV
 * by node:crypto directly (not by the code under test); its start and end are checked against the RFC.
 */
function a2Packet(): Buffer {
  const nonce = hex('fa044b2f42a3fd3b46fb255e') // RFC 9001 A.2: iv XOR packet number 2
  const c = createCipheriv('aes-128-gcm', hex('1f369613dd76d5467730efcbe3b1a22d'), nonce)
  c.setAAD(A2_HEADER)
  const sealed = Buffer.concat([c.update(A2_PAYLOAD), c.final(), c.getAuthTag()])
  return Buffer.concat([A2_PROTECTED_HEADER, sealed])
}

describe('QUIC Initial protection (RFC 9001 Appendix A, RFC 9369 Appendix A)', () => {
  it('derives the v1 initial secrets and keys of A.1', () => {
    const info = quicVersionInfo(QUIC_V1)!
    const initial = hkdfExtract(info.salt, DCID)
    expect(initial.toString('hex')).toBe('7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44')
    expect(hkdfExpandLabel(initial, 'client in', 32).toString('hex')).toBe(
      'c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea',
    )
    expect(hkdfExpandLabel(initial, 'server in', 32).toString('hex')).toBe(
      '3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b',
    )
    const c = initialKeys(info, DCID, 'client')
    expect([c.key, c.iv, c.hp].map((b) => b.toString('hex'))).toEqual([
      '1f369613dd76d5467730efcbe3b1a22d',
      'fa044b2f42a3fd3b46fb255c',
      '9f50449e04a0e810283a1e9933adedd2',
    ])
    const s = initialKeys(info, DCID, 'server')
    expect([s.key, s.iv, s.hp].map((b) => b.toString('hex'))).toEqual([
      'cf3a5331653c364c88f0f379b6067e37',
      '0ac1493ca1905853b0bba03e',
      'c206b8d9b9f0f37644430b490eeaa314',
    ])
  })

  it('derives the v2 keys of RFC 9369 A.1 (quicv2 labels, v2 salt)', () => {
    const info = quicVersionInfo(QUIC_V2)!
    expect(info.initialType).toBe(1)
    const c = initialKeys(info, DCID, 'client')
    expect([c.key, c.iv, c.hp].map((b) => b.toString('hex'))).toEqual([
      '8b1a0bc121284290a29e0971b5cd045d',
      '91f73e2351d8fa91660e909f',
      '45b95e15235d6f45a6b19cbcb0294ba9',
    ])
    const s = initialKeys(info, DCID, 'server')
    expect([s.key, s.iv, s.hp].map((b) => b.toString('hex'))).toEqual([
      '82db637861d55e1d011f19ea71d5d2a7',
      'dd13c276499c0249d3310652',
      'edf6d05c83121201b436e16877593c3a',
    ])
  })

  it('gives the keys of a DCID seen before from its cache, and the right ones after the cache turned over', () => {
    const info = quicVersionInfo(QUIC_V1)!
    const first = initialKeys(info, DCID, 'client')
    expect(initialKeys(info, DCID, 'client')).toBe(first)
    expect(initialKeys(info, DCID, 'server')).not.toBe(first)
    // Another version's salt gives other keys for the same DCID.
    expect(initialKeys(quicVersionInfo(QUIC_V2)!, DCID, 'client').key.equals(first.key)).toBe(false)
    for (let i = 0; i < 300; i++)
      initialKeys(info, Uint8Array.of(i >> 8, i & 0xff, 1, 2, 3, 4, 5, 6), 'client')
    const again = initialKeys(info, DCID, 'client')
    expect(again).not.toBe(first)
    expect([again.key, again.iv, again.hp].map((b) => b.toString('hex'))).toEqual([
      '1f369613dd76d5467730efcbe3b1a22d',
      'fa044b2f42a3fd3b46fb255c',
      '9f50449e04a0e810283a1e9933adedd2',
    ])
  })

  it('computes the A.2 header protection mask from its sample', () => {
    const c = initialKeys(quicVersionInfo(QUIC_V1)!, DCID, 'client')
    expect(headerMask(c.hp, A2_SAMPLE).toString('hex')).toBe('437b9aec36')
  })

  it("masks with the keys' reused header protection cipher as with a fresh one, sample after sample", () => {
    const v1 = quicVersionInfo(QUIC_V1)!
    const c = initialKeys(v1, DCID, 'client')
    const s = initialKeys(v1, DCID, 'server')
    expect(c.hpCipher.update(A2_SAMPLE).subarray(0, 5).toString('hex')).toBe('437b9aec36')
    // Interleaved samples of two keys: each answer depends on its key and sample only, never on the last.
    for (let i = 0; i < 40; i++) {
      const sample = Uint8Array.from({ length: 16 }, (_, j) => (i * 31 + j * 7) & 0xff)
      const k = i % 3 === 0 ? s : c
      expect(k.hpCipher.update(sample).subarray(0, 5)).toEqual(headerMask(k.hp, sample))
    }
    expect(c.hpCipher.update(A2_SAMPLE).subarray(0, 5).toString('hex')).toBe('437b9aec36')
  })

  it('opens the A.2 client Initial: packet number 2, the CRYPTO frame and padding', () => {
    const pkt = a2Packet()
    expect(pkt.byteLength).toBe(1200)
    expect(pkt.subarray(22, 38)).toEqual(A2_SAMPLE)
    expect(pkt.subarray(pkt.byteLength - A2_END.byteLength)).toEqual(A2_END)
    const opened = openLongHeader(
      pkt,
      18,
      pkt.byteLength,
      initialKeys(quicVersionInfo(QUIC_V1)!, DCID, 'client'),
    )
    expect(opened?.packetNumber).toBe(2)
    expect(opened?.payload).toEqual(A2_PAYLOAD)
  })

  it('opens the A.3 server Initial with the server keys of the client DCID', () => {
    const keys = initialKeys(quicVersionInfo(QUIC_V1)!, DCID, 'server')
    const opened = openLongHeader(A3_PACKET, 18, A3_PACKET.byteLength, keys)
    expect(opened?.packetNumber).toBe(1)
    expect(opened?.payload).toEqual(A3_PAYLOAD)
  })

  it('refuses a tampered packet, the wrong keys and a packet too short to sample', () => {
    const v1 = quicVersionInfo(QUIC_V1)!
    const keys = initialKeys(v1, DCID, 'server')
    const bad = Buffer.from(A3_PACKET)
    bad[40]! ^= 1
    expect(openLongHeader(bad, 18, bad.byteLength, keys)).toBeUndefined()
    expect(
      openLongHeader(A3_PACKET, 18, A3_PACKET.byteLength, initialKeys(v1, DCID, 'client')),
    ).toBeUndefined()
    expect(openLongHeader(A3_PACKET.subarray(0, 30), 18, 30, keys)).toBeUndefined()
    expect(openLongHeader(A3_PACKET, 18, A3_PACKET.byteLength + 1, keys)).toBeUndefined()
  })

  it('knows the versions whose Initial keys it can derive, and names them', () => {
    for (const v of [1, 0x6b3343cf, 0xff00001d, 0xff000020, 0xff00001b, 0xff000016, 0x54303531, 0x51303530])
      expect(quicVersionInfo(v), v.toString(16)).toBeDefined()
    for (const v of [0, 0x51303433, 0x1a2a3a4a, 0xff000010]) expect(quicVersionInfo(v)).toBeUndefined()
    expect([1, 0x6b3343cf, 0xff00001d, 0x54303531, 0x1a2a3a4a].map(quicVersionName)).toEqual([
      '1',
      'quicv2',
      'draft-29',
      'T051',
      '0x1a2a3a4a',
    ])
  })
})
