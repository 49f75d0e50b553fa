/**
 * Builds pcap (draft-ietf-opsawg-pcap) and pcapng (draft-ietf-opsawg-pcapng) files in memory from
 * packet byte arrays, for crafted-packet and reader tests.
 *
 * High level: `buildPcap(packets, opts)` and `buildPcapng(sections)`. Low level, for malformed files:
 * `pcapHeader`, `pcapRecord`, `pcapngBlock`, `pcapngShb`, `pcapngIdb`, `pcapngEpb`, `pcapngSpb`,
 * `pcapngOpb`, joined with `concatBytes`. `readAllPackets(source)` reads a CaptureSource back into
 * plain objects (copying the bytes); `readCaptureBytes(bytes)` does it for bytes via a temporary file.
 * Not for the hot path: this allocates freely.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CaptureSource, CaptureStats } from '../../src/capture/batch.js'
import { openCaptureFiles, type OpenCaptureOptions } from '../../src/capture/file-source.js'

export interface BuilderPacket {
  /** Captured bytes, starting at the link-layer header. */
  data: Uint8Array
  /** Timestamp in whole microseconds since the UNIX epoch. */
  tsUs: number
  /** Length on the wire; defaults to data.length (larger means snaplen-truncated). */
  origLen?: number
}

/** Concatenates byte arrays into one new array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

function pad4(n: number): number {
  return (n + 3) & ~3
}

// ---------------------------------------------------------------------------------------------------
// pcap

export interface PcapOptions {
  /** LINKTYPE_* value; default 1 (Ethernet). */
  linkType?: number
  /** Nanosecond magic (0xA1B23C4D) instead of microsecond (0xA1B2C3D4). */
  nanosecond?: boolean
  /** Write big-endian (the magic reads A1 B2 ...); default little-endian. */
  bigEndian?: boolean
  /** Snapshot length in the file header; default 262144. */
  snaplen?: number
  /** Major version in the file header; default 2 (set to something else to test rejection). */
  versionMajor?: number
  /** Minor version; default 4 (2.0-2.3 files have caplen and origlen swapped, which the reader undoes). */
  versionMinor?: number
}

/** The 24-byte pcap file header. */
export function pcapHeader(opts: PcapOptions = {}): Uint8Array {
  const out = new Uint8Array(24)
  const v = new DataView(out.buffer)
  const le = opts.bigEndian !== true
  v.setUint32(0, opts.nanosecond === true ? 0xa1b23c4d : 0xa1b2c3d4, le)
  v.setUint16(4, opts.versionMajor ?? 2, le)
  v.setUint16(6, opts.versionMinor ?? 4, le)
  v.setUint32(16, opts.snaplen ?? 262144, le)
  v.setUint32(20, opts.linkType ?? 1, le)
  return out
}

export interface PcapRecordOverrides {
  /** Captured length written in the record header (default data.length); lets a test lie about it. */
  caplen?: number
  /** Raw fraction field (µs or ns), e.g. an invalid 1000000 µs. */
  frac?: number
}

/** One pcap record: 16-byte header plus data. */
export function pcapRecord(
  p: BuilderPacket,
  opts: Pick<PcapOptions, 'nanosecond' | 'bigEndian'> = {},
  overrides: PcapRecordOverrides = {},
): Uint8Array {
  const out = new Uint8Array(16 + p.data.byteLength)
  const v = new DataView(out.buffer)
  const le = opts.bigEndian !== true
  const sec = Math.floor(p.tsUs / 1e6)
  const us = p.tsUs - sec * 1e6
  v.setUint32(0, sec, le)
  v.setUint32(4, overrides.frac ?? (opts.nanosecond === true ? us * 1000 : us), le)
  v.setUint32(8, overrides.caplen ?? p.data.byteLength, le)
  v.setUint32(12, p.origLen ?? p.data.byteLength, le)
  out.set(p.data, 16)
  return out
}

/** A whole pcap file. */
export function buildPcap(packets: readonly BuilderPacket[], opts: PcapOptions = {}): Uint8Array {
  return concatBytes(pcapHeader(opts), ...packets.map((p) => pcapRecord(p, opts)))
}

// ---------------------------------------------------------------------------------------------------
// pcapng

export interface PcapngInterface {
  /** LINKTYPE_* value; default 1 (Ethernet). */
  linkType?: number
  /** Snapshot length; default 0 (no limit). */
  snaplen?: number
  /** Raw if_tsresol byte: 6 = µs (default, option omitted), 9 = ns, 0x80 | n = 2^-n s. */
  tsresol?: number
  /** if_tsoffset in seconds, added to every timestamp of this interface. */
  tsoffset?: number
  /** if_name option. */
  name?: string
}

