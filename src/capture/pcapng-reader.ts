/**
 * pcapng block parser (draft-ietf-opsawg-pcapng): Section Header (either byte order, several sections
 * per file), Interface Description (link type, snaplen, if_tsresol incl. the power-of-2 form,
 * if_tsoffset), Enhanced Packet, Simple Packet and the obsolete Packet Block. Every other block
 * (Name Resolution, Interface Statistics, Decryption Secrets, custom, unknown) is skipped by its length.
 *
 * Block layout: type u32, total length u32, body, total length u32 again; lengths are multiples of 4.
 * Each packet gets `linkType` = its interface's link type and `ifIndex` = interface id + 1
 * (PCAPNG_IFINDEX_BASE), following the PacketBatch contract where 0 means "unknown interface".
 * Timestamps become whole microseconds since the epoch (floored), plus the interface's if_tsoffset; one
 * outside 0..2^53-1 µs (1970 to 2255) is counted (invalid_timestamp) and replaced by the previous packet's.
 * Simple Packet Blocks carry no timestamp: they get the previous packet's timestamp (0 before any).
 */
import type { CaptureStats, PacketBatch } from './batch.js'
import { normalizeLinkType } from './link-types.js'
import { countFormatError, ParseStatus, type RecordParser } from './record-parser.js'

/** Section Header Block type; a palindrome, so it reads the same in both byte orders. */
export const PCAPNG_SHB = 0x0a0d0d0a
/** Byte-order magic of a Section Header Block, as read in the section's own byte order. */
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d
/** The byte-order magic seen from the other byte order. */
const PCAPNG_BYTE_ORDER_MAGIC_SWAPPED = 0x4d3c2b1a

/** Block types (draft-ietf-opsawg-pcapng section 11.1). */
export const PCAPNG_BLOCK = {
  /** Interface Description Block. */
  InterfaceDescription: 0x00000001,
  /** Obsolete Packet Block (16-bit interface id, drops count). */
  Packet: 0x00000002,
  /** Simple Packet Block: original length and data only, interface 0, no timestamp. */
  SimplePacket: 0x00000003,
  /** Name Resolution Block (skipped). */
  NameResolution: 0x00000004,
  /** Interface Statistics Block (skipped). */
  InterfaceStatistics: 0x00000005,
  /** Enhanced Packet Block. */
  EnhancedPacket: 0x00000006,
  /** Decryption Secrets Block (skipped). */
  DecryptionSecrets: 0x0000000a,
  /** Custom Block that may be copied (skipped). */
  Custom: 0x00000bad,
  /** Custom Block that must not be copied (skipped). */
  CustomNoCopy: 0x40000bad,
} as const

/** Added to the pcapng interface id to form `ifIndex` (0 stays "unknown", as PacketBatch documents). */
export const PCAPNG_IFINDEX_BASE = 1

/** Interface Description option codes we read. */
const OPT_END = 0
const OPT_IF_TSRESOL = 9
const OPT_IF_TSOFFSET = 14

const BLOCK_HEADER_LEN = 8 // type + leading length
const MIN_BLOCK_LEN = 12 // type + length + trailing length
const MIN_SHB_LEN = 28 // + byte-order magic, version, section length
const MIN_IDB_LEN = 20 // + link type, reserved, snaplen
const MIN_EPB_LEN = 32 // + interface id, ts high, ts low, caplen, origlen (same for the obsolete PB)
const MIN_SPB_LEN = 16 // + original length
/** Interfaces kept per section; more IDBs are counted and skipped (bounds memory on hostile files). */
const MAX_INTERFACES = 65536
const MAX_INT32 = 0x7fffffff
const TWO_32 = 4294967296

/** How an interface's 64-bit timestamp converts to microseconds. */
const enum TsMode {
  /** Decimal resolution of 10^-6 or finer: divide by `param` (10^(n-6)). */
  Divide = 0,
  /** Decimal resolution coarser than 10^-6: multiply by `param` (10^(6-n)). */
  Multiply = 1,
  /** Binary resolution 2^-param. */
  Binary = 2,
}

class Interface {
  linkType = 0
  /** 0 means "no limit". */
  snaplen = 0
  tsMode: TsMode = TsMode.Divide
  tsParam = 1
  tsOffsetUs = 0
}

/** Parses one pcapng file; make a new one per file. */
export class PcapngParser implements RecordParser {
  status: ParseStatus = ParseStatus.NeedMore
  need = 0

  private littleEndian = true
  private sectionSeen = false
  private readonly interfaces: Interface[] = []
  private lastTsUs = 0

  constructor(
    private readonly stats: CaptureStats,
    /** Largest block accepted; longer ones stop the file. */
    private readonly maxRecord: number,
  ) {}

