/** The `flowtel` command line: one subcommand per file in ./commands. */
import { Command } from 'commander'
import { probeCommand } from './commands/probe.js'
import { demoCommand } from './commands/demo.js'
import { collectCommand } from './commands/collect.js'
import { queryCommand } from './commands/query.js'
import { settingsCommand } from './commands/settings.js'
import { interfacesCommand } from './commands/interfaces.js'

export async function main(argv: string[]): Promise<void> {
  const program = new Command('flowtel')
    .description('Flowtel: flow meter, IPFIX exporter and collector')
    .version('0.1.0')
    .showHelpAfterError()
  program.addCommand(probeCommand())
  program.addCommand(demoCommand())
  program.addCommand(collectCommand())
  program.addCommand(queryCommand())
  program.addCommand(settingsCommand())
  program.addCommand(interfacesCommand())
  await program.parseAsync(argv)
}
