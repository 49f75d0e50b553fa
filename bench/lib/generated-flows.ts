/**
 * The flows the store benchmark queries (bench/store.bench.ts): GEN_FLOWS rows generated inside each engine
 * with INSERT … SELECT (DuckDB range(), ClickHouse numbers()), the same values in both engines (only integer
 * arithmetic on the row number i, no engine hash): pseudo-random draws r1..r6 (multiplicative hashing of i),
 * then
 * - sources: half the flows from 1 000 busy hosts, half spread over 200 000 (10.0.0.0/8);
 * - destinations: 60 % to 500 popular servers, 40 % over 1 000 000 addresses;
 * - destination port 443 (40 %), 80 (15 %), 53 (15 %, UDP), 22 (5 %), else ephemeral; source port ephemeral;
 * - bytes 40..~9 000 per direction, packets 1..40; flows 30 ms apart (10 M flows: 3.5 days), stored
 *   60 s after they start; four exporters.
 */
import type { ClickHouseStore } from '../../src/store/clickhouse.js'
import type { DuckDbStore } from '../../src/store/duckdb.js'

interface EngineExprs {
  time: (msExpr: string) => string
  ipText: (n: string) => string
  ipKey: (n: string) => string
  str: (nExpr: string) => string
  cat: (...parts: string[]) => string
  baseMs: number
}

/** Column name → SQL expression over `i`; `ipText(n)` / `ipKey(n)` turn an IPv4 number into text and key. */
export function generatedColumns(e: EngineExprs): Array<[string, string]> {
  const r = (k: number): string =>
    `((i * ${[2654435761, 2246822519, 3266489917, 668265263, 374761393, 1103515245][k - 1]} + ${k * 7919}) % 4294967296)`
  const src = `(CASE WHEN ${r(1)} % 2 = 0 THEN 167772160 + ${r(2)} % 1000 ELSE 167772160 + 4096 + ${r(2)} % 200000 END)`
  const dst = `(CASE WHEN ${r(3)} % 10 < 6 THEN 3325256704 + ${r(4)} % 500 ELSE 536870912 + ${r(4)} % 1000000 END)`
  const dport = `(CASE WHEN ${r(5)} % 100 < 40 THEN 443 WHEN ${r(5)} % 100 < 55 THEN 80 WHEN ${r(5)} % 100 < 70 THEN 53 WHEN ${r(5)} % 100 < 75 THEN 22 ELSE 1024 + ${r(6)} % 60000 END)`
  const bytes = `(40 + ${r(6)} % 1500 * (1 + ${r(5)} % 6))`
  const revBytes = `(${r(4)} % 9000)`
  const packets = `(1 + ${r(6)} % 40)`
  const revPackets = `(${r(4)} % 30)`
  const start = `(${e.baseMs} + i * 30)`
  return [
    ['time_received', e.time(`(${start} + 60000)`)],
    ['time_start', e.time(start)],
    ['time_end', e.time(`(${start} + ${r(6)} % 120000)`)],
    ['exporter', e.cat("'192.0.2.'", e.str('(i % 4)'))],
    ['observation_domain', '0'],
    ['template_id', '256'],
    ['flow_version', "'ipfix'"],
    ['ip_version', '4'],
    ['src_addr', e.ipText(src)],
    ['dst_addr', e.ipText(dst)],
    ['src_ip_key', e.ipKey(src)],
    ['dst_ip_key', e.ipKey(dst)],
    ['src_port', `(1024 + ${r(6)} % 64000)`],
    ['dst_port', dport],
    ['proto', `(CASE WHEN ${dport} = 53 THEN 17 ELSE 6 END)`],
    ['bytes', bytes],
    ['packets', packets],
    ['rev_bytes', revBytes],
    ['rev_packets', revPackets],
    ['total_bytes', `(${bytes} + ${revBytes})`],
    ['total_packets', `(${packets} + ${revPackets})`],
    ['tcp_flags', '27'],
    ['rev_tcp_flags', '26'],
    ['flow_end_reason', '3'],
    ['biflow_direction', '1'],
    ['vlan', '(i % 8)'],
    ['in_if', '1'],
  ]
}

/** Generates `flows` rows into a migrated DuckDB store, starting `baseMs` (ms since 1970). */
export async function generateDuckDb(g: DuckDbStore, flows: number, baseMs: number): Promise<void> {
  const cols = generatedColumns({
    time: (ms) => `make_timestamp((${ms})::BIGINT * 1000)`,
    ipText: (a) =>
      `concat((${a}) // 16777216, '.', (${a}) // 65536 % 256, '.', (${a}) // 256 % 256, '.', (${a}) % 256)`,
    ipKey: (a) => `(281470681743360 + ${a})::UHUGEINT`,
    str: (x) => `CAST(${x} AS VARCHAR)`,
    cat: (...p) => `(${p.join(' || ')})`,
    baseMs,
  })
  // Into the table holding the rows (flows is a view over it in a lazy-column file: store/duckdb.ts).
  const table = await g.storedTable(cols.map(([n]) => n))
  await g.sql(
    `INSERT INTO ${table} (${cols.map(([n]) => n).join(', ')}) SELECT ${cols.map(([, e]) => e).join(', ')} ` +
      `FROM (SELECT range::UBIGINT AS i FROM range(${Math.floor(flows)}))`,
  )
}

/** Generates `flows` rows into a migrated ClickHouse store, in INSERTs of a million rows. */
export async function generateClickHouse(g: ClickHouseStore, flows: number, baseMs: number): Promise<void> {
  const legacy = g.generation === 'legacy'
  const cols = generatedColumns({
    time: (ms) => (legacy ? `toUInt64((${ms}) * 1000)` : `fromUnixTimestamp64Micro(toInt64((${ms}) * 1000))`),
    ipText: (a) => `IPv4NumToString(toUInt32(${a}))`,
    ipKey: (a) => `IPv4ToIPv6(toUInt32(${a}))`,
    str: (x) => `toString(${x})`,
    cat: (...p) => `concat(${p.join(', ')})`,
    baseMs,
  })
  // Each INSERT is one part per day partition, merged in the background.
  for (let from = 0; from < flows; from += 1_000_000)
    await g.command(
      `INSERT INTO ${g.table} (${cols.map(([n]) => n).join(', ')}) SELECT ${cols.map(([, e]) => e).join(', ')} ` +
        `FROM (SELECT number + ${from} AS i FROM system.numbers LIMIT ${Math.min(1_000_000, flows - from)})`,
    )
}
