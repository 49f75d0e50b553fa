/**
 * Classic pcap record parser (draft-ietf-opsawg-pcap): microsecond (0xA1B2C3D4) and nanosecond
 * (0xA1B23C4D) magic numbers, in either byte order.
 *
 * Wire layout (all fields in the byte order the magic number reveals):
 *   File header, 24 bytes: magic u32, version major u16 (2), minor u16 (4), reserved/thiszone u32,
 *   reserved/sigfigs u32, snaplen u32, link type u32 (low 16 bits; the upper bits carry FCS info).
 *   Record: ts seconds u32, ts fraction u32 (µs or ns), captured length u32, original length u32, data.
 *
 * Files of version 2.0-2.2 have the two length fields swapped, and 2.3 files may (when caplen > origlen):
 * like libpcap and Wireshark, the reader swaps them back.
 *
 * Timestamps become whole microseconds since the epoch (`tsUs`): nanosecond fractions are floored to the
 * microsecond, as the PacketBatch contract keeps whole µs (exact in float64 until 2255). Seconds are
 * unsigned, so files past 2038 read correctly. A fraction of 1 s or more is counted (invalid_timestamp)
 * and dropped. Every packet gets the file's link type and ifIndex 0.
 */
import type { CaptureStats, PacketBatch } from './batch.js'
import { normalizeLinkType } from './link-types.js'
import { countFormatError, MAX_CAPLEN_FLOOR, ParseStatus, type RecordParser } from './record-parser.js'

/** Microsecond-resolution magic, as read in big-endian order. */
export const PCAP_MAGIC_US = 0xa1b2c3d4
/** Nanosecond-resolution magic, as read in big-endian order. */
export const PCAP_MAGIC_NS = 0xa1b23c4d
/** Microsecond magic of a file in the other byte order. */
export const PCAP_MAGIC_US_SWAPPED = 0xd4c3b2a1
/** Nanosecond magic of a file in the other byte order. */
export const PCAP_MAGIC_NS_SWAPPED = 0x4d3cb2a1

const FILE_HEADER_LEN = 24
const RECORD_HEADER_LEN = 16
/** Link type lives in the low 16 bits of the header's last field (bits 16-31: FCS length and reserved). */
const LINKTYPE_MASK = 0xffff
/** Int32Array holds origlen; larger (bogus) values are clamped. */
const MAX_INT32 = 0x7fffffff

/** True when the first 4 bytes (read big-endian) are a pcap magic number in either byte order. */
export function isPcapMagic(be32: number): boolean {
  return (
    be32 === PCAP_MAGIC_US ||
    be32 === PCAP_MAGIC_NS ||
    be32 === PCAP_MAGIC_US_SWAPPED ||
    be32 === PCAP_MAGIC_NS_SWAPPED
  )
}

/** Parses one pcap file; make a new one per file. */
export class PcapParser implements RecordParser {
  status: ParseStatus = ParseStatus.NeedMore
  need = 0

  private headerDone = false
  private littleEndian = true
  private nanosecond = false
  private linkType = 0
  private caplenBound = 0
  /** 0: lengths in spec order; 1: always swapped (version < 2.3); 2: swapped when caplen > origlen (2.3). */
  private lengthsSwapped = 0

  constructor(
    private readonly stats: CaptureStats,
    /** Largest record (header + data) accepted; longer ones stop the file. */
    private readonly maxRecord: number,
  ) {}

