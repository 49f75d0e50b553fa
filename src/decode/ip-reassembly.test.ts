// IP reassembly for the L7 path (ip-reassembly.ts): fragments decoded by the real decoder, in any order, give
// the datagram's payload once; duplicates, overlaps (IPv4 first wins, IPv6 RFC 5722 drop), tiny fragments
// (RFC 1858), bad lengths, timeouts and the caps each count their anomaly.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Anomalies } from './anomalies.js'
import { DEFAULT_IP_REASSEMBLY_OPTIONS, IpReassembly, type IpReassemblyOptions } from './ip-reassembly.js'
import { PacketDecoder } from './packet-decoder.js'
import { PacketInfo } from './packet.js'
import {
  PROTO,
  ahExt,
  concat,
  eth,
  fragmentExt,
  ipv4,
  ipv6,
  optionsExt,
  tcp,
  udp,
} from '../../test/helpers/packet-builder.js'

const ETH = 1
const RAW6 = 229

/** A decoder and a reassembler sharing one anomaly set; `feed` decodes a frame and hands it on. */
function harness(opts: Partial<IpReassemblyOptions> = {}): {
  feed: (frame: Uint8Array, tsUs?: number, linkType?: number) => Uint8Array | undefined
  last: () => PacketInfo
  r: IpReassembly
  anomalies: Anomalies
} {
  const anomalies = new Anomalies()
  const dec = new PacketDecoder(anomalies)
  const r = new IpReassembly(anomalies, { ...DEFAULT_IP_REASSEMBLY_OPTIONS, ...opts })
  const p = new PacketInfo()
  let whole: PacketInfo | undefined
  const feed = (frame: Uint8Array, tsUs = 0, linkType = ETH): Uint8Array | undefined => {
    // Each frame in a buffer of its own, as a capture batch would be (and reused afterwards).
    const buf = new Uint8Array(frame.length + 16).fill(0xee)
    buf.set(frame, 8)
    dec.decode(buf, new DataView(buf.buffer), 8, frame.length, frame.length, linkType, tsUs, p)
    if (!p.isFragment) return undefined
    whole = r.add(p, tsUs)
    if (whole === undefined) return undefined
    const out = whole.buf.slice(whole.payloadOffset, whole.payloadOffset + whole.payloadCaptured)
    buf.fill(0x55) // The capture reuses its buffer: the rebuilt payload must not point into it.
    return out
  }
  return { feed, last: () => whole!, r, anomalies }
}

/** The anomalies of `h` without the fragment cache's (a later fragment before its first one). */
function counted(h: { anomalies: Anomalies }): Record<string, number> {
  const { fragment_without_first: _, ...rest } = h.anomalies.toObject()
  return rest
}

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff
  return b
}

interface Frag {
  offset: number
  more: boolean
  data: Uint8Array
}

/** Cut an L4 segment into fragments of `size` bytes (a multiple of 8). */
function cut(segment: Uint8Array, size: number): Frag[] {
  const out: Frag[] = []
  for (let o = 0; o < segment.length; o += size)
    out.push({ offset: o, more: o + size < segment.length, data: segment.subarray(o, o + size) })
  return out
}

const v4 = (f: Frag, id = 7, proto: number = PROTO.UDP, src = '192.0.2.1'): Uint8Array =>
  eth({}, ipv4({ src, dst: '192.0.2.2', id, proto, mf: f.more, fragOffset: f.offset }, f.data))
const v6 = (f: Frag, id = 0x01020304, proto: number = PROTO.UDP, ext = [fragmentExt({})]): Uint8Array =>
  ipv6(
    {
      proto,
      ext: ext.map((e) =>
        e.type === PROTO.FRAGMENT ? fragmentExt({ offset: f.offset, more: f.more, id }) : e,
      ),
    },
    f.data,
  )

const PAYLOAD = bytes(3000)
const SEGMENT = udp({ sport: 53, dport: 40000, payload: PAYLOAD })