  parse(batch: PacketBatch, view: DataView, pos: number, end: number, fileLeft: number): number {
    const stats = this.stats
    while (true) {
      if (batch.full) return this.finish(ParseStatus.BatchFull, pos)
      const avail = end - pos
      if (avail < MIN_BLOCK_LEN) {
        const rest = avail + fileLeft
        if (rest === 0) {
          if (!this.sectionSeen) countFormatError(stats, 'empty_file')
          return this.finish(ParseStatus.Done, pos)
        }
        if (rest < MIN_BLOCK_LEN) {
          countFormatError(stats, 'truncated_record')
          return this.finish(ParseStatus.Stop, pos)
        }
        this.need = MIN_BLOCK_LEN
        return this.finish(ParseStatus.NeedMore, pos)
      }

      const type = view.getUint32(pos, this.littleEndian)
      if (type === PCAPNG_SHB) {
        // The byte order of the new section comes from its byte-order magic, before its length is read.
        const bom = view.getUint32(pos + 8, false)
        if (bom === PCAPNG_BYTE_ORDER_MAGIC) this.littleEndian = false
        else if (bom === PCAPNG_BYTE_ORDER_MAGIC_SWAPPED) this.littleEndian = true
        else {
          countFormatError(stats, 'bad_byte_order_magic')
          return this.finish(ParseStatus.Stop, pos)
        }
      } else if (!this.sectionSeen) {
        // The driver only hands files that start with an SHB; anything else means the file changed.
        countFormatError(stats, 'missing_section_header')
        return this.finish(ParseStatus.Stop, pos)
      }
      const le = this.littleEndian
      const blockLen = view.getUint32(pos + 4, le)
      if (blockLen < MIN_BLOCK_LEN || blockLen % 4 !== 0 || (type === PCAPNG_SHB && blockLen < MIN_SHB_LEN)) {
        countFormatError(stats, 'bad_block_length')
        return this.finish(ParseStatus.Stop, pos)
      }
      if (blockLen > this.maxRecord && blockLen <= avail + fileLeft) {
        countFormatError(stats, 'record_too_large')
        return this.finish(ParseStatus.Stop, pos)
      }
      if (blockLen > avail) {
        if (blockLen > avail + fileLeft) {
          countFormatError(stats, 'truncated_record')
          return this.finish(ParseStatus.Stop, pos)
        }
        this.need = blockLen
        return this.finish(ParseStatus.NeedMore, pos)
      }
      if (view.getUint32(pos + blockLen - 4, le) !== blockLen) {
        countFormatError(stats, 'block_length_mismatch')
        return this.finish(ParseStatus.Stop, pos)
      }

      switch (type) {
        case PCAPNG_SHB:
          if (view.getUint16(pos + 12, le) !== 1) {
            countFormatError(stats, 'unsupported_version')
            return this.finish(ParseStatus.Stop, pos)
          }
          // A new section starts with no interfaces (ids restart at 0).
          this.interfaces.length = 0
          this.sectionSeen = true
          break
        case PCAPNG_BLOCK.InterfaceDescription:
          this.readInterface(view, pos, blockLen)
          break
        case PCAPNG_BLOCK.EnhancedPacket:
        case PCAPNG_BLOCK.Packet: {
          if (blockLen < MIN_EPB_LEN) {
            countFormatError(stats, 'block_too_short')
            break
          }
          const id =
            type === PCAPNG_BLOCK.EnhancedPacket ? view.getUint32(pos + 8, le) : view.getUint16(pos + 8, le)
          const iface = this.interfaces[id]
          if (iface === undefined) {
            countFormatError(stats, 'unknown_interface')
            break
          }
          const caplen = view.getUint32(pos + 20, le)
          if (caplen > blockLen - MIN_EPB_LEN) {
            countFormatError(stats, 'caplen_exceeds_block')
            break
          }
          let tsUs = timestampUs(iface, view.getUint32(pos + 12, le), view.getUint32(pos + 16, le))
          // Outside 1970..2255 (whole µs exact in float64) no export field can carry it: the packet is
          // kept with the previous packet's time, as a Simple Packet Block would be.
          if (tsUs >= 0 && tsUs <= Number.MAX_SAFE_INTEGER) this.lastTsUs = tsUs
          else {
            countFormatError(stats, 'invalid_timestamp')
            tsUs = this.lastTsUs
          }
          const origlen = view.getUint32(pos + 24, le)
          batch.push(
            pos + 28,
            caplen,
            origlen > MAX_INT32 ? MAX_INT32 : origlen,
            tsUs,
            iface.linkType,
            id + PCAPNG_IFINDEX_BASE,
          )
          stats.packets++
          stats.bytes += caplen
          break
        }
        case PCAPNG_BLOCK.SimplePacket: {
          if (blockLen < MIN_SPB_LEN) {
            countFormatError(stats, 'block_too_short')
            break
          }
          const iface = this.interfaces[0]
          if (iface === undefined) {
            countFormatError(stats, 'unknown_interface')
            break
          }
          // Captured length is implied: min(original length, interface snaplen, room in the block).
          const origlen = view.getUint32(pos + 8, le)
          let caplen = blockLen - MIN_SPB_LEN
          if (origlen < caplen) caplen = origlen
          if (iface.snaplen !== 0 && iface.snaplen < caplen) caplen = iface.snaplen
          batch.push(
            pos + 12,
            caplen,
            origlen > MAX_INT32 ? MAX_INT32 : origlen,
            this.lastTsUs,
            iface.linkType,
            PCAPNG_IFINDEX_BASE,
          )
          stats.packets++
          stats.bytes += caplen
          break
        }
        default:
          // NRB, ISB, DSB, custom, systemd journal and unknown blocks: skipped by length.
          break
      }
      pos += blockLen
    }
  }

