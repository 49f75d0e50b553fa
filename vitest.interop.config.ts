// Interop suites: our export decoded by ipfixDump, tshark and nfdump, which .ci/run installs.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
})
