// The dispatcher's symmetric hash: both directions, all fragments of a datagram and every packet of a flow
// key (as the decoder and flow cache see it) reach the same worker, through every supported framing.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { openCaptureFiles } from '../../capture/file-source.js'
import { Anomalies } from '../../decode/anomalies.js'
import { PacketDecoder } from '../../decode/packet-decoder.js'
import { DecodeResult, PacketInfo } from '../../decode/packet.js'
import { fillKey, KEY_WORDS } from '../../flow/flow-key.js'
import {
  arp,
  eth,
  eth8023,
  gre,
  ipv4,
  ipv6,
  LINKTYPE,
  fragmentExt,
  mpls,
  nullHdr,
  pppoe,
  PROTO,
  sll,
  sll2,
  tcp,
  teredo,
  udp,
  vxlan,
} from '../../../test/helpers/packet-builder.js'
import { REPO_ROOT } from '../../../test/helpers/shared.js'
import { NO_HASH, symmetricPacketHash, workerForPacket } from './symmetric-hash.js'

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength)
const workerOf = (b: Uint8Array, lt: number, n: number): number =>
  workerForPacket(view(b), 0, b.length, lt, n)
const hashOf = (b: Uint8Array, lt: number): number => symmetricPacketHash(view(b), 0, b.length, lt)

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'))
const v6 = fc
  .array(fc.nat(0xffff), { minLength: 8, maxLength: 8 })
  .map((w) => w.map((x) => x.toString(16)).join(':'))
const port = fc.integer({ min: 1, max: 65535 })

/** Framings around an IP packet, with the link type that carries them. */
const framings: [string, number, (ip: Uint8Array) => Uint8Array][] = [
  ['ethernet', LINKTYPE.ETHERNET, (ip) => eth({}, ip)],
  ['802.1Q', LINKTYPE.ETHERNET, (ip) => eth({ vlan: [10] }, ip)],
  ['QinQ', LINKTYPE.ETHERNET, (ip) => eth({ vlan: [100, 200] }, ip)],
  ['MPLS', LINKTYPE.ETHERNET, (ip) => eth({ type: 0x8847 }, mpls([16, 17, 18], ip))],
  ['VLAN+MPLS', LINKTYPE.ETHERNET, (ip) => eth({ vlan: [7], type: 0x8847 }, mpls([99], ip))],
  ['PPPoE', LINKTYPE.ETHERNET, (ip) => eth({ type: 0x8864 }, pppoe({}, ip))],
  ['LLC/SNAP', LINKTYPE.ETHERNET, (ip) => eth8023({ snapType: ip[0]! >> 4 === 6 ? 0x86dd : 0x0800 }, ip)],
  ['SLL', LINKTYPE.LINUX_SLL, (ip) => sll({}, ip)],
  ['SLL2', LINKTYPE.LINUX_SLL2, (ip) => sll2({}, ip)],
  ['raw', LINKTYPE.RAW, (ip) => ip],
  ['loop', LINKTYPE.LOOP, (ip) => nullHdr({ family: ip[0]! >> 4 === 6 ? 24 : 2, bigEndian: true }, ip)],
]

