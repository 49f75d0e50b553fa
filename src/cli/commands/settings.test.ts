// `flowtel settings get|set|validate|check`: exit codes (0 ok, 1 unreachable or API failure, 2 bad input),
// file mode keeping comments, and API mode against a stand-in for the REST endpoints on loopback
// (Bearer token sent, PUT body carries the change, the server's error list printed on 4xx).
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { REPO_ROOT } from '../../../test/helpers/shared.js'
import { validateSettings } from '../../config/schema.js'
import { DEFAULT_SETTINGS } from '../../config/settings.js'
import { settingsCommand } from './settings.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-settings-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Result {
  code: number
  stdout: string
  stderr: string
}

/** Runs `flowtel settings ...` in this process and returns what it printed and its exit code. */
async function settings(...args: string[]): Promise<Result> {
  let stdout = ''
  let stderr = ''
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    stdout += String(s)
    return true
  })
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    stderr += String(s)
    return true
  })
  const before = process.exitCode
  try {
    await settingsCommand().exitOverride().parseAsync(args, { from: 'user' })
    return { code: Number(process.exitCode ?? 0), stdout, stderr }
  } finally {
    process.exitCode = before
    o.mockRestore()
    e.mockRestore()
  }
}

const FILE_TEXT = [
  '# Probe at site 3.',
  'collectors:',
  '  - 192.0.2.1:4739 # primary',
  'activeTimeout: 300 # NOC asked for 5 min',
  'interfaces: [eth0]',
  '',
].join('\n')

describe('flowtel settings (file mode)', () => {
  it('set validates, saves keeping comments, and get prints YAML or JSON', async () => {
    const file = join(dir, 'probe.yaml')
    writeFileSync(file, FILE_TEXT)
    const set = await settings(
      'set',
      '--config',
      file,
      'activeTimeout=60',
      'capture.promiscuous=off',
      'fields=l2,npm',
    )
    expect(set).toEqual({
      code: 0,
      stdout: `${file}: activeTimeout = 60\n${file}: capture.promiscuous = false\n${file}: fields = ["l2","npm"]\n`,
      stderr: '',
    })
    expect(readFileSync(file, 'utf8')).toBe(
      [
        '# Probe at site 3.',
        'collectors:',
        '  - 192.0.2.1:4739 # primary',
        'activeTimeout: 60 # NOC asked for 5 min',
        'interfaces: [ eth0 ]',
        'fields:',
        '  - l2',
        '  - npm',
        'capture:',
        '  promiscuous: false',
        '',
      ].join('\n'),
    )
    const yaml = await settings('get', '--config', file)
    expect(yaml.code).toBe(0)
    expect(parseYaml(yaml.stdout)).toEqual({
      ...DEFAULT_SETTINGS,
      collectors: ['192.0.2.1:4739'],
      activeTimeout: 60,
      interfaces: ['eth0'],
      fields: ['l2', 'npm'],
      capture: { ...DEFAULT_SETTINGS.capture, promiscuous: false },
    })
    const json = await settings('get', '--config', file, '--json')
    expect(JSON.parse(json.stdout)).toEqual(parseYaml(yaml.stdout))
  })

  it('get shows the token only when asked', async () => {
    const file = join(dir, 'token.yaml')
    writeFileSync(file, 'collectors: ["192.0.2.1:4739"]\napi:\n  token: abcdefghijklmnopqrst\n')
    const hidden = await settings('get', '--config', file, '--json')
    expect((JSON.parse(hidden.stdout) as typeof DEFAULT_SETTINGS).api).toEqual({
      listen: '127.0.0.1:8765',
      token: '<redacted>',
    })
    const shown = await settings('get', '--config', file, '--json', '--show-token')
    expect((JSON.parse(shown.stdout) as typeof DEFAULT_SETTINGS).api.token).toBe('abcdefghijklmnopqrst')
  })

  it('set with a bad value or an unknown key exits 2 and leaves the file alone', async () => {
    const file = join(dir, 'bad-set.yaml')
    writeFileSync(file, FILE_TEXT)
    const bad = await settings('set', '--config', file, 'activeTimeout=0', 'collectors=1.1.1.1;id:2055')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toBe(
      `${file}: activeTimeout: must be an integer from 1 to 86400 (got 0)\n` +
        `${file}: collectors[0]: bad host "1.1.1.1;id" (got "1.1.1.1;id:2055")\n`,
    )
    const unknown = await settings('set', '--config', file, 'capture.snaplne=64')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toBe(
      'flowtel settings: unknown key "capture.snaplne"; did you mean "capture.snaplen"? ' +
        '(keys of capture: promiscuous, snaplen, bufferBytes, filter)\n',
    )
    expect((await settings('set', '--config', file, 'noequals')).code).toBe(2)
    expect(readFileSync(file, 'utf8')).toBe(FILE_TEXT)
  })

  it('check prints ok with the observation domain, or every error with its line, exit 2', async () => {
    const good = await settings('check', '--config', join(REPO_ROOT, 'deploy/probe.example.yaml'))
    expect(good.code).toBe(0)
    expect(good.stdout).toMatch(
      /probe\.example\.yaml: ok \(observation domain \d+, (host address|host name) .+\)\n$/,
    )
    const file = join(dir, 'bad.yaml')
    writeFileSync(file, 'collectors: []\nactiveTimeout: 10\ninactiveTimeout: 20\nfields: [l2, nope]\n')
    const bad = await settings('check', '--config', file)
    expect(bad.code).toBe(2)
    expect(bad.stderr.split('\n').filter((l) => !l.startsWith('warning:'))).toEqual([
      `${file}:1:1: collectors: at least one collector is needed, e.g. collectors: ["192.0.2.10:4739"]`,
      `${file}:3:1: inactiveTimeout: must not be longer than activeTimeout (20 > 10): the active timeout would always end the flow first`,
      `${file}:4:14: fields[1]: unknown group "nope"; known: l2, tunnel, npm, tcpext, arp, dns, http, tls, dhcp (core is always on)`,
      '',
    ])
    expect((await settings('check', '--config', join(dir, 'absent.yaml'))).code).toBe(2)
  })
})

