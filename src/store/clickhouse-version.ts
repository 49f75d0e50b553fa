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
 *
 * Data-skipping indexes (clickhouse-ddl.ts SKIP_INDEXES) follow the server, not the table's generation: 18.16
 * has none, 19.x only behind an experimental setting, and from 20.1 on they are a standard feature
 * (ClickHouse pull request #7974), so a legacy table on a newer server gets them too.
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

/** The first release where data-skipping indexes are not experimental. */
export const SKIP_INDEXES_SINCE = { major: 20, minor: 1 } as const

const atLeast = (v: ClickHouseVersion, since: { major: number; minor: number }): boolean =>
  v.major > since.major || (v.major === since.major && v.minor >= since.minor)

/** Whether the server takes data-skipping indexes (INDEX … TYPE minmax, ALTER TABLE … ADD INDEX). */
export function supportsSkipIndexes(v: ClickHouseVersion): boolean {
  return atLeast(v, SKIP_INDEXES_SINCE)
}

export function generationFor(v: ClickHouseVersion): ClickHouseGeneration {
  return atLeast(v, MODERN_SINCE) ? 'modern' : 'legacy'
}

/** The generation of an existing flows table, from the type of its time_received column. */
export function tableGeneration(timeReceivedType: string): ClickHouseGeneration {
  return timeReceivedType.includes('DateTime64') ? 'modern' : 'legacy'
}