export interface PcapngPacket extends BuilderPacket {
  /** Interface id (index of the section's IDB); default 0. Ignored for SPB. */
  interfaceId?: number
  /** Block kind: Enhanced (default), Simple or the obsolete Packet Block. */
  block?: 'epb' | 'spb' | 'opb'
}

export interface PcapngSection {
  /** Write this section big-endian; default little-endian. */
  bigEndian?: boolean
  interfaces?: readonly PcapngInterface[]
  packets?: readonly PcapngPacket[]
}

export interface EndianOption {
  bigEndian?: boolean
}

/**
 * One block: type, total length, body (zero-padded to 4 bytes), total length.
 * `totalLength` overrides both length fields (for malformed-block tests).
 */
export function pcapngBlock(
  type: number,
  body: Uint8Array,
  opts: EndianOption & { totalLength?: number; trailingLength?: number } = {},
): Uint8Array {
  const len = 12 + pad4(body.byteLength)
  const out = new Uint8Array(len)
  const v = new DataView(out.buffer)
  const le = opts.bigEndian !== true
  v.setUint32(0, type, le)
  v.setUint32(4, opts.totalLength ?? len, le)
  out.set(body, 8)
  v.setUint32(len - 4, opts.trailingLength ?? opts.totalLength ?? len, le)
  return out
}

/** Section Header Block (version 1.0, section length -1, no options). */
export function pcapngShb(opts: EndianOption & { versionMajor?: number } = {}): Uint8Array {
  const body = new Uint8Array(16)
  const v = new DataView(body.buffer)
  const le = opts.bigEndian !== true
  v.setUint32(0, 0x1a2b3c4d, le)
  v.setUint16(4, opts.versionMajor ?? 1, le)
  v.setUint16(6, 0, le)
  v.setInt32(8, -1, le)
  v.setInt32(12, -1, le)
  return pcapngBlock(0x0a0d0d0a, body, opts)
}

/** Encodes options as code/length/value (padded), ending with opt_endofopt. */
export function pcapngOptions(opts: readonly { code: number; value: Uint8Array }[], le: boolean): Uint8Array {
  if (opts.length === 0) return new Uint8Array(0)
  const parts: Uint8Array[] = []
  for (const o of opts) {
    const out = new Uint8Array(4 + pad4(o.value.byteLength))
    const v = new DataView(out.buffer)
    v.setUint16(0, o.code, le)
    v.setUint16(2, o.value.byteLength, le)
    out.set(o.value, 4)
    parts.push(out)
  }
  parts.push(new Uint8Array(4)) // opt_endofopt
  return concatBytes(...parts)
}

/** Interface Description Block with if_name, if_tsresol and if_tsoffset options when given. */
export function pcapngIdb(iface: PcapngInterface = {}, opts: EndianOption = {}): Uint8Array {
  const le = opts.bigEndian !== true
  const options: { code: number; value: Uint8Array }[] = []
  if (iface.name !== undefined) options.push({ code: 2, value: new TextEncoder().encode(iface.name) })
  if (iface.tsresol !== undefined) options.push({ code: 9, value: Uint8Array.of(iface.tsresol) })
  if (iface.tsoffset !== undefined) {
    const value = new Uint8Array(8)
    new DataView(value.buffer).setBigInt64(0, BigInt(iface.tsoffset), le)
    options.push({ code: 14, value })
  }
  const head = new Uint8Array(8)
  const v = new DataView(head.buffer)
  v.setUint16(0, iface.linkType ?? 1, le)
  v.setUint32(4, iface.snaplen ?? 0, le)
  return pcapngBlock(1, concatBytes(head, pcapngOptions(options, le)), opts)
}

/** A timestamp in whole µs as a count of the interface's units (if_tsresol), minus its if_tsoffset. */
export function pcapngTimestampUnits(tsUs: number, iface: PcapngInterface = {}): bigint {
  const rel = BigInt(tsUs) - BigInt(iface.tsoffset ?? 0) * 1_000_000n
  const r = iface.tsresol ?? 6
  const n = BigInt(r & 0x7f)
  let units: bigint
  if ((r & 0x80) !== 0) units = (rel << n) / 1_000_000n
  else if (n >= 6n) units = rel * 10n ** (n - 6n)
  else units = rel / 10n ** (6n - n)
  return BigInt.asUintN(64, units)
}

/** Fixed fields shared by EPB and the obsolete PB, after the interface id field(s). */
function packetFields(
  p: BuilderPacket,
  iface: PcapngInterface,
  le: boolean,
  caplen: number | undefined,
): Uint8Array {
  const out = new Uint8Array(16)
  const v = new DataView(out.buffer)
  const units = pcapngTimestampUnits(p.tsUs, iface)
  v.setUint32(0, Number(units >> 32n), le)
  v.setUint32(4, Number(units & 0xffffffffn), le)
  v.setUint32(8, caplen ?? p.data.byteLength, le)
  v.setUint32(12, p.origLen ?? p.data.byteLength, le)
  return out
}

