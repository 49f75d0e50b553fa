// Tests for the pcapng reader (draft-ietf-opsawg-pcapng): sections in both byte orders, interfaces
// with their own link type and if_tsresol/if_tsoffset, EPB/SPB/OPB, skipped blocks, and every
// malformed-block case, on captures crafted with test/helpers/pcap-builder.ts.
import { describe, expect, it } from 'vitest'
import {
  buildPcapng,
  concatBytes,
  formatErrorsOf,
  pcapngBlock,
  pcapngEpb,
  pcapngIdb,
  pcapngOpb,
  pcapngShb,
  pcapngSpb,
  readCaptureBytes,
  type PcapngPacket,
} from '../../test/helpers/pcap-builder.js'
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW } from './link-types.js'
import { PCAPNG_IFINDEX_BASE, pcapngTimestampUs } from './pcapng-reader.js'

const T0 = 1_700_000_000_123_456 // µs since the epoch

function pkt(i: number, interfaceId = 0, size = 50): PcapngPacket {
  return {
    data: Uint8Array.from({ length: size + (i % 5) }, (_, j) => (i * 13 + j) & 0xff),
    tsUs: T0 + i * 1_234_567,
    interfaceId,
  }
}

describe('pcapng reader', () => {
  for (const bigEndian of [false, true]) {
    it(`reads a ${bigEndian ? 'big' : 'little'}-endian section with several interfaces`, async () => {
      const packets = [pkt(0, 0), pkt(1, 1), pkt(2, 2), pkt(3, 1), pkt(4, 0)]
      const bytes = buildPcapng({
        bigEndian,
        interfaces: [
          { linkType: LINKTYPE_ETHERNET },
          { linkType: LINKTYPE_LINUX_SLL2, tsresol: 9, name: 'any' },
          { linkType: 12, tsresol: 0x80 | 20, snaplen: 256 },
        ],
        packets,
      })
      const { packets: got, stats } = await readCaptureBytes(bytes)
      expect(formatErrorsOf(stats)).toEqual({})
      expect(got.map((p) => p.data)).toEqual(packets.map((p) => p.data))
      expect(got.map((p) => p.ifIndex)).toEqual(
        packets.map((p) => (p.interfaceId ?? 0) + PCAPNG_IFINDEX_BASE),
      )
      expect(got.map((p) => p.linkType)).toEqual([
        1,
        LINKTYPE_LINUX_SLL2,
        LINKTYPE_RAW,
        LINKTYPE_LINUX_SLL2,
        1,
      ])
      // µs and ns resolutions are exact; 2^-20 s units floor to within 1 µs.
      expect(got.map((p) => p.tsUs)).toEqual([
        packets[0]?.tsUs,
        packets[1]?.tsUs,
        got[2]?.tsUs,
        packets[3]?.tsUs,
        packets[4]?.tsUs,
      ])
      expect(Math.abs((got[2]?.tsUs ?? 0) - (packets[2]?.tsUs ?? 0))).toBeLessThanOrEqual(1)
      expect(stats.packets).toBe(5)
      expect(stats.bytes).toBe(packets.reduce((n, p) => n + p.data.length, 0))
    })
  }

  it('starts over at each section: byte order and interface ids reset', async () => {
    const bytes = buildPcapng([
      { interfaces: [{ linkType: 1 }, { linkType: 113 }], packets: [pkt(0, 0), pkt(1, 1)] },
      { bigEndian: true, interfaces: [{ linkType: 276 }], packets: [pkt(2, 0)] },
      // Interface 1 existed in the first section only.
      { interfaces: [{ linkType: 101 }], packets: [pkt(3, 1), pkt(4, 0)] },
    ])
    const { packets: got, stats } = await readCaptureBytes(bytes)
    expect(got.map((p) => [p.linkType, p.ifIndex, p.tsUs])).toEqual([
      [1, 1, pkt(0).tsUs],
      [113, 2, pkt(1).tsUs],
      [276, 1, pkt(2).tsUs],
      [101, 1, pkt(4).tsUs],
    ])
    expect(formatErrorsOf(stats)).toEqual({ unknown_interface: 1 })
  })

  it('converts if_tsresol (decimal and power of 2) and if_tsoffset', () => {
    const ns = 1_700_000_000_123_456_789n
    const hi = Number(ns >> 32n)
    const lo = Number(ns & 0xffffffffn)
    expect(pcapngTimestampUs(9, hi, lo)).toBe(1_700_000_000_123_456)
    expect(pcapngTimestampUs(12, 0, 1_500_000_000)).toBe(1500) // picoseconds
    expect(pcapngTimestampUs(6, 0, 42)).toBe(42)
    expect(pcapngTimestampUs(3, 0, 42)).toBe(42_000) // milliseconds
    expect(pcapngTimestampUs(0, 0, 42)).toBe(42_000_000) // seconds
    expect(pcapngTimestampUs(0x80 | 10, 0, 1024 + 512)).toBe(1_500_000) // 2^-10 s
    expect(pcapngTimestampUs(0x80 | 40, 1, 0)).toBe(Math.floor((2 ** 32 * 1e6) / 2 ** 40))
    expect(pcapngTimestampUs(6, 0, 42, 1_000)).toBe(1_000_000_042)
    expect(pcapngTimestampUs(6, 0, 42, -1)).toBe(42 - 1_000_000)
    // Past 2106 in seconds (the 32-bit pcap limit) still reads.
    expect(pcapngTimestampUs(6, 1_000_000, 0)).toBe(1_000_000 * 2 ** 32)
  })

  it('applies if_tsresol and if_tsoffset from the interface to packets', async () => {
    const ifaces = [{ tsresol: 9, tsoffset: 3600 }, { tsresol: 3 }, { tsresol: 0x80 | 30 }]
    const packets = [pkt(0, 0), pkt(1, 1), pkt(2, 2)]
    const { packets: got } = await readCaptureBytes(buildPcapng({ interfaces: ifaces, packets }))
    expect(got[0]?.tsUs).toBe(pkt(0).tsUs)
    expect(got[1]?.tsUs).toBe(Math.floor(pkt(1).tsUs / 1000) * 1000)
    expect(Math.abs((got[2]?.tsUs ?? 0) - pkt(2).tsUs)).toBeLessThanOrEqual(1)
  })

  it('reads Simple Packet Blocks: interface 0, caplen min(snaplen, len), previous timestamp', async () => {
    const le = {}
    const bytes = concatBytes(
      pcapngShb(),
      pcapngIdb({ linkType: 101, snaplen: 40 }),
      pcapngIdb({ linkType: 1 }),
      pcapngSpb({ data: new Uint8Array(30), origLen: 30 }, le), // before any timestamp
      pcapngEpb(pkt(1, 1)),
      pcapngSpb({ data: new Uint8Array(40), origLen: 1500 }, le), // snaplen-truncated
      pcapngSpb({ data: new Uint8Array(24), origLen: 21 }, le), // padding beyond origlen
    )
    const { packets: got, stats } = await readCaptureBytes(bytes)
    expect(formatErrorsOf(stats)).toEqual({})
    expect(got.map((p) => [p.caplen, p.origlen, p.linkType, p.ifIndex, p.tsUs])).toEqual([
      [30, 30, 101, 1, 0],
      [pkt(1, 1).data.length, pkt(1, 1).data.length, 1, 2, pkt(1).tsUs],
      [40, 1500, 101, 1, pkt(1).tsUs],
      [21, 21, 101, 1, pkt(1).tsUs],
    ])
  })

  it('reads obsolete Packet Blocks', async () => {
    const packets: PcapngPacket[] = [
      { ...pkt(0, 1), block: 'opb' },
      { ...pkt(1, 0), block: 'epb', origLen: 9000 },
    ]
    const { packets: got } = await readCaptureBytes(
      buildPcapng({ bigEndian: true, interfaces: [{}, { linkType: 113 }], packets }),
    )
    expect(got.map((p) => [p.ifIndex, p.linkType, p.tsUs, p.origlen])).toEqual([
      [2, 113, pkt(0).tsUs, pkt(0).data.length],
      [1, 1, pkt(1).tsUs, 9000],
    ])
  })

  it('skips NRB, ISB, DSB, custom and unknown blocks by length', async () => {
    const body = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i)
    const bytes = concatBytes(
      pcapngShb(),
      pcapngBlock(4, body(20)), // Name Resolution
      pcapngIdb({}),
      pcapngEpb(pkt(0)),
      pcapngBlock(5, body(24)), // Interface Statistics
      pcapngBlock(0x0a, body(33)), // Decryption Secrets
      pcapngBlock(0xbad, body(8)), // custom
      pcapngBlock(0x40000bad, body(0)), // custom, no copy
      pcapngBlock(0x12345678, body(100)), // unknown
      pcapngBlock(9, body(4)), // systemd journal export
      pcapngEpb(pkt(1)),
    )
    const { packets: got, stats } = await readCaptureBytes(bytes)
    expect(got).toHaveLength(2)
    expect(formatErrorsOf(stats)).toEqual({})
  })

  it('reads a section with no interfaces as zero packets', async () => {
    const { packets: got, stats } = await readCaptureBytes(pcapngShb())
    expect(got).toEqual([])
    expect(formatErrorsOf(stats)).toEqual({})
  })

  describe('malformed blocks', () => {
    const head = concatBytes(pcapngShb(), pcapngIdb({}), pcapngEpb(pkt(0)))
    const tail = pcapngEpb(pkt(9))

    async function read(bytes: Uint8Array, chunkSize?: number) {
      const r = await readCaptureBytes(bytes, chunkSize === undefined ? {} : { chunkSize })
      return { count: r.packets.length, errors: formatErrorsOf(r.stats) }
    }

    function raw(type: number, len: number, bodyLen = 8): Uint8Array {
      // A block header with an arbitrary length field, followed by bodyLen zero bytes.
      const out = new Uint8Array(8 + bodyLen)
      const v = new DataView(out.buffer)
      v.setUint32(0, type, true)
      v.setUint32(4, len, true)
      return out
    }

    it('block length not a multiple of 4', async () => {
      expect(await read(concatBytes(head, raw(6, 33, 40), tail))).toEqual({
        count: 1,
        errors: { bad_block_length: 1 },
      })
    })

    it('block length below 12, and zero (no infinite loop)', async () => {
      for (const len of [0, 4, 8]) {
        expect(await read(concatBytes(head, raw(6, len, 40), tail))).toEqual({
          count: 1,
          errors: { bad_block_length: 1 },
        })
      }
    })

    it('section header shorter than 28 bytes', async () => {
      const shb = pcapngShb()
      new DataView(shb.buffer).setUint32(4, 24, true)
      expect(await read(concatBytes(head, shb))).toEqual({ count: 1, errors: { bad_block_length: 1 } })
    })

    it('block length past the end of the file', async () => {
      expect(await read(concatBytes(head, raw(6, 1_000_000, 40)), 64)).toEqual({
        count: 1,
        errors: { truncated_record: 1 },
      })
      expect(await read(concatBytes(head, raw(6, 0xfffffffc, 40)), 64)).toEqual({
        count: 1,
        errors: { truncated_record: 1 },
      })
    })

    it('last block cut short anywhere', async () => {
      const whole = concatBytes(head, tail)
      for (let cut = head.length + 1; cut < whole.length; cut++) {
        expect(await read(whole.subarray(0, cut))).toEqual({ count: 1, errors: { truncated_record: 1 } })
      }
    })

    it('block larger than the record bound', async () => {
      const big = pcapngEpb({ data: new Uint8Array(5000), tsUs: T0 })
      const r = await readCaptureBytes(concatBytes(head, big, tail), { maxRecordSize: 4096 })
      expect(r.packets).toHaveLength(1)
      expect(formatErrorsOf(r.stats)).toEqual({ record_too_large: 1 })
    })

    it('trailing block length differs from the leading one', async () => {
      const bad = pcapngBlock(6, new Uint8Array(40), { trailingLength: 48 })
      expect(await read(concatBytes(head, bad, tail))).toEqual({
        count: 1,
        errors: { block_length_mismatch: 1 },
      })
    })

    it('section header with a bad byte-order magic, or an unsupported version', async () => {
      const shb = pcapngShb()
      new DataView(shb.buffer).setUint32(8, 0x11223344, true)
      expect(await read(concatBytes(head, shb, tail))).toEqual({
        count: 1,
        errors: { bad_byte_order_magic: 1 },
      })
      expect(await read(concatBytes(head, pcapngShb({ versionMajor: 2 }), tail))).toEqual({
        count: 1,
        errors: { unsupported_version: 1 },
      })
    })

    it('packet blocks too short for their fields are skipped', async () => {
      const shortEpb = pcapngBlock(6, new Uint8Array(16))
      const shortSpb = pcapngBlock(3, new Uint8Array(0))
      const shortIdb = pcapngBlock(1, new Uint8Array(4))
      expect(await read(concatBytes(head, shortEpb, shortSpb, shortIdb, tail))).toEqual({
        count: 2,
        errors: { block_too_short: 3 },
      })
    })

    it('captured length running past the block is skipped', async () => {
      const bad = pcapngEpb(pkt(1), { caplen: 1000 })
      expect(await read(concatBytes(head, bad, tail))).toEqual({
        count: 2,
        errors: { caplen_exceeds_block: 1 },
      })
    })

    it('packets of undeclared interfaces are skipped', async () => {
      const bytes = concatBytes(head, pcapngEpb(pkt(1, 7)), pcapngOpb(pkt(2, 3)), tail)
      expect(await read(bytes)).toEqual({ count: 2, errors: { unknown_interface: 2 } })
      // An SPB before any interface description.
      expect(await read(concatBytes(pcapngShb(), pcapngSpb({ data: new Uint8Array(4) })))).toEqual({
        count: 0,
        errors: { unknown_interface: 1 },
      })
    })

    it('an option running past its block is ignored, the interface kept', async () => {
      const idbBody = new Uint8Array(16)
      const v = new DataView(idbBody.buffer)
      v.setUint16(0, 101, true) // link type
      v.setUint16(8, 9, true) // if_tsresol ...
      v.setUint16(10, 200, true) // ... claiming 200 bytes
      const bytes = concatBytes(pcapngShb(), pcapngBlock(1, idbBody), pcapngEpb(pkt(0)))
      const r = await readCaptureBytes(bytes)
      expect(r.packets.map((p) => [p.linkType, p.tsUs])).toEqual([[101, pkt(0).tsUs]])
      expect(formatErrorsOf(r.stats)).toEqual({ bad_option: 1 })
    })

    it('timestamps before 1970 or past 2^53 µs are counted and take the previous packet time', async () => {
      // Found by the probe fuzz campaign: an if_tsoffset of 2^62 s or of -2e9 s, or if_tsresol 0 (seconds)
      // with a high word of 2^32-1, gave times no dateTimeMilliseconds can hold; the exporter wrapped them
      // (flows dated 2021-06-09 or 1970-01-14) without a word.
      const seconds = { linkType: 1, tsresol: 0 }
      const bytes = concatBytes(
        pcapngShb(),
        pcapngIdb({ linkType: 1 }),
        pcapngIdb({ linkType: 1, tsoffset: 2 ** 62 }),
        pcapngIdb({ linkType: 1, tsoffset: -2_000_000_000 }),
        pcapngIdb(seconds),
        // 2^60 s: before any good timestamp, so it takes 0.
        pcapngEpb({ ...pkt(0, 3), tsUs: 2 ** 60 * 1e6 }, { iface: seconds }),
        pcapngEpb(pkt(1, 0)),
        pcapngEpb(pkt(2, 1)), // + 2^62 s
        pcapngEpb(pkt(3, 2)), // - 2e9 s: 1916
        pcapngEpb(pkt(4, 0)),
      )
      const r = await readCaptureBytes(bytes)
      expect(r.packets.map((p) => [p.ifIndex, p.tsUs])).toEqual([
        [4, 0],
        [1, pkt(1).tsUs],
        [2, pkt(1).tsUs],
        [3, pkt(1).tsUs],
        [1, pkt(4).tsUs],
      ])
      expect(formatErrorsOf(r.stats)).toEqual({ invalid_timestamp: 3 })
    })

    it('more than 65536 interfaces in a section are not kept', async () => {
      const idb = pcapngIdb({ linkType: 101 })
      const idbs = new Uint8Array(idb.length * 65537)
      for (let i = 0; i < 65537; i++) idbs.set(idb, i * idb.length)
      const bytes = concatBytes(pcapngShb(), idbs, pcapngEpb(pkt(0, 65535)), pcapngEpb(pkt(1, 65536)))
      expect(await read(bytes)).toEqual({
        count: 1,
        errors: { too_many_interfaces: 1, unknown_interface: 1 },
      })
    })
  })
})
