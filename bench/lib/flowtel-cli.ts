// The CLI from the sources (run with `node --import tsx`), so benchmarks measure the code as it is now and
// not the last build in dist/.
import { main } from '../../src/cli/main.js'

main(process.argv).catch((err: unknown) => {
  process.stderr.write(`flowtel: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
