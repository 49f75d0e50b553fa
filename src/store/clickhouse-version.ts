/**
 * ClickHouse server version (`SELECT version()`) and the schema generation it gets.
 *
 * - `legacy`: the plain forms ClickHouse 18.16 (Debian's package) accepts, and every later server too: UInt64
 *   microsecond times, FixedString(16) address keys, UInt8 booleans, Nullable(String), no codecs, no TTL.
 * - `modern` (22.8 LTS and later, where every form below exists): DateTime64(6), IPv6, Bool,
 *   LowCardinality(Nullable(String)), column codecs and table TTL.
 *
 * A table keeps the generation it was created with (a server upgraded under it does not change its types),
 * so the store reads the generation of an existing table from its column types (tableGeneration).
 */

export type ClickHouseGeneration = 'legacy' | 'modern'

export interface ClickHouseVersion {
  readonly text: string
  readonly major: number
  readonly minor: number
}

/** The first release where every modern form is there (Bool came in 22.3; 22.8 is the LTS after it). */
export const MODERN_SINCE = { major: 22, minor: 8 } as const

/** `18.16.1`, `24.8.4.13` → numbers; throws on anything else. */
export function parseVersion(text: string): ClickHouseVersion {
  const m = /^\s*(\d+)\.(\d+)(?:\.\d+)*/.exec(text)
  if (m === null) throw new Error(`cannot read the ClickHouse version from ${JSON.stringify(text)}`)
  return { text: text.trim(), major: Number(m[1]), minor: Number(m[2]) }
}

export function generationFor(v: ClickHouseVersion): ClickHouseGeneration {
  const newer =
    v.major > MODERN_SINCE.major || (v.major === MODERN_SINCE.major && v.minor >= MODERN_SINCE.minor)
  return newer ? 'modern' : 'legacy'
}

/** The generation of an existing flows table, from the type of its time_received column. */
export function tableGeneration(timeReceivedType: string): ClickHouseGeneration {
  return timeReceivedType.includes('DateTime64') ? 'modern' : 'legacy'
}
