// Tests for the classic pcap reader (draft-ietf-opsawg-pcap): magics, byte orders, timestamps, lengths
// and every malformed-file case, on captures crafted with test/helpers/pcap-builder.ts.
import { describe, expect, it } from 'vitest'
import {
  buildPcap,
  concatBytes,
  formatErrorsOf,
  pcapHeader,
  pcapRecord,
  readCaptureBytes,
  type BuilderPacket,
} from '../../test/helpers/pcap-builder.js'
import { LINKTYPE_LINUX_SLL2, LINKTYPE_RAW } from './link-types.js'

const T0 = 1_700_000_000_123_456 // µs since the epoch

function packets(n: number, size = 60): BuilderPacket[] {
  return Array.from({ length: n }, (_, i) => ({
    data: Uint8Array.from({ length: size + i }, (_, j) => (i * 7 + j) & 0xff),
    tsUs: T0 + i * 1_000_001,
  }))
}

describe('pcap reader', () => {
  for (const bigEndian of [false, true]) {
    for (const nanosecond of [false, true]) {
      it(`reads ${bigEndian ? 'big' : 'little'}-endian ${nanosecond ? 'nanosecond' : 'microsecond'} files`, async () => {
        const pk = packets(5)
        const { packets: got, stats } = await readCaptureBytes(
          buildPcap(pk, { bigEndian, nanosecond, linkType: LINKTYPE_LINUX_SLL2 }),
        )
        expect(got.map((p) => p.tsUs)).toEqual(pk.map((p) => p.tsUs))
        expect(got.map((p) => p.data)).toEqual(pk.map((p) => p.data))
        expect(got.every((p) => p.linkType === LINKTYPE_LINUX_SLL2 && p.ifIndex === 0)).toBe(true)
        expect(got.map((p) => p.origlen)).toEqual(pk.map((p) => p.data.length))
        expect(stats.packets).toBe(5)
        expect(stats.bytes).toBe(pk.reduce((n, p) => n + p.data.length, 0))
        expect(formatErrorsOf(stats)).toEqual({})
      })
    }
  }

  it('floors nanosecond fractions to whole microseconds', async () => {
    const head = pcapHeader({ nanosecond: true })
    const rec = pcapRecord(
      { data: new Uint8Array(4), tsUs: 1_000_000_000_000_000 },
      { nanosecond: true },
      {
        frac: 123_456_789,
      },
    )
    const { packets: got } = await readCaptureBytes(concatBytes(head, rec))
    expect(got[0]?.tsUs).toBe(1_000_000_000_123_456)
  })

  it('reads unsigned seconds past 2038 and 2106-1 exactly', async () => {
    const ts = 0xffffffff * 1e6 + 999_999
    const { packets: got } = await readCaptureBytes(buildPcap([{ data: new Uint8Array(1), tsUs: ts }]))
    expect(got[0]?.tsUs).toBe(ts)
  })

  it('keeps origlen apart from caplen (snaplen truncation)', async () => {
    const { packets: got } = await readCaptureBytes(
      buildPcap([{ data: new Uint8Array(64), tsUs: T0, origLen: 1514 }], { snaplen: 64 }),
    )
    expect(got[0]).toMatchObject({ caplen: 64, origlen: 1514 })
  })

  it('normalizes DLT_RAW 12 and 14 to LINKTYPE_RAW', async () => {
    for (const linkType of [12, 14]) {
      const { packets: got } = await readCaptureBytes(buildPcap(packets(1), { linkType }))
      expect(got[0]?.linkType).toBe(LINKTYPE_RAW)
    }
  })

  it('ignores the FCS bits above the 16-bit link type', async () => {
    const { packets: got } = await readCaptureBytes(buildPcap(packets(1), { linkType: 0x1000_0001 }))
    expect(got[0]?.linkType).toBe(1)
  })

  it('swaps caplen and origlen back in version 2.2 files (and 2.3 files when caplen > origlen)', async () => {
    const data = new Uint8Array(40)
    // Version 2.2: the caplen field holds the wire length (1500) and the origlen field the captured 40.
    const v22 = concatBytes(
      pcapHeader({ versionMinor: 2 }),
      pcapRecord({ data, tsUs: T0, origLen: 40 }, {}, { caplen: 1500 }),
    )
    const a = await readCaptureBytes(v22)
    expect(a.packets[0]).toMatchObject({ caplen: 40, origlen: 1500 })
    const v23 = concatBytes(pcapHeader({ versionMinor: 3 }), pcapRecord({ data, tsUs: T0, origLen: 1500 }))
    const b = await readCaptureBytes(v23)
    expect(b.packets[0]).toMatchObject({ caplen: 40, origlen: 1500 })
  })

  it('reads a header-only file as zero packets', async () => {
    const { packets: got, stats } = await readCaptureBytes(buildPcap([]))
    expect(got).toEqual([])
    expect(formatErrorsOf(stats)).toEqual({})
  })

  describe('malformed files', () => {
    const good = buildPcap(packets(3))
    const firstTwoLen = 24 + 16 + 60 + 16 + 61

    it('empty file', async () => {
      const r = await readCaptureBytes(new Uint8Array(0))
      expect(r.packets).toEqual([])
      expect(formatErrorsOf(r.stats)).toEqual({ empty_file: 1 })
    })

    it('file header cut short (magic only, and shorter than a magic)', async () => {
      const r = await readCaptureBytes(good.subarray(0, 10))
      expect(formatErrorsOf(r.stats)).toEqual({ truncated_file_header: 1 })
      const s = await readCaptureBytes(good.subarray(0, 3))
      expect(formatErrorsOf(s.stats)).toEqual({ truncated_file_header: 1 })
    })

    it('last record cut in its header or its data: earlier packets are delivered', async () => {
      for (const cut of [firstTwoLen + 1, firstTwoLen + 15, firstTwoLen + 16, good.length - 1]) {
        const r = await readCaptureBytes(good.subarray(0, cut))
        expect(r.packets).toHaveLength(2)
        expect(formatErrorsOf(r.stats)).toEqual({ truncated_record: 1 })
      }
    })

    it('caplen larger than max(snaplen, 262144) stops the file without allocating it', async () => {
      for (const caplen of [262145, 0x7fffffff, 0xffffffff]) {
        const bad = concatBytes(
          good,
          pcapRecord({ data: new Uint8Array(8), tsUs: T0 }, {}, { caplen }),
          pcapRecord(packets(1)[0] as BuilderPacket),
        )
        const r = await readCaptureBytes(bad, { chunkSize: 64 })
        expect(r.packets).toHaveLength(3)
        expect(formatErrorsOf(r.stats)).toEqual({ caplen_exceeds_bound: 1 })
      }
    })

    it('a caplen within the snaplen bound but beyond the end of the file is a truncated record', async () => {
      const bad = concatBytes(
        good,
        pcapRecord({ data: new Uint8Array(8), tsUs: T0 }, {}, { caplen: 200_000 }),
      )
      const r = await readCaptureBytes(bad, { chunkSize: 64 })
      expect(r.packets).toHaveLength(3)
      expect(formatErrorsOf(r.stats)).toEqual({ truncated_record: 1 })
    })

    it('a large snaplen raises the bound; the record bound still applies', async () => {
      const big = buildPcap([{ data: new Uint8Array(300_000), tsUs: T0 }], { snaplen: 400_000 })
      const r = await readCaptureBytes(big, { chunkSize: 4096 })
      expect(r.packets[0]?.caplen).toBe(300_000)
      const s = await readCaptureBytes(big, { chunkSize: 4096, maxRecordSize: 100_000 })
      expect(s.packets).toEqual([])
      expect(formatErrorsOf(s.stats)).toEqual({ record_too_large: 1 })
    })

    it('invalid timestamp fraction is counted and the packet kept with its whole second', async () => {
      const bad = concatBytes(
        pcapHeader(),
        pcapRecord({ data: new Uint8Array(4), tsUs: 5_000_000 }, {}, { frac: 1_000_000 }),
        pcapRecord({ data: new Uint8Array(4), tsUs: 7_000_000 }),
      )
      const r = await readCaptureBytes(bad)
      expect(r.packets.map((p) => p.tsUs)).toEqual([5_000_000, 7_000_000])
      expect(formatErrorsOf(r.stats)).toEqual({ invalid_timestamp: 1 })
    })

    it('unsupported major version', async () => {
      const r = await readCaptureBytes(buildPcap(packets(2), { versionMajor: 1 }))
      expect(r.packets).toEqual([])
      expect(formatErrorsOf(r.stats)).toEqual({ unsupported_version: 1 })
    })
  })
})
