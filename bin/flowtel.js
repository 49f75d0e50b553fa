#!/usr/bin/env node
// Entry point installed as `flowtel`: runs the compiled CLI.
import { main } from '../dist/cli/main.js'
main(process.argv).catch((err) => {
  process.stderr.write(`flowtel: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