  parse(batch: PacketBatch, view: DataView, pos: number, end: number, fileLeft: number): number {
    if (!this.headerDone) {
      const avail = end - pos
      if (avail < FILE_HEADER_LEN) {
        if (avail + fileLeft < FILE_HEADER_LEN) {
          countFormatError(this.stats, avail + fileLeft === 0 ? 'empty_file' : 'truncated_file_header')
          return this.finish(ParseStatus.Stop, pos)
        }
        this.need = FILE_HEADER_LEN
        return this.finish(ParseStatus.NeedMore, pos)
      }
      if (!this.readFileHeader(view, pos)) return this.finish(ParseStatus.Stop, pos)
      pos += FILE_HEADER_LEN
      this.headerDone = true
    }

    const le = this.littleEndian
    const fracPerSec = this.nanosecond ? 1_000_000_000 : 1_000_000
    const fracDiv = this.nanosecond ? 1000 : 1
    const linkType = this.linkType
    const stats = this.stats
    while (true) {
      if (batch.full) return this.finish(ParseStatus.BatchFull, pos)
      const avail = end - pos
      if (avail < RECORD_HEADER_LEN) {
        const rest = avail + fileLeft
        if (rest === 0) return this.finish(ParseStatus.Done, pos)
        if (rest < RECORD_HEADER_LEN) {
          countFormatError(stats, 'truncated_record')
          return this.finish(ParseStatus.Stop, pos)
        }
        this.need = RECORD_HEADER_LEN
        return this.finish(ParseStatus.NeedMore, pos)
      }
      let caplen = view.getUint32(pos + 8, le)
      let origlen = view.getUint32(pos + 12, le)
      if (this.lengthsSwapped !== 0 && (this.lengthsSwapped === 1 || caplen > origlen)) {
        const t = caplen
        caplen = origlen
        origlen = t
      }
      if (caplen > this.caplenBound) {
        countFormatError(stats, 'caplen_exceeds_bound')
        return this.finish(ParseStatus.Stop, pos)
      }
      const recordLen = RECORD_HEADER_LEN + caplen
      if (recordLen > this.maxRecord) {
        countFormatError(stats, 'record_too_large')
        return this.finish(ParseStatus.Stop, pos)
      }
      if (recordLen > avail) {
        if (recordLen > avail + fileLeft) {
          countFormatError(stats, 'truncated_record')
          return this.finish(ParseStatus.Stop, pos)
        }
        this.need = recordLen
        return this.finish(ParseStatus.NeedMore, pos)
      }
      const sec = view.getUint32(pos, le)
      const frac = view.getUint32(pos + 4, le)
      let tsUs = sec * 1_000_000
      if (frac < fracPerSec) tsUs += fracDiv === 1 ? frac : Math.floor(frac / fracDiv)
      // An out-of-range fraction is counted and dropped: the packet keeps its whole second, so a
      // garbage fraction (up to 4294 s) cannot stretch a flow.
      else countFormatError(stats, 'invalid_timestamp')
      batch.push(
        pos + RECORD_HEADER_LEN,
        caplen,
        origlen > MAX_INT32 ? MAX_INT32 : origlen,
        tsUs,
        linkType,
        0,
      )
      stats.packets++
      stats.bytes += caplen
      pos += recordLen
    }
  }

  /** Reads the 24-byte file header at `pos`; false (error counted) when the file cannot be read on. */
  private readFileHeader(view: DataView, pos: number): boolean {
    const magic = view.getUint32(pos, false)
    switch (magic) {
      case PCAP_MAGIC_US:
        this.littleEndian = false
        this.nanosecond = false
        break
      case PCAP_MAGIC_NS:
        this.littleEndian = false
        this.nanosecond = true
        break
      case PCAP_MAGIC_US_SWAPPED:
        this.littleEndian = true
        this.nanosecond = false
        break
      case PCAP_MAGIC_NS_SWAPPED:
        this.littleEndian = true
        this.nanosecond = true
        break
      default:
        // The driver only hands pcap files here, so this is a file that changed under us.
        countFormatError(this.stats, 'truncated_file_header')
        return false
    }
    const le = this.littleEndian
    const major = view.getUint16(pos + 4, le)
    if (major !== 2) {
      countFormatError(this.stats, 'unsupported_version')
      return false
    }
    const minor = view.getUint16(pos + 6, le)
    this.lengthsSwapped = minor < 3 ? 1 : minor === 3 ? 2 : 0
    const snaplen = view.getUint32(pos + 16, le)
    this.linkType = normalizeLinkType(view.getUint32(pos + 20, le) & LINKTYPE_MASK)
    // libpcap and Wireshark accept caplen up to max(snaplen, 262144); the record bound applies on top.
    this.caplenBound = Math.max(snaplen, MAX_CAPLEN_FLOOR)
    return true
  }

  private finish(status: ParseStatus, pos: number): number {
    this.status = status
    return pos
  }
}
