/**
 * The probe's REST API and /metrics server on node:http (issue 5; endpoints in docs/api.md).
 *
 * node:http is enough for seven routes, and keeps the attack surface and the dependency list small.
 * Access: loopback by default (127.0.0.1:8765); the server refuses to start on any other address unless a
 * bearer token is set, and once a token is set every request needs it (api/auth.ts). Robustness: bounded
 * bodies (1 MiB → 413), header and request timeouts, short JSON errors without stack traces, and a
 * control method that throws yields a 500 while the server stays up.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ApiSettings } from '../config/settings.js'
import { createProbeMetrics, type ProbeMetrics } from '../metrics/prometheus.js'
import type { TelemetryControl } from '../probe/control.js'
import { BearerAuth, DEFAULT_API_LISTEN, isLoopbackHost, parseListen, resolveApiToken } from './auth.js'
import { HttpError, sendError } from './http-io.js'
import { API_ROUTES, type RouteContext } from './routes.js'

export const DEFAULT_BODY_LIMIT = 1024 * 1024

export interface ApiServerOptions {
  control: TelemetryControl
  /** host:port or [v6]:port; port 0 picks a free port. Default 127.0.0.1:8765. */
  listen?: string
  /** Bearer token; required when `listen` is not loopback. */
  token?: string
  /** Metrics over control.status() unless given. */
  metrics?: ProbeMetrics
  /** Largest request body in octets (default 1 MiB). */
  bodyLimit?: number
  /** Time allowed to receive the request headers / the whole request (ms). Defaults 10 s / 30 s. */
  headersTimeoutMs?: number
  requestTimeoutMs?: number
  /** Where unexpected errors are reported (with stack); the client only gets a short message. */
  log?: (message: string, err?: unknown) => void
}

export interface ApiServer {
  readonly server: Server
  /** The bound address and port (the real port when 0 was asked). */
  readonly host: string
  readonly port: number
  /** Base URL, e.g. http://127.0.0.1:8765 */
  readonly url: string
  /** Replaces the token (undefined removes it, allowed only on loopback). */
  setToken(token: string | undefined): void
  close(): Promise<void>
}

function loopbackRule(host: string, token: string | undefined, listen: string): void {
  if (token === undefined && !isLoopbackHost(host))
    throw new Error(
      `api.listen ${listen} is not a loopback address: set api.token or api.tokenFile to expose the API there`,
    )
}

/** Starts the server; rejects for a bad listen address, a non-loopback address without token, or EADDRINUSE. */
export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const listen = opts.listen ?? DEFAULT_API_LISTEN
  const { host, port } = parseListen(listen)
  loopbackRule(host, opts.token, listen)
  let auth = opts.token === undefined ? undefined : new BearerAuth(opts.token)
  const control = opts.control
  const ctx: RouteContext = {
    control,
    metrics: opts.metrics ?? createProbeMetrics(() => control.status()),
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
  }
  const log = opts.log ?? ((): void => {})

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      if (auth !== undefined) {
        const r = auth.check(req.headers.authorization)
        if (r !== 'ok')
          throw new HttpError(401, [r === 'missing' ? 'bearer token required' : 'invalid token'], {
            'www-authenticate':
              r === 'missing' ? 'Bearer realm="flowtel"' : 'Bearer realm="flowtel", error="invalid_token"',
          })
      }
      const path = (req.url ?? '/').split('?')[0] ?? '/'
      const methods = API_ROUTES.get(path)
      if (methods === undefined) throw new HttpError(404, [`no such endpoint: ${path.slice(0, 200)}`])
      const handler = methods[req.method ?? '']
      if (handler === undefined)
        throw new HttpError(405, [`method ${req.method ?? '?'} not allowed on ${path}`], {
          allow: Object.keys(methods).join(', '),
        })
      await handler(req, res, ctx)
    } catch (err) {
      if (res.headersSent) {
        log(`api: ${req.method} ${req.url}: failed after the response started`, err)
        res.destroy()
        return
      }
      if (err instanceof HttpError) {
        sendError(res, err)
        return
      }
      log(`api: ${req.method} ${req.url}: internal error`, err)
      const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0]?.slice(0, 200) ?? ''
      sendError(res, new HttpError(500, [`internal error: ${msg}`]))
    }
  }

  const headersTimeout = opts.headersTimeoutMs ?? 10_000
  const server = createServer(
    {
      headersTimeout,
      requestTimeout: opts.requestTimeoutMs ?? 30_000,
      // How often the timeouts above are checked (Node's default, 30 s, would let a slow client stay longer).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 2))),
      keepAliveTimeout: 5_000,
      maxHeaderSize: 16 * 1024,
    },
    (req, res) => void handle(req, res),
  )
  server.maxHeadersCount = 100
  // Bad requests and timeouts are answered by Node itself (400, 408, 431) and the connection closed.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const addr = server.address() as AddressInfo
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  return {
    server,
    host: addr.address,
    port: addr.port,
    url: `http://${urlHost}:${addr.port}`,
    setToken(token) {
      loopbackRule(host, token, listen)
      auth = token === undefined ? undefined : new BearerAuth(token)
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** Starts the server from the `api` settings, reading api.tokenFile when set. */
export async function startApiServerFromSettings(
  control: TelemetryControl,
  api: ApiSettings,
  extra: Omit<ApiServerOptions, 'control' | 'listen' | 'token'> = {},
): Promise<ApiServer> {
  const token = await resolveApiToken(api)
  return startApiServer({ ...extra, control, listen: api.listen, ...(token !== undefined ? { token } : {}) })
}