describe('flowtel settings validate', () => {
  it('exits 0 for a reachable loopback collector and prints RTT and resolved address', async () => {
    const r = await settings('validate', '127.0.0.1:4739')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^reachable: 127\.0\.0\.1 \(127\.0\.0\.1\) rtt [\d.]+ ms\n$/)
  })

  it('exits 2 for injection attempts and a bad --wait', async () => {
    for (const bad of ['1.1.1.1;id', '$(reboot)', '`id`', '1.1.1.1 && id', '--help'].map((a) => ['--', a])) {
      const r = await settings('validate', ...bad)
      expect(r.code, bad[1]).toBe(2)
      expect(r.stderr).toMatch(/^flowtel settings: invalid address: /)
      expect(r.stdout).toBe('')
    }
    expect((await settings('validate', '127.0.0.1', '--wait', '0')).code).toBe(2)
  })
})

describe('flowtel settings (API mode)', () => {
  const TOKEN = 'test-token-0123456789'
  let server: Server
  let base = ''
  let state = { ...structuredClone(DEFAULT_SETTINGS), collectors: ['192.0.2.1:4739'] }
  const seen: { method: string; url: string; auth: string | undefined; body: unknown }[] = []

  const body = async (req: IncomingMessage): Promise<unknown> => {
    let text = ''
    for await (const chunk of req) text += String(chunk)
    return text === '' ? undefined : (JSON.parse(text) as unknown)
  }

  beforeAll(async () => {
    // A stand-in for the REST endpoints (the real server lives in the API module), enough to drive the client.
    server = createServer((req, res) => {
      void (async () => {
        const b = await body(req)
        seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body: b })
        const reply = (status: number, payload: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload))
        }
        if (req.headers.authorization !== `Bearer ${TOKEN}`)
          return reply(401, { error: 'missing or wrong token' })
        if (req.url === '/api/v1/telemetry/settings' && req.method === 'GET') return reply(200, state)
        if (req.url === '/api/v1/telemetry/settings' && req.method === 'PUT') {
          const r = validateSettings(b)
          if (!r.ok) return reply(422, { errors: r.errors })
          state = r.settings
          return reply(200, { settings: state })
        }
        if (req.url === '/api/v1/telemetry/validate' && req.method === 'POST')
          return reply(200, {
            address: '192.0.2.1',
            resolved: '192.0.2.1',
            reachable: false,
            error: 'no echo reply',
          })
        reply(404, { error: 'not found' })
      })()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((r) => server.close(() => r())))

  it('get sends the bearer token and prints the server settings', async () => {
    const r = await settings('get', '--api', base, '--token', TOKEN, '--json')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual(state)
    expect(seen.at(-1)).toEqual({
      method: 'GET',
      url: '/api/v1/telemetry/settings',
      auth: `Bearer ${TOKEN}`,
      body: undefined,
    })
  })

  it('set GETs, changes the keys and PUTs the whole document; the token can come from a file', async () => {
    const tokenFile = join(dir, 'token')
    writeFileSync(tokenFile, `${TOKEN}\n`)
    const r = await settings(
      'set',
      '--api',
      base,
      '--token-file',
      tokenFile,
      'inactiveTimeout=10',
      'workers=2',
    )
    expect(r).toEqual({
      code: 0,
      stdout: `${base}: inactiveTimeout = 10\n${base}: workers = 2\n`,
      stderr: '',
    })
    const put = seen.at(-1)
    expect(put?.method).toBe('PUT')
    expect(put?.body).toEqual({ ...state, inactiveTimeout: 10, workers: 2 })
    expect(state.inactiveTimeout).toBe(10)
  })

  it("prints the server's error list on 422 (exit 2) and says so on 401 (exit 1)", async () => {
    const r = await settings('set', '--api', base, '--token', TOKEN, 'mtu=100')
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(
      'flowtel settings: PUT rejected: HTTP 422\n  mtu: must be an integer from 576 to 65535 (got 100)\n',
    )
    const denied = await settings('get', '--api', base, '--token', 'wrong')
    expect(denied.code).toBe(1)
    expect(denied.stderr).toBe(
      'flowtel settings: GET rejected: HTTP 401 (check --token)\n  missing or wrong token\n',
    )
  })

  it('validate --api asks the probe; a refused connection is exit 1', async () => {
    const r = await settings('validate', '192.0.2.1:4739', '--api', base, '--token', TOKEN)
    expect(r).toEqual({ code: 1, stdout: 'unreachable: 192.0.2.1 (192.0.2.1): no echo reply\n', stderr: '' })
    expect(seen.at(-1)?.body).toEqual({ address: '192.0.2.1:4739' })
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const freePort = (probe.address() as AddressInfo).port
    await new Promise<void>((r) => probe.close(() => r()))
    const closed = await settings('get', '--api', `http://127.0.0.1:${freePort}`)
    expect(closed.code).toBe(1)
    expect(closed.stderr).toBe('flowtel settings: GET failed: ECONNREFUSED\n')
    expect((await settings('get', '--api', 'ftp://x')).code).toBe(2)
  })
})