  /** Reads an Interface Description Block that is wholly inside the buffer. */
  private readInterface(view: DataView, pos: number, blockLen: number): void {
    const stats = this.stats
    if (blockLen < MIN_IDB_LEN) {
      countFormatError(stats, 'block_too_short')
      return
    }
    if (this.interfaces.length >= MAX_INTERFACES) {
      countFormatError(stats, 'too_many_interfaces')
      return
    }
    const le = this.littleEndian
    const iface = new Interface()
    iface.linkType = normalizeLinkType(view.getUint16(pos + BLOCK_HEADER_LEN, le))
    iface.snaplen = view.getUint32(pos + 12, le)
    let opt = pos + 16
    const optEnd = pos + blockLen - 4
    while (optEnd - opt >= 4) {
      const code = view.getUint16(opt, le)
      const len = view.getUint16(opt + 2, le)
      if (code === OPT_END) break
      const padded = (len + 3) & ~3
      if (padded > optEnd - opt - 4) {
        countFormatError(stats, 'bad_option')
        break
      }
      if (code === OPT_IF_TSRESOL && len === 1) setResolution(iface, view.getUint8(opt + 4))
      else if (code === OPT_IF_TSOFFSET && len === 8) {
        // Signed 64-bit seconds; split so both halves keep the section's byte order.
        const hi = view.getInt32(opt + 4 + (le ? 4 : 0), le)
        const lo = view.getUint32(opt + 4 + (le ? 0 : 4), le)
        iface.tsOffsetUs = (hi * TWO_32 + lo) * 1_000_000
      }
      opt += 4 + padded
    }
    this.interfaces.push(iface)
  }

  private finish(status: ParseStatus, pos: number): number {
    this.status = status
    return pos
  }
}

/** Applies an if_tsresol value: MSB clear means 10^-n seconds, MSB set means 2^-n seconds. */
function setResolution(iface: Interface, value: number): void {
  const n = value & 0x7f
  if ((value & 0x80) !== 0) {
    iface.tsMode = TsMode.Binary
    iface.tsParam = n
  } else if (n >= 6) {
    iface.tsMode = TsMode.Divide
    iface.tsParam = 10 ** (n - 6)
  } else {
    iface.tsMode = TsMode.Multiply
    iface.tsParam = 10 ** (6 - n)
  }
}

/**
 * Converts a 64-bit timestamp (hi:lo, in the interface's units) to whole microseconds since the epoch.
 * The 64-bit value can exceed 2^53 (nanoseconds since 1970 do), so it is divided in two halves: the
 * common resolutions (µs, ns, ps) come out exact.
 */
function timestampUs(iface: Interface, hi: number, lo: number): number {
  const p = iface.tsParam
  let us: number
  switch (iface.tsMode) {
    case TsMode.Divide:
      if (p === 1) us = hi * TWO_32 + lo
      else {
        // (hi * 2^32 + lo) / p = qh * 2^32 + (rh * 2^32 + lo) / p, with hi = qh * p + rh.
        const qh = Math.floor(hi / p)
        const rh = hi - qh * p
        us = qh * TWO_32 + Math.floor((rh * TWO_32 + lo) / p)
      }
      break
    case TsMode.Multiply:
      us = (hi * TWO_32 + lo) * p
      break
    case TsMode.Binary: {
      // Whole seconds and the fraction in units of 2^-p s, then the fraction in µs.
      let sec: number
      let frac: number
      if (p <= 32) {
        const unitsPerLo = 2 ** p
        const loSec = Math.floor(lo / unitsPerLo)
        sec = hi * 2 ** (32 - p) + loSec
        frac = lo - loSec * unitsPerLo
      } else {
        const hiDiv = 2 ** (p - 32)
        sec = Math.floor(hi / hiDiv)
        frac = (hi - sec * hiDiv) * TWO_32 + lo
      }
      us = sec * 1_000_000 + Math.floor((frac * 1_000_000) / 2 ** p)
      break
    }
  }
  return us + iface.tsOffsetUs
}

/** True when the first 4 bytes (any byte order) are a pcapng Section Header Block type. */
export function isPcapngMagic(be32: number): boolean {
  return be32 === PCAPNG_SHB
}

/** Exposed for tests: the microsecond conversion of one timestamp under an if_tsresol value. */
export function pcapngTimestampUs(tsresol: number, hi: number, lo: number, tsOffsetSec = 0): number {
  const iface = new Interface()
  setResolution(iface, tsresol)
  iface.tsOffsetUs = tsOffsetSec * 1_000_000
  return timestampUs(iface, hi, lo)
}
