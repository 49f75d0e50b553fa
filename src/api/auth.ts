/**
 * REST API access rules (issue 5): the API listens on loopback by default and needs a bearer token
 * (RFC 6750 §2.1, `Authorization: Bearer <token>`) when bound to any other address. A configured token is
 * required on every request, loopback or not, /metrics included (Prometheus sends it with
 * `authorization: { credentials: ... }` or `bearer_token_file`).
 *
 * The check compares SHA-256 digests of the given and expected tokens with crypto.timingSafeEqual, so the
 * time taken tells nothing about the token, not even its length.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { isIPv4, isIPv6 } from 'node:net'
import type { ApiSettings } from '../config/settings.js'

export const DEFAULT_API_LISTEN = '127.0.0.1:8765'
/** Shortest token accepted (16 characters; 32 random ones are recommended, e.g. `openssl rand -hex 16`). */
export const MIN_TOKEN_LENGTH = 16

/** Parses `host:port` / `[v6]:port`; throws an Error naming api.listen and the problem. */
export function parseListen(listen: string): { host: string; port: number } {
  const text = listen.trim()
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text)
  if (m === null)
    throw new Error(`api.listen "${listen}": expected host:port or [IPv6]:port, e.g. ${DEFAULT_API_LISTEN}`)
  const host = m[1] ?? ''
  const port = Number(m[2])
  if (port > 65535) throw new Error(`api.listen "${listen}": port ${port} outside 0..65535`)
  if (!isIPv4(host) && !isIPv6(host) && !/^[A-Za-z0-9.-]+$/.test(host))
    throw new Error(`api.listen "${listen}": bad host "${host}"`)
  return { host, port }
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x.y.z and `localhost`; every other address or name is not. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase()
  if (h === 'localhost') return true
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/.exec(h)?.[1]
  if (v4 !== undefined && isIPv4(v4)) return v4.startsWith('127.')
  if (isIPv6(h)) return /^(?:0{0,4}:){2,7}0{0,3}1$/.test(h) || h === '::1'
  return false
}

/** Throws unless the token is usable in a header and long enough. */
export function checkToken(token: string): void {
  if (token.length < MIN_TOKEN_LENGTH)
    throw new Error(`api token: at least ${MIN_TOKEN_LENGTH} characters are required, got ${token.length}`)
  if (!/^[\x21-\x7e]+$/.test(token))
    throw new Error('api token: only printable ASCII characters without spaces are allowed')
}

/** The token of the settings: `token`, or the first line of `tokenFile`; undefined when neither is set. */
export async function resolveApiToken(api: ApiSettings): Promise<string | undefined> {
  if (api.token !== undefined && api.tokenFile !== undefined)
    throw new Error('api: set token or tokenFile, not both')
  if (api.token !== undefined) return api.token
  if (api.tokenFile === undefined) return undefined
  let text: string
  try {
    text = await readFile(api.tokenFile, 'utf8')
  } catch (err) {
    throw new Error(`api.tokenFile "${api.tokenFile}": ${(err as Error).message}`)
  }
  const first = text.split(/\r?\n/)[0]?.trim() ?? ''
  if (first === '') throw new Error(`api.tokenFile "${api.tokenFile}": the first line is empty`)
  return first
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/** Checks `Authorization` header values against one token in constant time. */
export class BearerAuth {
  private readonly expected: Buffer

  constructor(token: string) {
    checkToken(token)
    this.expected = digest(token)
  }

  /** 'ok', 'missing' (no bearer credentials) or 'invalid' (wrong token). */
  check(header: string | undefined): 'ok' | 'missing' | 'invalid' {
    if (header === undefined) return 'missing'
    const m = /^Bearer +(\S+) *$/i.exec(header)
    if (m === null || m[1] === undefined) return 'missing'
    return timingSafeEqual(digest(m[1]), this.expected) ? 'ok' : 'invalid'
  }
}
