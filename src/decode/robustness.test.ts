// Robustness of PacketDecoder: every truncation of representative packets, random bytes and random mutations of
// valid packets for every link type. The decoder must never throw, and its results must never depend on bytes
// outside [offset, offset + caplen) (checked by decoding the same bytes surrounded by two different fills).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DecodeResult } from './packet.js'
import { decodeBytes, snapshot } from './decode-harness.test-util.js'
import {
  ETH,
  LINKTYPE,
  PROTO,
  TCP,
  erspan3,
  eth,
  fragmentExt,
  geneve,
  gre,
  gtpPduSessionExt,
  gtpu,
  hopByHop,
  ipv4,
  ipv6,
  mpls,
  nullHdr,
  pppoe,
  pptpGre,
  routingExt,
  sll,
  sll2,
  tcp,
  teredo,
  udp,
  vxlan,
} from '../../test/helpers/packet-builder.js'

const inner4 = (): Uint8Array =>
  ipv4(
    { proto: PROTO.TCP, options: new Uint8Array(4) },
    tcp({ sport: 1, dport: 2, flags: TCP.SYN, payload: new Uint8Array(3) }),
  )
const inner6 = (): Uint8Array =>
  ipv6({ proto: PROTO.UDP, ext: [hopByHop(), routingExt(), fragmentExt({})] }, udp({ sport: 3, dport: 4 }))
const udpOuter = (dport: number, payload: Uint8Array): Uint8Array =>
  eth({ vlan: [5, 6] }, ipv4({ proto: PROTO.UDP }, udp({ sport: 9, dport, payload })))

/** Representative valid packets: [name, link type, bytes]. */
const SAMPLES: [string, number, Uint8Array][] = [
  ['eth/qinq/ipv4/tcp', LINKTYPE.ETHERNET, eth({ vlan: [1, 2] }, inner4())],
  ['eth/mpls/ipv6 ext/udp', LINKTYPE.ETHERNET, eth({ type: ETH.MPLS }, mpls([7, 8], inner6()))],
  ['eth/pppoe/ipv4', LINKTYPE.ETHERNET, eth({ type: ETH.PPPOE }, pppoe({}, inner4()))],
  ['vxlan', LINKTYPE.ETHERNET, udpOuter(4789, vxlan({ vni: 1 }, eth({ vlan: [3] }, inner4())))],
  [
    'geneve',
    LINKTYPE.ETHERNET,
    udpOuter(6081, geneve({ vni: 1, options: new Uint8Array(4) }, eth({}, inner6()))),
  ],
  ['gtp-u', LINKTYPE.ETHERNET, udpOuter(2152, gtpu({ teid: 1, ext: [gtpPduSessionExt()] }, inner4()))],
  ['teredo', LINKTYPE.ETHERNET, udpOuter(3544, teredo({ auth: true, origin: true }, inner6()))],
  [
    'gre/erspan3',
    LINKTYPE.ETHERNET,
    eth(
      {},
      ipv4(
        { proto: 47 },
        gre({ protocol: ETH.ERSPAN3, key: 1 }, erspan3({ platform: true }, eth({}, inner4()))),
      ),
    ),
  ],
  ['pptp', LINKTYPE.ETHERNET, eth({}, ipv4({ proto: 47 }, pptpGre({ callId: 1 }, inner4())))],
  ['6in4', LINKTYPE.IPV4, ipv4({ proto: 41 }, inner6())],
  ['sll/ipv4', LINKTYPE.LINUX_SLL, sll({}, inner4())],
  ['sll2/ipv6', LINKTYPE.LINUX_SLL2, sll2({}, inner6())],
  ['null/ipv6', LINKTYPE.NULL, nullHdr({ family: 30 }, inner6())],
  ['loop/ipv4', LINKTYPE.LOOP, nullHdr({ family: 2, bigEndian: true }, inner4())],
  ['raw/ipv4', LINKTYPE.RAW, inner4()],
]

const LINK_TYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276]

function decodesIndependentlyOfSurroundings(
  pkt: Uint8Array,
  linkType: number,
  caplen: number,
  origlen: number,
): void {
  const a = snapshot(decodeBytes(pkt, { linkType, caplen, origlen, fill: 0x00, before: 5 }))
  const b = snapshot(decodeBytes(pkt, { linkType, caplen, origlen, fill: 0xff, before: 5 }))
  expect(b).toEqual(a)
}

describe('truncation at every byte boundary', () => {
  it.each(SAMPLES)('%s', (_name, linkType, pkt) => {
    const full = decodeBytes(pkt, { linkType })
    expect(full.r).toBe(DecodeResult.Ip)
    expect(full.anomalies).toEqual({})
    for (let len = 0; len <= pkt.length; len++) {
      // As a snaplen cut (origlen = full length) and as a frame that simply ends there (malformed).
      decodesIndependentlyOfSurroundings(pkt, linkType, len, pkt.length)
      decodesIndependentlyOfSurroundings(pkt.subarray(0, len), linkType, len, len)
    }
  })
})

describe('random input (fast-check)', () => {
  it('random bytes never throw for any link type', () => {
    fc.assert(
      fc.property(fc.constantFrom(...LINK_TYPES), fc.uint8Array({ maxLength: 512 }), (lt, bytes) => {
        decodesIndependentlyOfSurroundings(bytes, lt, bytes.length, bytes.length)
      }),
      { seed: 42, numRuns: 3000 },
    )
  })

  it('random mutations of valid packets never throw', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SAMPLES),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.boolean(),
        ([, lt, pkt], edits, cut, snap) => {
          const m = pkt.slice()
          for (const [pos, val] of edits) m[pos % m.length] = val
          const len = snap ? cut % (m.length + 1) : m.length
          decodesIndependentlyOfSurroundings(m, lt, len, m.length)
        },
      ),
      { seed: 7, numRuns: 5000 },
    )
  })

  it('valid headers followed by random bytes never throw', () => {
    const heads: [number, Uint8Array][] = [
      [1, eth({ type: ETH.IPV4 }, new Uint8Array(0))],
      [1, eth({ type: ETH.IPV6 }, new Uint8Array(0))],
      [1, eth({ type: ETH.MPLS }, new Uint8Array(0))],
      [1, eth({}, ipv4({ proto: 47 }, new Uint8Array(0)))],
      [1, eth({}, ipv4({ proto: 17 }, udp({ sport: 1, dport: 4789 })))],
      [1, eth({}, ipv4({ proto: 17 }, udp({ sport: 1, dport: 2152 })))],
      [1, eth({}, ipv4({ proto: 17 }, udp({ sport: 1, dport: 3544 })))],
      [229, ipv6({ proto: PROTO.HOPOPT }, new Uint8Array(0))],
    ]
    fc.assert(
      fc.property(fc.constantFrom(...heads), fc.uint8Array({ maxLength: 256 }), ([lt, head], tail) => {
        const pkt = new Uint8Array(head.length + tail.length)
        pkt.set(head)
        pkt.set(tail, head.length)
        decodesIndependentlyOfSurroundings(pkt, lt, pkt.length, pkt.length)
      }),
      { seed: 11, numRuns: 3000 },
    )
  })
})
