// Teredo (RFC 4380) found by content on ports other than 3544, through the packet decoder and the worker
// hash: a client's traffic to a relay on arbitrary ports is decapsulated, with the indicators; UDP that
// only looks like it (a 6 nibble but the wrong length, no Teredo or link-local address, a short payload)
// stays as it is; random payloads never throw or make the check read outside the packet.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { eth, ipv4, ipv6, PROTO, tcp, teredo, udp } from '../../test/helpers/packet-builder.js'
import { symmetricPacketHash } from '../probe/workers/symmetric-hash.js'
import { decodeBytes } from './decode-harness.test-util.js'
import { Tunnel } from './packet.js'
import { teredoInnerByContent } from './teredo.js'

const CLIENT = '2001:0:4137:9e50:8000:f12a:b9c8:2815' // a Teredo address (2001:0::/32)
const NATIVE = '2001:4860:0:2001::68'

const inner = (src = CLIENT, dst = NATIVE): Uint8Array =>
  ipv6({ src, dst, proto: PROTO.TCP }, tcp({ sport: 1186, dport: 80 }))

const outer = (payload: Uint8Array, sport = 3797, dport = 32900): Uint8Array =>
  eth({}, ipv4({ src: '192.168.2.16', dst: '83.170.1.38', proto: PROTO.UDP }, udp({ sport, dport, payload })))

describe('Teredo by content', () => {
  it('decapsulates a Teredo client and relay on ports other than 3544, with and without indicators', () => {
    for (const o of [{}, { origin: true }, { auth: true }, { auth: true, origin: true }]) {
      const d = decodeBytes(outer(teredo(o, inner())))
      expect([d.info.tunnel, d.info.ipVersion, d.info.dstPort]).toEqual([Tunnel.Teredo, 6, 80])
    }
    // The relay's answer: native source, Teredo destination. A bubble between peers: link-local.
    expect(decodeBytes(outer(inner(NATIVE, CLIENT), 32900, 3797)).info.tunnel).toBe(Tunnel.Teredo)
    const bubble = ipv6({ src: 'fe80::8000:f227:bec8:61af', dst: 'ff02::2', proto: 59 })
    expect(decodeBytes(outer(bubble)).info.tunnel).toBe(Tunnel.Teredo)
  })

  it('leaves UDP that is not Teredo alone', () => {
    const cases: Uint8Array[] = [
      inner('2001:db8::1', '2001:db8::2'), // IPv6 but neither address Teredo nor link-local
      new Uint8Array([0x60, ...new Uint8Array(60)]), // 6 nibble, payload length 0 but 21 octets follow
      new Uint8Array(39).fill(0x60), // shorter than an IPv6 header
      new Uint8Array(80), // zeros: an origin indicator followed by no IPv6
    ]
    const wrongLength = inner()
    wrongLength[5]! += 1
    cases.push(wrongLength)
    for (const payload of cases) {
      const d = decodeBytes(outer(payload, 50000, 53))
      expect([d.info.tunnel, d.info.ipVersion, d.info.dstPort]).toEqual([Tunnel.None, 4, 53])
    }
  })

  it('the worker hash keys a Teredo packet on another port by its inner pair, as the decoder does', () => {
    const hash = (pkt: Uint8Array): number =>
      symmetricPacketHash(new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength), 0, pkt.length, 1)
    const viaRelay = outer(teredo({}, inner()))
    const viaServer = outer(teredo({}, inner()), 3797, 3544)
    const native = eth({}, inner())
    expect(hash(viaRelay)).toBe(hash(native))
    expect(hash(viaServer)).toBe(hash(native))
    // Not Teredo: keyed on the outer pair, whatever the payload.
    expect(hash(outer(inner('2001:db8::1', '2001:db8::2')))).toBe(hash(outer(new Uint8Array(60))))
  })

  it('random payloads: -1 or an offset inside the packet, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.nat(130), (b, extra) => {
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
        const q = teredoInnerByContent(v, 0, b.length, Math.min(b.length, extra))
        if (q >= 0) expect(q + 40).toBeLessThanOrEqual(b.length)
        decodeBytes(outer(b))
      }),
    )
  })
})
