// REST API (issue 5): each endpoint against a recording fake TelemetryControl (asserting what it was called
// with), bearer-token auth and the loopback rule, and bad requests (413, 415, 400, 404, 405, 500, timeouts,
// fast-check) that never take the server down.
import fc from 'fast-check'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_SETTINGS, type ProbeSettings } from '../config/settings.js'
import { parseExposition, sampleValue } from '../metrics/exposition-parser.test-util.js'
import { emptyProbeStatus, type ProbeStatus } from '../metrics/status.js'
import type { ApplyResult, DebugCaptureState, TelemetryControl, ValidateResult } from '../probe/control.js'
import { isLoopbackHost, parseListen, resolveApiToken } from './auth.js'
import { REDACTED_TOKEN } from './routes.js'
import {
  startApiServer,
  startApiServerFromSettings,
  type ApiServer,
  type ApiServerOptions,
} from './server.js'

const TOKEN = 'correct-horse-battery-staple-42'

class FakeControl implements TelemetryControl {
  calls: { method: string; arg?: unknown }[] = []
  settings: ProbeSettings = { ...DEFAULT_SETTINGS, collectors: ['10.0.0.9:4739'], interfaces: ['eth0'] }
  applyResult: ApplyResult | undefined
  throwIn = ''
  probeStatus: ProbeStatus = {
    ...emptyProbeStatus(),
    uptimeSeconds: 9,
    interfaces: [{ name: 'eth0', ifIndex: 2, packets: 1234, bytes: 99_000, kernelDrops: 3, ifDrops: 0 }],
    flows: { active: 5, created: 17, exportedByEndReason: { 'idle-timeout': 12 } },
  }
  capture: DebugCaptureState = { running: false, bytes: 24, packets: 0 }
  pcapBytes = Uint8Array.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0])

  private call(method: string, arg?: unknown): void {
    this.calls.push(arg === undefined ? { method } : { method, arg })
    if (this.throwIn === method) throw new Error(`${method} exploded\n    at secret/stack/frame.ts:1:1`)
  }
  getSettings(): ProbeSettings {
    this.call('getSettings')
    return this.settings
  }
  applySettings(next: unknown): Promise<ApplyResult> {
    this.call('applySettings', next)
    if (this.applyResult !== undefined) return Promise.resolve(this.applyResult)
    // Like the real control, only a settings document (here: one with an `api` object) is applied.
    const api = (next as { api?: unknown }).api
    if (typeof api !== 'object' || api === null)
      return Promise.resolve({ ok: false, errors: ['api: required'] })
    return Promise.resolve({ ok: true, settings: next as ProbeSettings })
  }
  validate(address: string): Promise<ValidateResult> {
    this.call('validate', address)
    return Promise.resolve({ address, resolved: '10.0.0.9', reachable: true, rttMs: 0.4 })
  }
  status(): ProbeStatus {
    this.call('status')
    return this.probeStatus
  }
  startDebugCapture(opts: { maxBytes?: number; maxSeconds?: number }): DebugCaptureState {
    this.call('startDebugCapture', opts)
    this.capture = { running: true, bytes: 24, packets: 0, maxBytes: opts.maxBytes ?? 0 }
    return this.capture
  }
  stopDebugCapture(): DebugCaptureState {
    this.call('stopDebugCapture')
    this.capture = { ...this.capture, running: false, stopReason: 'stopped' }
    return this.capture
  }
  debugCaptureState(): DebugCaptureState {
    this.call('debugCaptureState')
    return this.capture
  }
  debugCapturePcap(): Uint8Array {
    this.call('debugCapturePcap')
    return this.pcapBytes
  }
}

const servers: ApiServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})
const tmp = mkdtempSync(join(tmpdir(), 'flowtel-api-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

async function start(
  over: Partial<ApiServerOptions> = {},
): Promise<{ api: ApiServer; control: FakeControl }> {
  const control = new FakeControl()
  const api = await startApiServer({ control, listen: '127.0.0.1:0', ...over })
  servers.push(api)
  return { api, control }
}

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
})

