// `systemctl reload flowtel-probe` (issue 5): the unit's ExecReload sends SIGHUP to the probe, which re-reads
// its config file and applies it live, as a PUT of the settings would; a bad file is refused whole and the
// running settings stay. The probe runs live (`flowtel probe --config FILE`) on a veth in a network namespace
// made and removed here; the check reads the settings and status through the REST API inside the namespace.
// The unit-file check runs everywhere; the live part needs root and the capture addon (skipped otherwise).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pcapAddonAvailable } from '../../src/capture/pcap-addon.js'
import { NetnsPair, netnsSkipReason, REPO, run } from '../helpers/netns.js'

const BIN = path.join(REPO, 'bin/flowtel.js')
const skip =
  netnsSkipReason() ?? (pcapAddonAvailable() ? null : 'the libpcap addon is not built (libpcap-dev)')

describe('deploy/flowtel-probe.service', () => {
  it('reloads by SIGHUP to the main process', () => {
    const unit = readFileSync(path.join(REPO, 'deploy/flowtel-probe.service'), 'utf8')
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m)
    expect(unit).toMatch(/^ExecStart=\S+ probe --config \S+$/m)
  })
})

describe.skipIf(skip !== null)(`SIGHUP reload of the config file${skip !== null ? ` (${skip})` : ''}`, () => {
  const net = new NetnsPair()
  const tmp = mkdtempSync(path.join(tmpdir(), 'flowtel-sighup-'))
  const config = path.join(tmp, 'probe.yaml')
  let proc: ChildProcess
  let stderr = ''
  let exited: Promise<number | null>
  let apiUrl = ''

  const yaml = (inactive: number, fields: string[]): string =>
    [
      'collectors: ["127.0.0.1:47391"]',
      `interfaces: ["${net.ifname('b', 0)}"]`,
      'activeTimeout: 120',
      `inactiveTimeout: ${inactive}`,
      `fields: [${fields.join(', ')}]`,
      'api:',
      '  listen: "127.0.0.1:0"',
      '',
    ].join('\n')

  async function until(what: string, f: () => boolean, ms = 20_000): Promise<void> {
    const t0 = Date.now()
    while (!f()) {
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}:\n${stderr}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  /** GET an API path from inside namespace b (the API listens on that namespace's loopback). */
  async function get(p: string): Promise<Record<string, unknown>> {
    const code = `fetch('${apiUrl}${p}').then(async (r) => console.log(JSON.stringify(await r.json())))`
    return JSON.parse(await run('ip', ['netns', 'exec', net.b, process.execPath, '-e', code])) as Record<
      string,
      unknown
    >
  }

  /** Rewrite the file, send SIGHUP, wait for the probe's verdict line (the n-th since start). */
  async function reload(text: string, verdicts: number): Promise<string> {
    writeFileSync(config, text)
    proc.kill('SIGHUP')
    const lines = (): string[] =>
      stderr.split('\n').filter((l) => /SIGHUP: config (reloaded|not applied)/.test(l))
    await until('the SIGHUP verdict', () => lines().length >= verdicts)
    return lines()[verdicts - 1]! + '\n' + stderr.split('SIGHUP: config').pop()!
  }

  beforeAll(async () => {
    await net.create()
    await net.veth(0, '10.56.0.1/24', '10.56.0.2/24')
    writeFileSync(config, yaml(5, ['l2']))
    proc = spawn('ip', ['netns', 'exec', net.b, process.execPath, BIN, 'probe', '--config', config], {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    exited = new Promise((resolve) => proc.once('close', (code) => resolve(code)))
    await until('the probe API', () => /api: listening on (http:\S+)/.test(stderr))
    apiUrl = /api: listening on (http:\S+)/.exec(stderr)![1]!
  }, 60_000)

  afterAll(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    await exited
    await net.destroy()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('applies the edited file live (settings generation 1, new timeout and field groups)', async () => {
    expect(await get('/api/v1/telemetry/settings')).toMatchObject({ inactiveTimeout: 5, fields: ['l2'] })
    const verdict = await reload(yaml(7, ['l2', 'tcpext']), 1)
    expect(verdict).toMatch(/SIGHUP: config reloaded/)
    expect(await get('/api/v1/telemetry/settings')).toMatchObject({
      inactiveTimeout: 7,
      fields: ['l2', 'tcpext'],
    })
    expect(await get('/api/v1/telemetry/status')).toMatchObject({ settingsGeneration: 1 })
  })

  it('refuses a bad file whole, naming the key, and keeps the running settings', async () => {
    const verdict = await reload(yaml(-1, ['l2', 'bogus']), 2)
    expect(verdict).toMatch(/SIGHUP: config not applied/)
    expect(verdict).toMatch(/inactiveTimeout/)
    expect(await get('/api/v1/telemetry/settings')).toMatchObject({
      inactiveTimeout: 7,
      fields: ['l2', 'tcpext'],
    })
    expect(await get('/api/v1/telemetry/status')).toMatchObject({ settingsGeneration: 1 })
  })

  it('still stops cleanly on SIGTERM', async () => {
    proc.kill('SIGTERM')
    expect(await exited, stderr).toBe(0)
    expect(stderr).toMatch(/every flow exported/)
  })
})
