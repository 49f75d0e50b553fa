/**
 * `flowtel store ddl`: prints the DDL of a store's schema (schema/columns.ts) without running it.
 *
 * - `--store duckdb:PATH`: what a new DuckDB file gets (lazy layout): the stored table with the core columns
 *   and the `flows` view over it (the other columns are added to the table on their first value).
 * - `--store clickhouse:URL`: the single-server ClickHouse table, for the server's generation (read with
 *   `SELECT version()`; `--generation legacy|modern` prints it without asking a server), with the
 *   data-skipping indexes when the server takes them (with `--generation`: modern only).
 * - `--cluster NAME` (ClickHouse): the cluster layout of docs/store.md: database, ReplicatedMergeTree local
 *   table and Distributed table, each ON CLUSTER NAME, for an operator to run once.
 */
import { Command, Option } from 'commander'
import { COLUMNS } from '../../schema/columns.js'
import { CORE_COLUMNS, duckdbCreateStoredTable, duckdbFlowsView } from '../../schema/ddl.js'
import { ClickHouseStore } from '../../store/clickhouse.js'
import {
  DEFAULT_SHARDING_KEY,
  clusterDdl,
  createDatabase,
  createFlowsTable,
  createMigrationsTable,
} from '../../store/clickhouse-ddl.js'
import { supportsSkipIndexes, type ClickHouseGeneration } from '../../store/clickhouse-version.js'
import { parseStore } from '../../store/open.js'
import { intOption } from '../options.js'

interface DdlFlags {
  store: string
  cluster?: string
  generation?: ClickHouseGeneration
  ttlDays?: number
  shardingKey?: string
}

export function storeCommand(): Command {
  const ddl = new Command('ddl')
    .description(
      'print the DDL for a store (ClickHouse: single server, or the cluster layout with --cluster)',
    )
    .option('--store <url>', 'duckdb:PATH or clickhouse:http://HOST:PORT/DATABASE', 'duckdb:')
    .option('--cluster <name>', 'ClickHouse: the sharded, replicated layout ON CLUSTER name')
    .addOption(
      new Option(
        '--generation <g>',
        'ClickHouse: legacy (18.16 forms) or modern; default: ask the server',
      ).choices(['legacy', 'modern']),
    )
    .option(
      '--ttl-days <n>',
      'ClickHouse (modern): table TTL on time_received',
      intOption('--ttl-days', 1, 36_500),
    )
    .option(
      '--sharding-key <expr>',
      `ClickHouse --cluster: Distributed sharding key (${DEFAULT_SHARDING_KEY})`,
    )
    .action(async (flags: DdlFlags) => {
      const spec = parseStore(flags.store)
      if (spec.kind === 'duckdb') {
        if (flags.cluster !== undefined)
          throw new Error('flowtel store ddl: --cluster is for ClickHouse stores')
        const core = COLUMNS.filter((c) => CORE_COLUMNS.has(c.name)).map((c) => c.name)
        process.stdout.write(`${duckdbCreateStoredTable()};\n${duckdbFlowsView(core)};\n`)
        return
      }
      let generation = flags.generation
      // Data-skipping indexes where the server takes them; with --generation alone, with modern only.
      let skipIndexes = generation === 'modern'
      if (generation === undefined) {
        const s = await ClickHouseStore.open(spec.target)
        generation = s.serverGeneration
        skipIndexes = supportsSkipIndexes(s.version)
        await s.close()
      }
      const database = spec.target.database
      const ttl = flags.ttlDays !== undefined ? { ttlSeconds: flags.ttlDays * 86_400 } : {}
      const statements =
        flags.cluster !== undefined
          ? clusterDdl({
              cluster: flags.cluster,
              database,
              generation,
              skipIndexes,
              ...ttl,
              ...(flags.shardingKey !== undefined ? { shardingKey: flags.shardingKey } : {}),
            })
          : [
              createDatabase(database),
              createFlowsTable({ generation, database, skipIndexes, ...ttl }),
              createMigrationsTable(database),
            ]
      process.stdout.write(statements.map((s) => s + ';\n').join('\n'))
    })
  return new Command('store').description('flow store administration').addCommand(ddl)
}
