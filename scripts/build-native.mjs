// Builds the live capture addon (native/pcap) with node-gyp; the package's `install` script, so `npm ci`,
// `npm install` and `npm rebuild` all run it.
//
// A machine without libpcap-dev or a C++ compiler still installs: the script prints one warning and exits 0,
// and live capture then fails at run time with a message saying how to get the addon. The build is skipped
// when the addon is newer than its sources. FLOWTEL_SKIP_NATIVE=1 skips it; FLOWTEL_NATIVE_VERBOSE=1 shows
// node-gyp's output (otherwise it goes to native/pcap/build-native.log).
import { spawnSync } from 'node:child_process'
import process from 'node:process'
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const addonDir = path.join(repo, 'native/pcap')
const output = path.join(addonDir, 'build/Release/flowtel_pcap.node')
const logFile = path.join(addonDir, 'build-native.log')

function warn(why) {
  process.stderr.write(
    `flowtel: WARNING: native pcap addon not built (${why}); live capture is unavailable until you ` +
      `install libpcap-dev and a C++ compiler and run \`npm rebuild\` (or \`node scripts/build-native.mjs\`)\n`,
  )
  process.exit(0)
}

/** node-gyp: the one npm hands to scripts, else the one inside npm's install, else one on PATH. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(
      path.dirname(process.execPath),
      '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    ),
    path.join(repo, 'node_modules/node-gyp/bin/node-gyp.js'),
  ]
  for (const c of candidates) if (c && existsSync(c)) return [process.execPath, c]
  const onPath = spawnSync('node-gyp', ['--version'], { stdio: 'ignore' })
  return onPath.status === 0 ? ['node-gyp'] : null
}

function newestSource() {
  let newest = statSync(path.join(addonDir, 'binding.gyp')).mtimeMs
  for (const f of readdirSync(path.join(addonDir, 'src')))
    newest = Math.max(newest, statSync(path.join(addonDir, 'src', f)).mtimeMs)
  return newest
}

if (process.env.FLOWTEL_SKIP_NATIVE === '1') warn('FLOWTEL_SKIP_NATIVE=1')
if (process.platform !== 'linux') warn(`live capture is supported on Linux only, not ${process.platform}`)
if (existsSync(output) && statSync(output).mtimeMs >= newestSource()) process.exit(0)
if (!['/usr/include/pcap/pcap.h', '/usr/local/include/pcap/pcap.h'].some((f) => existsSync(f)))
  warn('libpcap headers not found: install libpcap-dev')

const gyp = findNodeGyp()
if (gyp === null) warn('node-gyp not found')
const args = [...gyp.slice(1), 'rebuild', `--directory=${addonDir}`]
// Build against the headers installed with node when present, so no download is needed.
const nodedir = path.resolve(path.dirname(process.execPath), '..')
if (existsSync(path.join(nodedir, 'include/node/common.gypi'))) args.push(`--nodedir=${nodedir}`)
const verbose = process.env.FLOWTEL_NATIVE_VERBOSE === '1'
const run = spawnSync(gyp[0], args, { cwd: addonDir, encoding: 'utf8', stdio: verbose ? 'inherit' : 'pipe' })
if (!verbose) writeFileSync(logFile, `${run.stdout ?? ''}${run.stderr ?? ''}`)
if (run.status !== 0 || !existsSync(output)) {
  const reason = run.error ? run.error.message : `node-gyp exited with ${run.status}`
  warn(verbose ? reason : `${reason}, see ${path.relative(process.cwd(), logFile)}`)
}
process.stderr.write(`flowtel: built ${path.relative(repo, output)}\n`)
