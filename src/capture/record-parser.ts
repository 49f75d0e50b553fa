/**
 * The contract between the chunked file driver (file-source.ts) and the format parsers
 * (pcap-reader.ts for draft-ietf-opsawg-pcap, pcapng-reader.ts for draft-ietf-opsawg-pcapng).
 *
 * The driver owns one reusable chunk buffer; a parser turns the whole records that lie in it into
 * packets of a PacketBatch (byte ranges of that buffer, no copy) and says why it stopped. It never
 * throws for bad content: problems are counted in `CaptureStats.formatErrors` by snake_case name.
 */
import type { CaptureStats, PacketBatch } from './batch.js'

/** Why `RecordParser.parse` returned. */
export const enum ParseStatus {
  /** The batch is full: hand it out, then call parse again from the returned position. */
  BatchFull = 0,
  /** The next record is not wholly in the buffer: `need` bytes from the returned position are required. */
  NeedMore = 1,
  /** The file ended cleanly after the last record. */
  Done = 2,
  /** A format error ended this file (already counted); the packets before it are in the batch. */
  Stop = 3,
}

export interface RecordParser {
  /**
   * Parses records from `view[pos, end)` into `batch`.
   * `fileLeft` is the number of file bytes not yet in the buffer, so the rest of the file is
   * `end - pos + fileLeft` bytes: a record longer than that is truncated, not merely split.
   * Returns the position after the last record consumed, and sets `status` (and `need`).
   */
  parse(batch: PacketBatch, view: DataView, pos: number, end: number, fileLeft: number): number
  /** Why the last `parse` call returned. */
  status: ParseStatus
  /** With NeedMore: bytes needed from the returned position (never more than the parser's record bound). */
  need: number
}

/** Largest record (pcap header + packet, or pcapng block) the readers accept by default: 64 MiB. */
export const DEFAULT_MAX_RECORD = 64 * 1024 * 1024

/**
 * Largest captured length accepted regardless of a smaller snaplen: libpcap's MAXIMUM_SNAPLEN and
 * Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD (262144), about 4 x 65535.
 */
export const MAX_CAPLEN_FLOOR = 262144

/** Counts one format error by name (rare path: a Map update is fine here). */
export function countFormatError(stats: CaptureStats, name: FormatErrorName): void {
  stats.formatErrors.set(name, (stats.formatErrors.get(name) ?? 0) + 1)
}

/** Every format-error name the file readers count (snake_case, also used as metric labels). */
export const FORMAT_ERROR_NAMES = [
  // Any format
  /** The file is empty (0 bytes). */
  'empty_file',
  /** The file is shorter than its file header (pcap: 24 bytes; shorter than a magic number). */
  'truncated_file_header',
  /** The last record/block is cut short by the end of the file (or claims more bytes than the file has left). */
  'truncated_record',
  /** A record/block larger than the reader's bound (64 MiB by default); the file is not read further. */
  'record_too_large',
  /** Unsupported major version in a pcap header or pcapng section header; the file is not read further. */
  'unsupported_version',
  /**
   * A pcap timestamp fraction >= 1 s (the packet is kept with the whole second only), or a pcapng timestamp
   * before 1970 or past 2^53-1 µs (2255) (the packet is kept with the previous packet's timestamp).
   */
  'invalid_timestamp',
  // pcap
  /** A pcap record whose caplen exceeds max(snaplen, 262144); the file stops. */
  'caplen_exceeds_bound',
  // pcapng
  /** A block length that is < 12, not a multiple of 4, or too small for the section header; the file stops. */
  'bad_block_length',
  /** Leading and trailing block lengths differ; the file stops. */
  'block_length_mismatch',
  /** The file does not start with a section header block; the file stops. */
  'missing_section_header',
  /** A section header whose byte-order magic is neither 0x1A2B3C4D nor its swap; the file stops. */
  'bad_byte_order_magic',
  /** A known block too short for its fixed fields; the block is skipped. */
  'block_too_short',
  /** A packet's captured length runs past the end of its block; the block is skipped. */
  'caplen_exceeds_block',
  /** A packet refers to an interface not described (yet) in its section; the block is skipped. */
  'unknown_interface',
  /** More interface descriptions in one section than the reader keeps (65536); the extra IDB is skipped. */
  'too_many_interfaces',
  /** An option list that runs past its block; the remaining options of that block are ignored. */
  'bad_option',
] as const

export type FormatErrorName = (typeof FORMAT_ERROR_NAMES)[number]