/** A raw HTTP exchange (for what fetch will not send); resolves with status, headers and body. */
function raw(
  api: ApiServer,
  opts: http.RequestOptions,
  body?: string | Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: api.host, port: api.port, ...opts }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString() }),
      )
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('settings', () => {
  it('GET returns the settings with the token redacted', async () => {
    const { api, control } = await start()
    control.settings = {
      ...control.settings,
      api: { listen: '127.0.0.1:8765', token: 'secret-secret-secret' },
    }
    const r = await fetch(`${api.url}/api/v1/telemetry/settings`)
    expect(r.status).toBe(200)
    expect(r.headers.get('content-type')).toMatch(/^application\/json/)
    const body = (await r.json()) as ProbeSettings
    expect(body).toEqual({ ...control.settings, api: { listen: '127.0.0.1:8765', token: REDACTED_TOKEN } })
    expect(JSON.stringify(body)).not.toContain('secret-secret')
  })

  it('PUT hands the parsed body to applySettings and returns the applied settings', async () => {
    const { api, control } = await start()
    const next = {
      ...DEFAULT_SETTINGS,
      collectors: ['[2001:db8::1]:4739', 'c.example:3000'],
      activeTimeout: 120,
    }
    const r = await fetch(`${api.url}/api/v1/telemetry/settings`, { ...json(next), method: 'PUT' })
    expect(r.status).toBe(200)
    expect(await r.json()).toEqual(next)
    expect(control.calls.filter((c) => c.method === 'applySettings')).toEqual([
      { method: 'applySettings', arg: next },
    ])
  })

  it('PUT returns 400 with the errors the control reports, naming the key', async () => {
    const { api, control } = await start()
    control.applyResult = {
      ok: false,
      errors: ['activeTimeout: must be <= 86400', 'fields: unknown group "l9"'],
    }
    const r = await fetch(`${api.url}/api/v1/telemetry/settings`, {
      ...json({ ...DEFAULT_SETTINGS, activeTimeout: 1e9 }),
      method: 'PUT',
    })
    expect(r.status).toBe(400)
    expect(await r.json()).toEqual({
      errors: ['activeTimeout: must be <= 86400', 'fields: unknown group "l9"'],
    })
  })

  it('PUT with the redacted token keeps the current token; with none set it is refused', async () => {
    const { api, control } = await start()
    control.settings = {
      ...control.settings,
      api: { listen: '127.0.0.1:8765', token: 'the-current-token-123' },
    }
    const got = (await (await fetch(`${api.url}/api/v1/telemetry/settings`)).json()) as ProbeSettings
    const r = await fetch(`${api.url}/api/v1/telemetry/settings`, { ...json(got), method: 'PUT' })
    expect(r.status).toBe(200)
    const applied = control.calls.find((c) => c.method === 'applySettings')?.arg as ProbeSettings
    expect(applied.api.token).toBe('the-current-token-123')
    expect(((await r.json()) as ProbeSettings).api.token).toBe(REDACTED_TOKEN)

    control.settings = DEFAULT_SETTINGS
    control.calls = []
    const r2 = await fetch(`${api.url}/api/v1/telemetry/settings`, { ...json(got), method: 'PUT' })
    expect(r2.status).toBe(400)
    expect(control.calls.some((c) => c.method === 'applySettings')).toBe(false)
  })

  it('PUT of a non-object JSON document is a 400 and the control is not called', async () => {
    const { api, control } = await start()
    for (const body of [[1, 2], 'text', 42, null]) {
      const r = await fetch(`${api.url}/api/v1/telemetry/settings`, { ...json(body), method: 'PUT' })
      expect(r.status).toBe(400)
      expect(((await r.json()) as { errors: string[] }).errors[0]).toMatch(/JSON object/)
    }
    expect(control.calls.some((c) => c.method === 'applySettings')).toBe(false)
  })
})

describe('validate, status, metrics', () => {
  it('POST validate passes the address as data, whatever it contains', async () => {
    const { api, control } = await start()
    for (const address of ['10.0.0.9:4739', '1.1.1.1;id', '$(reboot)', '`touch /tmp/x`:1']) {
      const r = await fetch(`${api.url}/api/v1/telemetry/validate`, json({ address }))
      expect(r.status).toBe(200)
      expect(((await r.json()) as ValidateResult).address).toBe(address)
    }
    expect(control.calls.filter((c) => c.method === 'validate').map((c) => c.arg)).toEqual([
      '10.0.0.9:4739',
      '1.1.1.1;id',
      '$(reboot)',
      '`touch /tmp/x`:1',
    ])
  })

  it('POST validate refuses a missing, empty, non-string or overlong address and extra keys', async () => {
    const { api, control } = await start()
    for (const body of [
      {},
      { address: '' },
      { address: 42 },
      { address: 'a'.repeat(301) },
      { address: 'x:1', x: 1 },
    ]) {
      const r = await fetch(`${api.url}/api/v1/telemetry/validate`, json(body))
      expect(r.status, JSON.stringify(body)).toBe(400)
    }
    expect(control.calls.some((c) => c.method === 'validate')).toBe(false)
  })

  it('GET status returns the ProbeStatus as JSON', async () => {
    const { api, control } = await start()
    const r = await fetch(`${api.url}/api/v1/telemetry/status`)
    expect(await r.json()).toEqual(control.probeStatus)
  })

  it('GET /metrics is Prometheus text with the status figures', async () => {
    const { api } = await start()
    const r = await fetch(`${api.url}/metrics`)
    expect(r.status).toBe(200)
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const e = parseExposition(await r.text())
    expect(sampleValue(e, 'flowtel_packets_total', { interface: 'eth0' })).toBe(1234)
    expect(sampleValue(e, 'flowtel_flows_exported_total', { end_reason: 'idle-timeout' })).toBe(12)
  })
})