export interface PacketBlockOptions extends EndianOption {
  /** The packet's interface, for its timestamp resolution and offset. */
  iface?: PcapngInterface
  /** Captured length field override (for malformed tests). */
  caplen?: number
}

/** Enhanced Packet Block. */
export function pcapngEpb(p: PcapngPacket, opts: PacketBlockOptions = {}): Uint8Array {
  const le = opts.bigEndian !== true
  const id = new Uint8Array(4)
  new DataView(id.buffer).setUint32(0, p.interfaceId ?? 0, le)
  return pcapngBlock(6, concatBytes(id, packetFields(p, opts.iface ?? {}, le, opts.caplen), p.data), opts)
}

/** Obsolete Packet Block (16-bit interface id, 16-bit drops count). */
export function pcapngOpb(p: PcapngPacket, opts: PacketBlockOptions = {}): Uint8Array {
  const le = opts.bigEndian !== true
  const id = new Uint8Array(4)
  new DataView(id.buffer).setUint16(0, p.interfaceId ?? 0, le)
  return pcapngBlock(2, concatBytes(id, packetFields(p, opts.iface ?? {}, le, opts.caplen), p.data), opts)
}

/** Simple Packet Block (interface 0, no timestamp; origLen defaults to data.length). */
export function pcapngSpb(p: Omit<BuilderPacket, 'tsUs'>, opts: EndianOption = {}): Uint8Array {
  const le = opts.bigEndian !== true
  const head = new Uint8Array(4)
  new DataView(head.buffer).setUint32(0, p.origLen ?? p.data.byteLength, le)
  return pcapngBlock(3, concatBytes(head, p.data), opts)
}

/** A whole pcapng file: per section an SHB, its IDBs, then its packets in order. */
export function buildPcapng(sections: PcapngSection | readonly PcapngSection[]): Uint8Array {
  const list: readonly PcapngSection[] = Array.isArray(sections) ? sections : [sections as PcapngSection]
  const parts: Uint8Array[] = []
  for (const s of list) {
    const endian = { bigEndian: s.bigEndian === true }
    const interfaces = s.interfaces ?? [{}]
    parts.push(pcapngShb(endian))
    for (const iface of interfaces) parts.push(pcapngIdb(iface, endian))
    for (const p of s.packets ?? []) {
      const iface = interfaces[p.interfaceId ?? 0] ?? {}
      if (p.block === 'spb') parts.push(pcapngSpb(p, endian))
      else if (p.block === 'opb') parts.push(pcapngOpb(p, { ...endian, iface }))
      else parts.push(pcapngEpb(p, { ...endian, iface }))
    }
  }
  return concatBytes(...parts)
}

// ---------------------------------------------------------------------------------------------------
// Reading back

export interface ReadPacket {
  data: Uint8Array
  caplen: number
  origlen: number
  tsUs: number
  linkType: number
  ifIndex: number
}

/** Drains a CaptureSource into plain objects (bytes copied), and closes it. */
export async function readAllPackets(source: CaptureSource): Promise<ReadPacket[]> {
  const out: ReadPacket[] = []
  try {
    for await (const b of source.batches()) {
      for (let i = 0; i < b.count; i++) {
        const offset = b.offset[i] ?? 0
        const caplen = b.caplen[i] ?? 0
        out.push({
          data: b.buf.slice(offset, offset + caplen),
          caplen,
          origlen: b.origlen[i] ?? 0,
          tsUs: b.tsUs[i] ?? 0,
          linkType: b.linkType[i] ?? 0,
          ifIndex: b.ifIndex[i] ?? 0,
        })
      }
    }
  } finally {
    await source.close()
  }
  return out
}

/** Writes `bytes` to a temporary file, reads it with openCaptureFiles, and removes the file. */
export async function readCaptureBytes(
  bytes: Uint8Array,
  opts: OpenCaptureOptions = {},
): Promise<{ packets: ReadPacket[]; stats: CaptureStats }> {
  const dir = await mkdtemp(join(tmpdir(), 'flowtel-capture-'))
  try {
    const path = join(dir, 'capture')
    await writeFile(path, bytes)
    const source = await openCaptureFiles([path], opts)
    const packets = await readAllPackets(source)
    return { packets, stats: source.stats }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Format errors as a plain object, for `toEqual` ({} when there were none). */
export function formatErrorsOf(stats: CaptureStats): Record<string, number> {
  return Object.fromEntries(stats.formatErrors)
}
