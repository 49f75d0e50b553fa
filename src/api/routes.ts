/**
 * The REST API's routes (issue 5, docs/api.md): the "Network Telemetry" settings, Validate, status, the
 * troubleshooting capture of the export traffic and Prometheus /metrics, each a thin adapter from HTTP to
 * one TelemetryControl call. Bodies are checked here only as far as their shape goes; the settings
 * themselves are validated by the control (config schema), which names the key and the problem.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ProbeSettings } from '../config/settings.js'
import type { ProbeMetrics } from '../metrics/prometheus.js'
import type { TelemetryControl } from '../probe/control.js'
import { debugCaptureLimits } from '../probe/debug-capture.js'
import { expectObject, HttpError, readJsonBody, sendBytes, sendJson } from './http-io.js'

/** Stands for the configured API token in GET /settings; a PUT carrying it keeps the current token. */
export const REDACTED_TOKEN = '<redacted>'
/** Longest address Validate accepts (a DNS name is at most 253 characters, plus [ ] and :port). */
export const MAX_VALIDATE_ADDRESS = 300

export interface RouteContext {
  control: TelemetryControl
  metrics: ProbeMetrics
  bodyLimit: number
}

type Handler = (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => Promise<void> | void

export type Routes = ReadonlyMap<string, Readonly<Partial<Record<string, Handler>>>>

function redacted(s: ProbeSettings): ProbeSettings {
  if (s.api.token === undefined) return s
  return { ...s, api: { ...s.api, token: REDACTED_TOKEN } }
}

/** A PUT that sends back the redacted token keeps the current one. */
function unredact(body: unknown, current: ProbeSettings): unknown {
  if (typeof body !== 'object' || body === null) return body
  const api = (body as { api?: unknown }).api
  if (typeof api !== 'object' || api === null || (api as { token?: unknown }).token !== REDACTED_TOKEN)
    return body
  if (current.api.token === undefined)
    throw new HttpError(400, [`api.token: "${REDACTED_TOKEN}" stands for the current token, and none is set`])
  return { ...body, api: { ...api, token: current.api.token } }
}

const settingsGet: Handler = (_req, res, { control }) => sendJson(res, 200, redacted(control.getSettings()))

const settingsPut: Handler = async (req, res, { control, bodyLimit }) => {
  const body = unredact(expectObject(await readJsonBody(req, bodyLimit), 'settings'), control.getSettings())
  const r = await control.applySettings(body)
  if (r.ok) sendJson(res, 200, redacted(r.settings))
  else sendJson(res, 400, { errors: r.errors })
}

const validatePost: Handler = async (req, res, { control, bodyLimit }) => {
  const body = expectObject(await readJsonBody(req, bodyLimit), 'validate')
  const extra = Object.keys(body).filter((k) => k !== 'address')
  if (extra.length > 0) throw new HttpError(400, [`validate: unknown key(s) ${extra.join(', ')}`])
  const address = body.address
  if (typeof address !== 'string' || address.trim() === '')
    throw new HttpError(400, ['address: a collector address string is expected, e.g. "10.0.0.9:4739"'])
  if (address.length > MAX_VALIDATE_ADDRESS)
    throw new HttpError(400, [`address: longer than ${MAX_VALIDATE_ADDRESS} characters`])
  sendJson(res, 200, await control.validate(address))
}

const statusGet: Handler = (_req, res, { control }) => sendJson(res, 200, control.status())

const debugCaptureGet: Handler = (_req, res, { control }) => sendJson(res, 200, control.debugCaptureState())

const debugCapturePost: Handler = async (req, res, { control, bodyLimit }) => {
  const body = expectObject(await readJsonBody(req, bodyLimit), 'debug-capture')
  const { action, ...rest } = body
  if (action === 'stop') {
    if (Object.keys(rest).length > 0)
      throw new HttpError(400, [
        `debug-capture: "stop" takes no options, got ${Object.keys(rest).join(', ')}`,
      ])
    sendJson(res, 200, control.stopDebugCapture())
    return
  }
  if (action !== 'start') throw new HttpError(400, ['action: "start" or "stop" is expected'])
  const extra = Object.keys(rest).filter((k) => k !== 'maxBytes' && k !== 'maxSeconds')
  if (extra.length > 0) throw new HttpError(400, [`debug-capture: unknown key(s) ${extra.join(', ')}`])
  let limits
  try {
    limits = debugCaptureLimits(rest)
  } catch (err) {
    throw new HttpError(400, [(err as Error).message])
  }
  sendJson(res, 200, control.startDebugCapture(limits))
}

const debugCapturePcap: Handler = (_req, res, { control }) => {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  sendBytes(res, 200, 'application/vnd.tcpdump.pcap', control.debugCapturePcap(), {
    'content-disposition': `attachment; filename="flowtel-export-${stamp}.pcap"`,
  })
}

const metricsGet: Handler = async (_req, res, { metrics }) => {
  const text = await metrics.scrape()
  sendBytes(res, 200, metrics.contentType, text)
}

export const API_ROUTES: Routes = new Map<string, Partial<Record<string, Handler>>>([
  ['/api/v1/telemetry/settings', { GET: settingsGet, PUT: settingsPut }],
  ['/api/v1/telemetry/validate', { POST: validatePost }],
  ['/api/v1/telemetry/status', { GET: statusGet }],
  ['/api/v1/telemetry/debug-capture', { GET: debugCaptureGet, POST: debugCapturePost }],
  ['/api/v1/telemetry/debug-capture.pcap', { GET: debugCapturePcap }],
  ['/metrics', { GET: metricsGet }],
])
