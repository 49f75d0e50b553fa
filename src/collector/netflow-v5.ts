/**
 * NetFlow v5 export datagrams (Cisco's fixed format; standards §4): a 24-byte header (version, count 1..30,
 * SysUptime ms, unix_secs, unix_nsecs, flow_sequence, engine_type, engine_id, sampling: 2-bit mode + 14-bit
 * interval) and `count` 48-byte records. A datagram whose length is not 24 + 48·count is malformed. Records
 * become IPFIX elements (RFC 7012 names); First/Last stay as flowStart/EndSysUpTime and are also given as
 * absolute flowStart/EndMilliseconds (unix time − (SysUptime − First) mod 2^32).
 */
import type { DecodedField, FieldValue } from '../ipfix/decoder.js'
import { ipv4Text } from '../ipfix/decoder.js'
import { lookupElement, type IeDataType } from '../ipfix/elements.js'

export const V5_HEADER = 24
export const V5_RECORD = 48
export const V5_MAX_COUNT = 30

export interface V5Header {
  readonly count: number
  readonly sysUptime: number
  readonly unixSecs: number
  readonly unixNsecs: number
  readonly sequence: number
  readonly engineType: number
  readonly engineId: number
  readonly samplingMode: number
  readonly samplingInterval: number
}

export type V5Result = { header: V5Header; records: DecodedField[][] } | { error: string }

function field(id: number, value: FieldValue, type?: IeDataType): DecodedField {
  const def = lookupElement(0, id)
  return { pen: 0, id, name: def?.name ?? `0.${id}`, type: type ?? def?.type ?? 'octetArray', value }
}

/** Absolute ms of a sysUpTime-relative time (handles the 2^32 ms uptime wrap; a time slightly after the
 * header's uptime is taken as such, not as 49.7 days earlier). */
export function uptimeToUnixMs(unixMs: number, sysUptime: number, t: number): bigint {
  let d = (sysUptime - t + 2 ** 32) % 2 ** 32
  if (d >= 2 ** 31) d -= 2 ** 32
  return BigInt(unixMs - d)
}

/** Decodes one datagram; never throws. */
export function decodeV5(bytes: Uint8Array): V5Result {
  if (bytes.byteLength < V5_HEADER) return { error: 'v5_short_header' }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (v.getUint16(0) !== 5) return { error: 'bad_version' }
  const count = v.getUint16(2)
  if (count < 1 || count > V5_MAX_COUNT) return { error: 'v5_bad_count' }
  if (bytes.byteLength !== V5_HEADER + V5_RECORD * count) return { error: 'v5_length_mismatch' }
  const sampling = v.getUint16(22)
  const header: V5Header = {
    count,
    sysUptime: v.getUint32(4),
    unixSecs: v.getUint32(8),
    unixNsecs: v.getUint32(12),
    sequence: v.getUint32(16),
    engineType: v.getUint8(20),
    engineId: v.getUint8(21),
    samplingMode: sampling >>> 14,
    samplingInterval: sampling & 0x3fff,
  }
  const unixMs = header.unixSecs * 1000 + Math.floor(header.unixNsecs / 1e6)
  const records: DecodedField[][] = []
  for (let i = 0; i < count; i++) {
    const p = V5_HEADER + i * V5_RECORD
    const first = v.getUint32(p + 24)
    const last = v.getUint32(p + 28)
    records.push([
      field(8, ipv4Text(v.getUint32(p))),
      field(12, ipv4Text(v.getUint32(p + 4))),
      field(15, ipv4Text(v.getUint32(p + 8))),
      field(10, v.getUint16(p + 12)),
      field(14, v.getUint16(p + 14)),
      field(2, BigInt(v.getUint32(p + 16))),
      field(1, BigInt(v.getUint32(p + 20))),
      field(22, first),
      field(21, last),
      field(152, uptimeToUnixMs(unixMs, header.sysUptime, first)),
      field(153, uptimeToUnixMs(unixMs, header.sysUptime, last)),
      field(7, v.getUint16(p + 32)),
      field(11, v.getUint16(p + 34)),
      field(6, v.getUint8(p + 37)),
      field(4, v.getUint8(p + 38)),
      field(5, v.getUint8(p + 39)),
      field(16, v.getUint16(p + 40)),
      field(17, v.getUint16(p + 42)),
      field(9, v.getUint8(p + 44)),
      field(13, v.getUint8(p + 45)),
      field(38, header.engineType),
      field(39, header.engineId),
      field(35, header.samplingMode),
      field(34, header.samplingInterval),
    ])
  }
  return { header, records }
}