describe('bin/flowtel settings (through main)', () => {
  it('is registered and its exit code reaches the shell', async () => {
    const file = join(dir, 'cli.yaml')
    writeFileSync(file, 'collectors: ["192.0.2.1:4739"]\nworkers: 99\n')
    const entry =
      "import { main } from './src/cli/main.ts'; await main(['node', 'flowtel', ...process.argv.slice(1)])"
    const code = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', entry, '--', 'settings', 'check', '--config', file],
      { cwd: REPO_ROOT },
    ).then(
      () => 0,
      (e: { code?: number; stderr?: string }) => {
        expect(e.stderr).toContain(`${file}:2:1: workers: must be an integer from 1 to 64 (got 99)`)
        return e.code
      },
    )
    expect(code).toBe(2)
  })

  it('exits 2 on a usage error (missing address)', async () => {
    const entry =
      "import { main } from './src/cli/main.ts'; await main(['node', 'flowtel', ...process.argv.slice(1)])"
    const r = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', entry, '--', 'settings', 'validate'],
      { cwd: REPO_ROOT },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code?: number; stderr?: string }) => ({ code: e.code, stderr: e.stderr ?? '' }),
    )
    expect(r).toEqual({ code: 2, stderr: "error: missing required argument 'address'\n" })
  })
})