describe('symmetric packet hash', () => {
  it('gives both directions of an IPv4 or IPv6 conversation the same worker, in every framing', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.tuple(v4, v4, fc.constant(4)), fc.tuple(v6, v6, fc.constant(6))),
        port,
        port,
        fc.constantFrom(...framings),
        fc.integer({ min: 2, max: 8 }),
        ([a, b, version], sp, dp, [, lt, frame], n) => {
          const l4 = (s: number, d: number): Uint8Array => tcp({ sport: s, dport: d })
          const pkt = (s: string, d: string, x: number, y: number): Uint8Array =>
            frame(version === 4 ? ipv4({ src: s, dst: d }, l4(x, y)) : ipv6({ src: s, dst: d }, l4(x, y)))
          const fwd = pkt(a, b, sp, dp)
          const rev = pkt(b, a, dp, sp)
          expect(hashOf(fwd, lt)).not.toBe(NO_HASH)
          expect(hashOf(fwd, lt)).toBe(hashOf(rev, lt))
          expect(workerOf(fwd, lt, n)).toBe(workerOf(rev, lt, n))
        },
      ),
      { numRuns: 400 },
    )
  })

  it('hashes the address pair only: every fragment of a datagram meets its first fragment', () => {
    fc.assert(
      fc.property(
        v4,
        v4,
        port,
        port,
        fc.integer({ min: 1, max: 6 }),
        fc.nat(0xffff),
        (a, b, sp, dp, k, id) => {
          const first = eth(
            {},
            ipv4({ src: a, dst: b, proto: PROTO.UDP, id, mf: true }, udp({ sport: sp, dport: dp })),
          )
          const w = workerOf(first, LINKTYPE.ETHERNET, 3)
          for (let i = 1; i <= k; i++) {
            const later = eth(
              {},
              ipv4({ src: a, dst: b, proto: PROTO.UDP, id, mf: i < k, fragOffset: i * 8 }),
            )
            expect(workerOf(later, LINKTYPE.ETHERNET, 3)).toBe(w)
          }
          // The reply, unfragmented, too.
          const reply = eth({}, ipv4({ src: b, dst: a, proto: PROTO.UDP }, udp({ sport: dp, dport: sp })))
          expect(workerOf(reply, LINKTYPE.ETHERNET, 3)).toBe(w)
        },
      ),
    )
    fc.assert(
      fc.property(v6, v6, fc.nat(0xffff), (a, b, id) => {
        const first = ipv6(
          { src: a, dst: b, ext: [fragmentExt({ id, more: true })] },
          tcp({ sport: 1, dport: 2 }),
        )
        const later = ipv6({ src: a, dst: b, ext: [fragmentExt({ id, offset: 1280 })] }, new Uint8Array(16))
        expect(workerOf(later, LINKTYPE.RAW, 5)).toBe(workerOf(first, LINKTYPE.RAW, 5))
      }),
    )
  })

  it('hashes VXLAN and GRE by the outer pair, symmetric per tunnel', () => {
    fc.assert(
      fc.property(v4, v4, v4, v4, (oa, ob, ia, ib) => {
        const inner = (s: string, d: string): Uint8Array =>
          eth({}, ipv4({ src: s, dst: d }, tcp({ sport: 5, dport: 6 })))
        const wrap = (s: string, d: string, i: Uint8Array): Uint8Array =>
          eth(
            {},
            ipv4(
              { src: s, dst: d, proto: PROTO.UDP },
              udp({ sport: 40000, dport: 4789, payload: vxlan({ vni: 7 }, i) }),
            ),
          )
        const fwd = wrap(oa, ob, inner(ia, ib))
        const rev = wrap(ob, oa, inner(ib, ia))
        const other = eth(
          {},
          ipv4({ src: oa, dst: ob, proto: PROTO.GRE }, gre({}, ipv4({ src: ib, dst: ia }))),
        )
        expect(workerOf(fwd, LINKTYPE.ETHERNET, 4)).toBe(workerOf(rev, LINKTYPE.ETHERNET, 4))
        expect(workerOf(other, LINKTYPE.ETHERNET, 4)).toBe(workerOf(fwd, LINKTYPE.ETHERNET, 4))
      }),
    )
  })

  it('hashes IP-in-IP and 6in4 by the inner pair, whichever tunnel endpoints carry them', () => {
    fc.assert(
      fc.property(v4, v4, v4, v4, v4, v6, v6, (o1, o2, o3, ia, ib, ja, jb) => {
        const fwd = eth(
          {},
          ipv4({ src: o1, dst: o2, proto: 4 }, ipv4({ src: ia, dst: ib }, tcp({ sport: 1, dport: 2 }))),
        )
        const rev = eth(
          {},
          ipv4({ src: o3, dst: o1, proto: 4 }, ipv4({ src: ib, dst: ia }, tcp({ sport: 2, dport: 1 }))),
        )
        expect(workerOf(fwd, LINKTYPE.ETHERNET, 7)).toBe(workerOf(rev, LINKTYPE.ETHERNET, 7))
        expect(hashOf(fwd, LINKTYPE.ETHERNET)).toBe(hashOf(ipv4({ src: ia, dst: ib }), LINKTYPE.RAW))
        const six = ipv4(
          { src: o1, dst: o2, proto: 41 },
          ipv6({ src: ja, dst: jb }, udp({ sport: 5, dport: 514 })),
        )
        const sixBack = ipv4(
          { src: o2, dst: o3, proto: 41 },
          ipv6({ src: jb, dst: ja }, udp({ sport: 514, dport: 5 })),
        )
        expect(workerOf(six, LINKTYPE.RAW, 7)).toBe(workerOf(sixBack, LINKTYPE.RAW, 7))
        // An outer fragment is keyed on the outer packet by the decoder: hashed by the outer pair.
        const frag = ipv4({ src: o1, dst: o2, proto: 4, mf: true }, ipv4({ src: ia, dst: ib }))
        expect(hashOf(frag, LINKTYPE.RAW)).toBe(hashOf(ipv4({ src: o2, dst: o1, proto: 6 }), LINKTYPE.RAW))
      }),
    )
  })

  it('hashes Teredo by the inner IPv6 pair: packets via two server addresses meet', () => {
    fc.assert(
      fc.property(v4, v4, v4, v6, v6, fc.boolean(), (client, server1, server2, a, b, origin) => {
        const wrap = (s: string, d: string, inner: Uint8Array, sport: number, dport: number): Uint8Array =>
          eth(
            {},
            ipv4(
              { src: s, dst: d, proto: PROTO.UDP },
              udp({ sport, dport, payload: teredo({ origin }, inner) }),
            ),
          )
        const ping = ipv6({ src: a, dst: b, proto: 58 }, new Uint8Array(8))
        const pong = ipv6({ src: b, dst: a, proto: 58 }, new Uint8Array(8))
        const out = wrap(client, server1, ping, 50000, 3544)
        const back = wrap(server2, client, pong, 3544, 50000)
        expect(workerOf(out, LINKTYPE.ETHERNET, 5)).toBe(workerOf(back, LINKTYPE.ETHERNET, 5))
        expect(hashOf(out, LINKTYPE.ETHERNET)).toBe(hashOf(ipv6({ src: b, dst: a }), LINKTYPE.RAW))
      }),
    )
  })

  it('hashes non-IP Ethernet frames by the unordered MAC pair', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(255), { minLength: 6, maxLength: 6 }),
        fc.array(fc.nat(255), { minLength: 6, maxLength: 6 }),
        (x, y) => {
          const m = (b: number[]): string => b.map((n) => n.toString(16).padStart(2, '0')).join(':')
          const req = eth({ src: m(x), dst: m(y), type: 0x0806 }, arp())
          const rep = eth({ src: m(y), dst: m(x), type: 0x0806 }, arp())
          expect(hashOf(req, LINKTYPE.ETHERNET)).not.toBe(NO_HASH)
          expect(workerOf(req, LINKTYPE.ETHERNET, 3)).toBe(workerOf(rep, LINKTYPE.ETHERNET, 3))
        },
      ),
    )
  })

  it('sends what it cannot place to worker 0, reading nothing outside the packet', () => {
    const ip = ipv4({ src: '10.1.2.3', dst: '10.3.2.1' }, tcp({ sport: 1, dport: 2 }))
    const full = eth({ vlan: [5] }, ip)
    // Truncated inside the IP addresses, and every shorter prefix: worker 0 or the MAC fallback, no throw.
    for (let len = 0; len < 18 + 20; len++) {
      const h = symmetricPacketHash(view(full), 0, len, LINKTYPE.ETHERNET)
      expect(h === NO_HASH || h >= 0).toBe(true)
    }
    expect(symmetricPacketHash(view(full), 0, 18 + 19, LINKTYPE.ETHERNET)).toBe(NO_HASH)
    expect(workerOf(eth({}, ipv4({ version: 5 }, tcp({ sport: 1, dport: 2 }))), LINKTYPE.ETHERNET, 4)).toBe(0)
    expect(workerOf(ip, 9999, 4)).toBe(0)
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 120 }),
        fc.constantFrom(0, 1, 9, 50, 101, 104, 108, 113, 228, 229, 276),
        (b, lt) => {
          const w = workerOf(b, lt, 3)
          expect(w >= 0 && w < 3).toBe(true)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('spreads distinct host pairs over the workers', () => {
    const counts = [0, 0, 0]
    for (let i = 0; i < 3000; i++) {
      const p = eth(
        {},
        ipv4({ src: `10.${i >> 8}.${i & 255}.1`, dst: '192.0.2.1' }, tcp({ sport: 1, dport: 2 })),
      )
      counts[workerOf(p, LINKTYPE.ETHERNET, 3)]!++
    }
    for (const c of counts) expect(c).toBeGreaterThan(800)
  })

  it('keeps every flow key of the fixture captures on one worker (decoder keys, tunnels, fragments)', async () => {
    const source = await openCaptureFiles([`${REPO_ROOT}/test/fixtures/pcap`])
    const decoder = new PacketDecoder(new Anomalies())
    const pkt = new PacketInfo()
    const key = new Uint32Array(KEY_WORDS)
    const owner = new Map<string, number>()
    let flowsSeen = 0
    try {
      for await (const b of source.batches()) {
        for (let i = 0; i < b.count; i++) {
          const r = decoder.decode(
            b.buf,
            b.view,
            b.offset[i]!,
            b.caplen[i]!,
            b.origlen[i]!,
            b.linkType[i]!,
            b.tsUs[i]!,
            pkt,
          )
          if (r !== DecodeResult.Ip) continue
          fillKey(pkt, key)
          const k = key.join(',')
          const w = workerForPacket(b.view, b.offset[i]!, b.caplen[i]!, b.linkType[i]!, 3)
          const known = owner.get(k)
          if (known === undefined) {
            owner.set(k, w)
            flowsSeen++
          } else expect(w, `flow ${k}`).toBe(known)
        }
      }
    } finally {
      await source.close()
    }
    expect(flowsSeen).toBeGreaterThan(100)
    expect(new Set(owner.values()).size).toBe(3)
  })
})