describe('IP reassembly', () => {
  it('rebuilds an IPv4 UDP datagram from fragments in order, once, with the UDP fields', () => {
    const h = harness()
    const frags = cut(SEGMENT, 1480)
    expect(frags.length).toBe(3)
    expect(h.feed(v4(frags[0]!), 1)).toBeUndefined()
    expect(h.feed(v4(frags[1]!), 2)).toBeUndefined()
    expect(h.feed(v4(frags[2]!), 3)).toEqual(PAYLOAD)
    const w = h.last()
    expect([w.isFragment, w.fragOffset, w.protocol, w.srcPort, w.dstPort, w.udpLength]).toEqual([
      false,
      0,
      PROTO.UDP,
      53,
      40000,
      SEGMENT.length,
    ])
    expect(w.payloadLength).toBe(PAYLOAD.length)
    expect(counted(h)).toEqual({})
    expect([h.r.size, h.r.heldBytes, h.r.reassembled]).toEqual([0, 0, 1])
  })

  it('rebuilds in reverse order; the first fragment completes it', () => {
    const h = harness()
    const frags = cut(SEGMENT, 1000).reverse()
    const got = frags.map((f, i) => h.feed(v4(f), i))
    expect(got.slice(0, -1).every((g) => g === undefined)).toBe(true)
    expect(got.at(-1)).toEqual(PAYLOAD)
    expect(counted(h)).toEqual({})
  })

  it('rebuilds an IPv6 datagram, with a Destination Options header after the Fragment header', () => {
    const h = harness()
    const dest = optionsExt(PROTO.DSTOPTS, new Uint8Array(4))
    // The fragmentable part: the Destination Options header, then UDP.
    const part = concat(concat(new Uint8Array([PROTO.UDP]), dest.bytes.subarray(1)), SEGMENT)
    const frags = cut(part, 1232)
    const frame = (f: Frag): Uint8Array =>
      ipv6({ proto: PROTO.DSTOPTS, ext: [fragmentExt({ offset: f.offset, more: f.more, id: 9 })] }, f.data)
    expect(h.feed(frame(frags[1]!), 1, RAW6)).toBeUndefined()
    expect(h.feed(frame(frags[2]!), 2, RAW6)).toBeUndefined()
    expect(h.feed(frame(frags[0]!), 3, RAW6)).toEqual(PAYLOAD)
    expect([h.last().protocol, h.last().srcPort]).toEqual([PROTO.UDP, 53])
    expect(counted(h)).toEqual({})
  })

  it('rebuilds a TCP segment with its sequence number and flags', () => {
    const h = harness()
    const seg = tcp({ sport: 40001, dport: 80, seq: 0xfffffff0, flags: 0x18, payload: PAYLOAD })
    const frags = cut(seg, 1480)
    h.feed(v4(frags[2]!, 3, PROTO.TCP), 1)
    h.feed(v4(frags[0]!, 3, PROTO.TCP), 2)
    expect(h.feed(v4(frags[1]!, 3, PROTO.TCP), 3)).toEqual(PAYLOAD)
    const w = h.last()
    expect([w.protocol, w.srcPort, w.dstPort, w.tcpSeq, w.tcpFlags]).toEqual([
      PROTO.TCP,
      40001,
      80,
      0xfffffff0,
      0x18,
    ])
  })

  it('ignores exact duplicates (no anomaly), for both versions', () => {
    for (const [mk, link] of [
      [(f: Frag) => v4(f), ETH],
      [(f: Frag) => v6(f), RAW6],
    ] as const) {
      const h = harness()
      const frags = cut(SEGMENT, 1024)
      h.feed(mk(frags[0]!), 1, link)
      h.feed(mk(frags[0]!), 2, link)
      h.feed(mk(frags[1]!), 3, link)
      h.feed(mk(frags[1]!), 4, link)
      expect(h.feed(mk(frags[2]!), 5, link)).toEqual(PAYLOAD)
      expect(counted(h)).toEqual({})
    }
  })

  it('IPv4 overlap: the first data wins, a conflicting overlap is counted', () => {
    const h = harness()
    const frags = cut(SEGMENT, 1024)
    h.feed(v4(frags[0]!), 1)
    // A forged fragment over bytes 1016..2040 with other content, then the real ones.
    const forged: Frag = { offset: 1016, more: true, data: new Uint8Array(1024).fill(0xaa) }
    h.feed(v4(forged), 2)
    h.feed(v4(frags[1]!), 3)
    const got = h.feed(v4(frags[2]!), 4)
    // Two conflicts: the forged fragment over the first one's last 8 bytes, the real second one over it.
    expect(counted(h)).toEqual({ ip_fragment_overlap: 2 })
    // Bytes 1016..1023 came first from the real first fragment, 1024..2039 from the forged one.
    const want = SEGMENT.slice()
    want.fill(0xaa, 1024, 2040)
    expect(got).toEqual(want.subarray(8))
  })

  it('IPv6 overlap (RFC 5722): the datagram is dropped and counted once', () => {
    const h = harness()
    const frags = cut(SEGMENT, 1024)
    h.feed(v6(frags[0]!), 1, RAW6)
    h.feed(v6({ offset: 1016, more: true, data: frags[1]!.data }), 2, RAW6)
    expect(h.feed(v6(frags[1]!), 3, RAW6)).toBeUndefined()
    expect(h.feed(v6(frags[2]!), 4, RAW6)).toBeUndefined()
    expect(counted(h)).toEqual({ ipv6_fragment_overlap: 1 })
    expect(h.r.heldBytes).toBe(0)
    // The tombstone ends with the timeout, without a second count.
    h.feed(v6({ offset: 8, more: true, data: new Uint8Array(8) }, 99), 40_000_000, RAW6)
    expect(counted(h)).toEqual({ ipv6_fragment_overlap: 1 })
  })

  it('counts tiny fragments (RFC 1858): TCP at offset 8, a first fragment without the whole TCP header', () => {
    const h = harness()
    const seg = tcp({ sport: 1, dport: 2, payload: bytes(64) })
    h.feed(v4({ offset: 0, more: true, data: seg.subarray(0, 16) }, 1, PROTO.TCP), 1)
    h.feed(v4({ offset: 8, more: false, data: seg.subarray(8) }, 2, PROTO.TCP), 2)
    expect(h.feed(v4({ offset: 16, more: false, data: seg.subarray(16) }, 1, PROTO.TCP), 3)).toBeUndefined()
    expect(counted(h)).toMatchObject({ ip_fragment_tiny: 2 })
  })

  it('counts a first IPv6 fragment whose extension headers do not end in it (RFC 7112) as tiny', () => {
    const h = harness()
    // An Authentication Header that claims 96 bytes, in a first fragment of 24: the decoder stops inside it.
    const ah = ahExt({ icvLength: 84 })
    const first = ipv6(
      { proto: PROTO.AH, ext: [fragmentExt({ more: true, id: 3 })] },
      concat(new Uint8Array([PROTO.UDP]), ah.bytes.subarray(1, 24)),
    )
    expect(h.feed(first, 1, RAW6)).toBeUndefined()
    expect(h.feed(v6({ offset: 24, more: false, data: new Uint8Array(80) }, 3), 2, RAW6)).toBeUndefined()
    expect(counted(h)).toMatchObject({ ip_fragment_tiny: 1 })
    expect(h.r.heldBytes).toBe(0)
  })

  it('counts bad lengths: a non-last fragment not a multiple of 8, a datagram beyond 65 535 bytes', () => {
    const h = harness()
    h.feed(v4({ offset: 0, more: true, data: SEGMENT.subarray(0, 1001) }, 1), 1)
    h.feed(v4({ offset: 65528, more: false, data: new Uint8Array(16) }, 2), 2)
    expect(counted(h)).toEqual({ ip_fragment_bad_length: 2 })
    expect(h.r.heldBytes).toBe(0)
  })

  it('drops a datagram whose fragment is cut by the snap length; its first fragment goes on alone', () => {
    const anomalies = new Anomalies()
    const dec = new PacketDecoder(anomalies)
    const r = new IpReassembly(anomalies)
    const frame = v4(cut(SEGMENT, 1480)[0]!)
    const p = new PacketInfo()
    dec.decode(frame, new DataView(frame.buffer), 0, 200, frame.length, ETH, 0, p)
    // The first fragment goes on as it is (what was captured of it); the datagram is dropped, counted once.
    expect(r.add(p, 0)).toBe(p)
    expect(anomalies.get('ip_reassembly_truncated')).toBe(1)
    const later = v4(cut(SEGMENT, 1480)[1]!)
    dec.decode(later, new DataView(later.buffer), 0, 200, later.length, ETH, 0, p)
    expect(r.add(p, 0)).toBeUndefined()
    expect(anomalies.get('ip_reassembly_truncated')).toBe(1)
    expect(r.heldBytes).toBe(0)
  })

  it('times out an incomplete datagram after 30 s of packet time, oldest first, and at the end of input', () => {
    const h = harness()
    const frags = cut(SEGMENT, 1480)
    h.feed(v4(frags[0]!, 1), 0)
    h.feed(v4(frags[0]!, 2), 10_000_000)
    h.feed(v4(frags[1]!, 1), 30_000_000) // Still in time
    expect(counted(h)).toEqual({})
    // Datagram 1 is past its timeout when datagram 3 begins; its missing fragment then starts a new one.
    h.feed(v4(frags[0]!, 3), 30_000_001)
    expect(counted(h)).toEqual({ ip_reassembly_timeout: 1 })
    expect(h.feed(v4(frags[2]!, 1), 30_000_002)).toBeUndefined()
    expect(h.r.size).toBe(3)
    // The end of the input: the three incomplete datagrams count too, once each.
    h.r.finish()
    expect(counted(h)).toEqual({ ip_reassembly_timeout: 4 })
    expect([h.r.size, h.r.heldBytes]).toEqual([0, 0])
    // The summary's counts (stats) agree with the anomalies.
    expect(h.r.stats()).toEqual({ reassembled: 0, timedOut: 4, evicted: 0, dropped: 0 })
  })

  it('evicts the oldest datagram at the datagram-count cap and at the byte cap', () => {
    const h = harness({ maxDatagrams: 2 })
    const frags = cut(SEGMENT, 1480)
    h.feed(v4(frags[0]!, 1), 1)
    h.feed(v4(frags[0]!, 2), 2)
    h.feed(v4(frags[0]!, 3), 3)
    expect(counted(h)).toEqual({ ip_reassembly_evicted: 1 })
    expect(h.r.size).toBe(2)
    // Datagram 2 and 3 are still complete-able.
    h.feed(v4(frags[1]!, 3), 4)
    expect(h.feed(v4(frags[2]!, 3), 5)).toEqual(PAYLOAD)

    const b = harness({ maxBytes: 4096 })
    b.feed(v4(frags[0]!, 1), 1) // 2 KiB
    b.feed(v4(frags[0]!, 2), 2) // 2 KiB: at the cap
    b.feed(v4(frags[1]!, 2), 3) // grows to 4 KiB: datagram 1 goes
    expect(counted(b)).toEqual({ ip_reassembly_evicted: 1 })
    expect(b.r.heldBytes).toBe(4096)
    expect(b.feed(v4(frags[2]!, 2), 4)).toEqual(PAYLOAD)
    expect(b.r.heldBytes).toBe(0)
    expect(h.r.stats()).toEqual({ reassembled: 1, timedOut: 0, evicted: 1, dropped: 0 })
    expect(b.r.stats()).toEqual({ reassembled: 1, timedOut: 0, evicted: 1, dropped: 0 })
  })

  it('drops a datagram of more fragments than the cap', () => {
    const h = harness({ maxFragments: 4 })
    const frags = cut(SEGMENT, 512)
    expect(frags.length).toBe(6)
    for (const f of frags) expect(h.feed(v4(f), 1)).toBeUndefined()
    expect(counted(h)).toEqual({ ip_reassembly_evicted: 1 })
    expect(h.r.stats()).toEqual({ reassembled: 0, timedOut: 0, evicted: 1, dropped: 0 })
  })

  it('treats an IPv6 atomic fragment (RFC 6946) as a whole packet: nothing to reassemble', () => {
    const anomalies = new Anomalies()
    const dec = new PacketDecoder(anomalies)
    const frame = ipv6({ proto: PROTO.UDP, ext: [fragmentExt({ id: 5 })] }, SEGMENT)
    const p = new PacketInfo()
    dec.decode(frame, new DataView(frame.buffer), 0, frame.length, frame.length, RAW6, 0, p)
    expect([p.isFragment, p.srcPort, p.payloadCaptured]).toEqual([false, 53, PAYLOAD.length])
  })

  it('gives nothing when the completing fragment was counted in another flow (ports unknown to it)', () => {
    const anomalies = new Anomalies()
    const dec = new PacketDecoder(anomalies, { fragmentCacheSize: 1 })
    const r = new IpReassembly(anomalies)
    const p = new PacketInfo()
    const feed = (frame: Uint8Array): PacketInfo | undefined => {
      dec.decode(frame, new DataView(frame.buffer), 0, frame.length, frame.length, ETH, 0, p)
      return r.add(p, 0)
    }
    const frags = cut(SEGMENT, 1480)
    feed(v4(frags[0]!, 1))
    feed(v4(frags[0]!, 2)) // The fragment cache (1 entry) forgets datagram 1's ports
    feed(v4(frags[1]!, 1))
    expect(feed(v4(frags[2]!, 1))).toBeUndefined()
    expect(anomalies.toObject()).toMatchObject({ ip_reassembly_flow_mismatch: 1 })
  })

  it('property: random fragments never throw, stay within the caps, and rebuild within their buffer', () => {
    const frag = fc.record({
      v6: fc.boolean(),
      id: fc.integer({ min: 1, max: 3 }),
      proto: fc.constantFrom(PROTO.TCP, PROTO.UDP, PROTO.ICMP, PROTO.AH),
      offset: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 8191 })).map((u) => u * 8),
      more: fc.boolean(),
      len: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 1500 })),
      fill: fc.integer({ min: 0, max: 255 }),
    })
    fc.assert(
      fc.property(fc.array(frag, { minLength: 1, maxLength: 40 }), (frags) => {
        const h = harness({ maxBytes: 64 * 1024, maxDatagrams: 4, maxFragments: 16 })
        frags.forEach((f, i) => {
          const data = new Uint8Array(f.len).fill(f.fill)
          const fr: Frag = { offset: f.offset, more: f.more, data }
          const got = f.v6 ? h.feed(v6(fr, f.id, f.proto), i, RAW6) : h.feed(v4(fr, f.id, f.proto), i)
          if (got !== undefined) {
            const w = h.last()
            expect(w.payloadOffset).toBeGreaterThanOrEqual(0)
            expect(w.payloadOffset + w.payloadCaptured).toBeLessThanOrEqual(w.buf.length)
          }
          expect(h.r.heldBytes).toBeLessThanOrEqual(64 * 1024)
          expect(h.r.size).toBeLessThanOrEqual(4)
        })
      }),
      { numRuns: 300 },
    )
  })

  it('property: any order of any fragmentation of a datagram gives the same payload', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4000 }),
        fc.integer({ min: 1, max: 200 }),
        fc.boolean(),
        fc.boolean(),
        fc.infiniteStream(fc.nat()),
        fc.integer({ min: 0, max: 3 }),
        (payloadLen, units, ipV6, withDup, rnd, seed) => {
          const payload = bytes(payloadLen, seed)
          const seg = udp({ sport: 5000, dport: 53, payload })
          const frags = cut(seg, units * 8)
          const order = frags.map((f, i) => ({ f, k: rnd.next().value as number, i }))
          if (withDup) order.push({ f: frags[0]!, k: rnd.next().value as number, i: -1 })
          order.sort((a, b) => a.k - b.k || a.i - b.i)
          const h = harness({ maxFragments: 1 << 14 })
          let got: Uint8Array | undefined
          let completions = 0
          for (const { f } of order) {
            const g = ipV6 ? h.feed(v6(f), 0, RAW6) : h.feed(v4(f), 0)
            if (g !== undefined) {
              got = g
              completions++
            }
          }
          if (frags.length === 1) return // One fragment is a whole packet (not a fragment at all)
          // A duplicate after completion starts a new datagram that never completes: it gives nothing.
          expect(completions).toBe(1)
          expect(got).toEqual(payload)
        },
      ),
      { numRuns: 300 },
    )
  })
})