describe('debug capture', () => {
  it('start with limits, state, stop and the pcap download', async () => {
    const { api, control } = await start()
    const url = `${api.url}/api/v1/telemetry/debug-capture`
    const r1 = await fetch(url, json({ action: 'start', maxBytes: 2_000_000, maxSeconds: 30 }))
    expect(r1.status).toBe(200)
    expect(((await r1.json()) as DebugCaptureState).running).toBe(true)
    expect(control.calls.at(-1)).toEqual({
      method: 'startDebugCapture',
      arg: { maxBytes: 2_000_000, maxSeconds: 30 },
    })
    const r2 = await fetch(url)
    expect(((await r2.json()) as DebugCaptureState).running).toBe(true)
    const r3 = await fetch(url, json({ action: 'stop' }))
    expect(await r3.json()).toMatchObject({ running: false, stopReason: 'stopped' })
    const r4 = await fetch(`${url}.pcap`)
    expect(r4.status).toBe(200)
    expect(r4.headers.get('content-type')).toBe('application/vnd.tcpdump.pcap')
    expect(r4.headers.get('content-disposition')).toMatch(/^attachment; filename="flowtel-export-.*\.pcap"$/)
    expect(new Uint8Array(await r4.arrayBuffer())).toEqual(control.pcapBytes)
  })

  it('start without limits gets the defaults; bad actions and limits are 400 and the control is not called', async () => {
    const { api, control } = await start()
    const url = `${api.url}/api/v1/telemetry/debug-capture`
    await fetch(url, json({ action: 'start' }))
    expect(control.calls.at(-1)).toEqual({
      method: 'startDebugCapture',
      arg: { maxBytes: 10 * 1024 * 1024, maxSeconds: 60 },
    })
    control.calls = []
    for (const body of [
      { action: 'pause' },
      {},
      { action: 'start', maxBytes: 200 * 1024 * 1024 },
      { action: 'start', maxSeconds: 7200 },
      { action: 'start', maxSeconds: '10' },
      { action: 'start', size: 10 },
      { action: 'stop', maxBytes: 10_000 },
    ]) {
      const r = await fetch(url, json(body))
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(((await r.json()) as { errors: string[] }).errors.length).toBe(1)
    }
    expect(control.calls).toEqual([])
  })
})

