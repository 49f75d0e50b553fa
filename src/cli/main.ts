/** The `flowtel` command line: one subcommand per file in ./commands. */
import { Command } from 'commander'

/**
 * Each command's module, loaded on demand: `flowtel probe` does not load the collector, store and query
 * code (DuckDB, ClickHouse, ...), which cost about 0.35 CPU-s of start-up per run. `flowtel --help` and
 * anything that is not a command name load them all.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  probe: async () => (await import('./commands/probe.js')).probeCommand(),
  demo: async () => (await import('./commands/demo.js')).demoCommand(),
  collect: async () => (await import('./commands/collect.js')).collectCommand(),
  query: async () => (await import('./commands/query.js')).queryCommand(),
  settings: async () => (await import('./commands/settings.js')).settingsCommand(),
  interfaces: async () => (await import('./commands/interfaces.js')).interfacesCommand(),
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('flowtel')
    .description('Flowtel: flow meter, IPFIX exporter and collector')
    .version('0.1.0')
    .showHelpAfterError()
  const name = argv[2]
  const wanted = name !== undefined && Object.hasOwn(COMMANDS, name) ? [name] : Object.keys(COMMANDS)
  for (const n of wanted) program.addCommand(await COMMANDS[n]!())
  await program.parseAsync(argv)
}
