// `flowtel probe debug-capture` against a real API server whose control runs a real DebugCaptureRecorder:
// start with limits, status, stop, download (the file is the recorder's pcap and our reader opens it),
// the token options and the error messages. The command is mounted under a test `probe` command here; the
// service helper registers it under the real one.
import { Command } from 'commander'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { startApiServer, type ApiServer } from '../../api/server.js'
import { openCaptureFiles } from '../../capture/file-source.js'
import { DEFAULT_SETTINGS } from '../../config/settings.js'
import { emptyProbeStatus } from '../../metrics/status.js'
import type { TelemetryControl } from '../../probe/control.js'
import { DebugCaptureRecorder } from '../../probe/debug-capture.js'
import { debugCaptureCommand, formatCaptureState } from './debug-capture.js'

const TOKEN = 'cli-test-token-0123456789'
const tmp = mkdtempSync(join(tmpdir(), 'flowtel-cli-dc-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
const servers: ApiServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

function controlWith(rec: DebugCaptureRecorder): TelemetryControl {
  const unused = (): never => {
    throw new Error('not used in this test')
  }
  return {
    getSettings: () => DEFAULT_SETTINGS,
    applySettings: unused,
    validate: unused,
    status: emptyProbeStatus,
    startDebugCapture: (o) => rec.start(o),
    stopDebugCapture: () => rec.stop(),
    debugCaptureState: () => rec.state(),
    debugCapturePcap: () => rec.pcap(),
  }
}

/** Runs `flowtel probe debug-capture ...args`; returns what it printed, rejects with its error. */
async function run(args: string[]): Promise<string> {
  let printed = ''
  const program = new Command('flowtel').exitOverride()
  const probe = new Command('probe').exitOverride()
  const dc = debugCaptureCommand({ out: (t) => (printed += t) })
  dc.exitOverride()
  for (const c of dc.commands) c.exitOverride().configureOutput({ writeErr: () => {} })
  probe.addCommand(dc)
  program.addCommand(probe)
  await program.parseAsync(['node', 'flowtel', 'probe', 'debug-capture', ...args])
  return printed
}

const ep = {
  protocol: 'udp' as const,
  local: { address: '192.0.2.10', port: 50000 },
  remote: { address: '198.51.100.20', port: 4739 },
}

describe('flowtel probe debug-capture', () => {
  it('start, status, stop and download through the API', async () => {
    const rec = new DebugCaptureRecorder()
    const api = await startApiServer({ control: controlWith(rec), listen: '127.0.0.1:0', token: TOKEN })
    servers.push(api)
    const common = ['--api', api.url, '--token', TOKEN]
    const started = await run(['start', ...common, '--max-bytes', '50000', '--max-seconds', '30'])
    expect(started).toMatch(/capture: running/)
    expect(started).toMatch(/limits: +50000 bytes, 30 s/)
    expect(rec.state()).toMatchObject({ running: true, maxBytes: 50000, maxSeconds: 30 })
    for (let i = 0; i < 5; i++) rec.record(ep, [new Uint8Array(16), new Uint8Array(100 + i)])
    const status = JSON.parse(await run(['status', ...common, '--json'])) as {
      packets: number
      running: boolean
    }
    expect(status).toMatchObject({ packets: 5, running: true })
    expect(await run(['stop', ...common])).toMatch(/capture: stopped[\s\S]*\(stopped\)/)
    const file = join(tmp, 'export.pcap')
    expect(await run(['download', ...common, '-o', file])).toBe(`${file}: ${rec.pcap().byteLength} bytes\n`)
    expect(readFileSync(file).equals(Buffer.from(rec.pcap()))).toBe(true)
    const src = await openCaptureFiles([file])
    let packets = 0
    for await (const b of src.batches()) packets += b.count
    await src.close()
    expect(packets).toBe(5)
  })

  it('takes the token from --token-file; without a token the API error is shown', async () => {
    const rec = new DebugCaptureRecorder()
    const api = await startApiServer({ control: controlWith(rec), listen: '127.0.0.1:0', token: TOKEN })
    servers.push(api)
    const tokenFile = join(tmp, 'token')
    writeFileSync(tokenFile, `${TOKEN}\n`)
    expect(await run(['status', '--api', api.url, '--token-file', tokenFile])).toMatch(/never started/)
    await expect(run(['status', '--api', api.url])).rejects.toThrow(/HTTP 401: bearer token required/)
    await expect(run(['status', '--api', api.url, '--token', `${TOKEN}x`])).rejects.toThrow(
      /HTTP 401: invalid token/,
    )
  })

  it('reports an unreachable API and bad limits clearly', async () => {
    const rec = new DebugCaptureRecorder()
    const api = await startApiServer({ control: controlWith(rec), listen: '127.0.0.1:0' })
    const url = api.url
    await api.close() // nothing listens there now
    await expect(run(['status', '--api', url])).rejects.toThrow(
      /cannot reach the probe API at http:\/\/127\.0\.0\.1/,
    )
    await expect(run(['start', '--max-bytes', '10'])).rejects.toThrow(/--max-bytes must be between 1024/)
    await expect(run(['start', '--max-seconds', '9000'])).rejects.toThrow(
      /--max-seconds must be between 1 and 3600/,
    )
    await expect(run(['download'])).rejects.toThrow(/--output/)
    expect(rec.state().running).toBe(false)
  })

  it('formats a state after a size-limit stop', () => {
    const text = formatCaptureState({
      running: false,
      bytes: 1000,
      packets: 3,
      startedAt: '2026-11-25T00:00:00.000Z',
      stoppedAt: '2026-11-25T00:00:05.000Z',
      stopReason: 'size-limit',
      maxBytes: 1024,
      maxSeconds: 60,
    })
    expect(text).toBe(
      'capture: stopped\npackets: 3\nbytes:   1000\nstarted: 2026-11-25T00:00:00.000Z\n' +
        'stopped: 2026-11-25T00:00:05.000Z (size-limit)\nlimits:  1024 bytes, 60 s\n',
    )
  })
})