describe('authentication', () => {
  it('loopback without a token serves without credentials, on IPv4 and IPv6 loopback', async () => {
    const { api } = await start()
    expect((await fetch(`${api.url}/api/v1/telemetry/status`)).status).toBe(200)
    const { api: api6 } = await start({ listen: '[::1]:0' })
    expect(api6.url).toMatch(/^http:\/\/\[::1\]:\d+$/)
    expect((await fetch(`${api6.url}/api/v1/telemetry/status`)).status).toBe(200)
  })

  it('with a token: none → 401, wrong → 401 invalid_token, right → 200, on every endpoint incl. /metrics', async () => {
    const { api, control } = await start({ token: TOKEN })
    for (const path of ['/api/v1/telemetry/status', '/api/v1/telemetry/settings', '/metrics', '/nope']) {
      const none = await fetch(`${api.url}${path}`)
      expect(none.status).toBe(401)
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="flowtel"')
      const wrong = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}x` } })
      expect(wrong.status).toBe(401)
      expect(wrong.headers.get('www-authenticate')).toMatch(/error="invalid_token"/)
      const basic = await fetch(`${api.url}${path}`, { headers: { authorization: `Basic ${TOKEN}` } })
      expect(basic.status).toBe(401)
    }
    expect(control.calls).toEqual([])
    const ok = await fetch(`${api.url}/api/v1/telemetry/status`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    expect(ok.status).toBe(200)
    const scheme = await fetch(`${api.url}/metrics`, { headers: { authorization: `bearer ${TOKEN}` } })
    expect(scheme.status).toBe(200)
    // A rejected PUT never reaches the control.
    const put = await fetch(`${api.url}/api/v1/telemetry/settings`, {
      ...json(DEFAULT_SETTINGS),
      method: 'PUT',
    })
    expect(put.status).toBe(401)
    expect(control.calls.map((c) => c.method)).toEqual(['status', 'status'])
  })

  it('refuses to start on a non-loopback address without a token', async () => {
    const control = new FakeControl()
    for (const listen of ['0.0.0.0:0', '[::]:0', '192.0.2.1:8765', 'probe.example:8765'])
      await expect(startApiServer({ control, listen })).rejects.toThrow(/not a loopback address.*api\.token/)
    await expect(startApiServerFromSettings(control, { listen: '0.0.0.0:0' })).rejects.toThrow(/loopback/)
  })

  it('refuses short or unprintable tokens, and setToken keeps the loopback rule', async () => {
    const control = new FakeControl()
    await expect(startApiServer({ control, listen: '127.0.0.1:0', token: 'short' })).rejects.toThrow(/16/)
    await expect(
      startApiServer({ control, listen: '127.0.0.1:0', token: 'has a space in it!!' }),
    ).rejects.toThrow(/printable/)
    const { api } = await start()
    api.setToken(TOKEN)
    expect((await fetch(`${api.url}/metrics`)).status).toBe(401)
    api.setToken(undefined)
    expect((await fetch(`${api.url}/metrics`)).status).toBe(200)
  })

  it('reads the token from api.tokenFile (first line)', async () => {
    const file = join(tmp, 'token')
    writeFileSync(file, `${TOKEN}\nignored\n`)
    expect(await resolveApiToken({ listen: '127.0.0.1:0', tokenFile: file })).toBe(TOKEN)
    const control = new FakeControl()
    const api = await startApiServerFromSettings(control, { listen: '127.0.0.1:0', tokenFile: file })
    servers.push(api)
    expect((await fetch(`${api.url}/metrics`)).status).toBe(401)
    expect(
      (await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status,
    ).toBe(200)
    writeFileSync(file, '\n')
    await expect(resolveApiToken({ listen: 'x:1', tokenFile: file })).rejects.toThrow(/first line is empty/)
    await expect(resolveApiToken({ listen: 'x:1', tokenFile: join(tmp, 'missing') })).rejects.toThrow(
      /tokenFile/,
    )
    await expect(resolveApiToken({ listen: 'x:1', token: TOKEN, tokenFile: file })).rejects.toThrow(
      /not both/,
    )
  })

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.8.9.10', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost'])
      expect(isLoopbackHost(h), h).toBe(true)
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::2', 'localhost.example', '::ffff:10.0.0.1'])
      expect(isLoopbackHost(h), h).toBe(false)
    expect(parseListen('[::1]:8765')).toEqual({ host: '::1', port: 8765 })
    expect(() => parseListen('8765')).toThrow(/host:port/)
    expect(() => parseListen('::1:8765')).toThrow(/host:port/)
  })
})

describe('bad requests', () => {
  it('unknown path 404, wrong method 405 with Allow', async () => {
    const { api } = await start()
    const r404 = await fetch(`${api.url}/api/v1/telemetry/nothing`)
    expect(r404.status).toBe(404)
    const r405 = await fetch(`${api.url}/api/v1/telemetry/settings`, { method: 'DELETE' })
    expect(r405.status).toBe(405)
    expect(r405.headers.get('allow')).toBe('GET, PUT')
    const r405b = await fetch(`${api.url}/api/v1/telemetry/status`, json({}))
    expect(r405b.headers.get('allow')).toBe('GET')
  })

  it('wrong content type 415, bad JSON 400 with the parser message, bad UTF-8 400, empty body 400', async () => {
    const { api, control } = await start()
    const url = `${api.url}/api/v1/telemetry/validate`
    const r415 = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' })
    expect(r415.status).toBe(415)
    const r400 = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":',
    })
    expect(r400.status).toBe(400)
    expect(((await r400.json()) as { errors: string[] }).errors[0]).toMatch(/not valid JSON: .+/)
    const utf = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: Buffer.from([0x7b, 0xff, 0x7d]),
    })
    expect(utf.status).toBe(400)
    const empty = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '',
    })
    expect(empty.status).toBe(400)
    expect(control.calls).toEqual([])
  })

  it('bodies over the limit: 413 whether announced or streamed, and the server stays up', async () => {
    const { api, control } = await start({ bodyLimit: 1024 })
    const big = JSON.stringify({ address: 'x'.repeat(5000) })
    const announced = await raw(
      api,
      { method: 'POST', path: '/api/v1/telemetry/validate', headers: { 'content-type': 'application/json' } },
      big,
    )
    expect(announced.status).toBe(413)
    const streamed = await raw(
      api,
      {
        method: 'POST',
        path: '/api/v1/telemetry/validate',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      },
      big,
    )
    expect(streamed.status).toBe(413)
    expect(JSON.parse(streamed.body)).toEqual({ errors: ['request body larger than 1024 bytes'] })
    expect(control.calls).toEqual([])
    expect((await fetch(`${api.url}/api/v1/telemetry/status`)).status).toBe(200)
  })

  it('a throwing control method is a 500 with a short message (no stack), and the server stays up', async () => {
    const logged: unknown[] = []
    const { api, control } = await start({ log: (_m, err) => logged.push(err) })
    for (const [method, path, init] of [
      ['status', '/api/v1/telemetry/status', {}],
      ['applySettings', '/api/v1/telemetry/settings', { ...json(DEFAULT_SETTINGS), method: 'PUT' }],
      ['debugCapturePcap', '/api/v1/telemetry/debug-capture.pcap', {}],
      ['status', '/metrics', {}],
    ] as const) {
      control.throwIn = method
      const r = await fetch(`${api.url}${path}`, init)
      expect(r.status, path).toBe(500)
      const text = await r.text()
      expect(JSON.parse(text)).toEqual({ errors: [`internal error: ${method} exploded`] })
      expect(text).not.toMatch(/stack|frame\.ts/)
    }
    expect(logged.length).toBe(4)
    control.throwIn = ''
    expect((await fetch(`${api.url}/api/v1/telemetry/status`)).status).toBe(200)
  })

  it('a client that never finishes its headers gets 408 and is disconnected', async () => {
    const { api } = await start({ headersTimeoutMs: 300, requestTimeoutMs: 300 })
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect(api.port, api.host, () => s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'))
      let got = ''
      s.on('data', (d: Buffer) => (got += d.toString()))
      s.on('close', () => resolve(got))
      s.on('error', reject)
    })
    expect(reply).toMatch(/^HTTP\/1\.1 408/)
  })

  it('any method, path, content type and body: a well-formed HTTP answer below 500, server up', async () => {
    const { api, control } = await start({ bodyLimit: 4096 })
    const paths = [
      '/api/v1/telemetry/settings',
      '/api/v1/telemetry/validate',
      '/api/v1/telemetry/debug-capture',
    ]
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'),
        fc.oneof(fc.constantFrom(...paths, '/metrics', '/'), fc.webPath()),
        fc.constantFrom('application/json', 'application/JSON; charset=utf-8', 'text/plain', ''),
        fc.oneof(
          fc.json(),
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        async (method, path, type, body) => {
          const r = await raw(
            api,
            {
              method,
              path,
              headers: {
                ...(type === '' ? {} : { 'content-type': type }),
                // Explicit framing: Node's client sends DELETE/OPTIONS bodies unframed otherwise.
                ...(method === 'GET' ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
              },
            },
            method === 'GET' ? undefined : body,
          )
          expect(r.status).toBeGreaterThanOrEqual(200)
          expect(r.status).toBeLessThan(500)
          if (r.headers['content-type']?.startsWith('application/json')) JSON.parse(r.body)
        },
      ),
      { numRuns: 300 },
    )
    // Whatever object reached applySettings is exactly the parsed body.
    control.calls = []
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.jsonValue()), async (obj) => {
        const body = JSON.stringify(obj)
        const r = await raw(
          api,
          {
            method: 'PUT',
            path: '/api/v1/telemetry/settings',
            headers: { 'content-type': 'application/json' },
          },
          body,
        )
        if (Buffer.byteLength(body) > 4096) return expect(r.status).toBe(413)
        expect(r.status).toBe(typeof obj.api === 'object' && obj.api !== null ? 200 : 400)
        expect(control.calls.at(-1)).toEqual({ method: 'applySettings', arg: JSON.parse(body) as unknown })
      }),
      { numRuns: 100 },
    )
    expect((await fetch(`${api.url}/api/v1/telemetry/status`)).status).toBe(200)
  })
})
