// Runs the flowtel CLI from the TypeScript sources (`node --import tsx test/helpers/run-cli.ts probe ...`),
// as bin/flowtel.js runs the compiled one: for tests that need a real process exit.
import { main } from '../../src/cli/main.js'

main(process.argv).catch((err: unknown) => {
  process.stderr.write(`flowtel: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
