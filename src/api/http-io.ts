/**
 * Request and response plumbing of the REST API on node:http: a bounded JSON body reader and uniform JSON
 * responses. Every error response has the shape `{ "errors": ["..."] }` with a short message and never a
 * stack trace (RFC 9110 status codes: 400, 401, 404, 405 + Allow, 413, 415, 500).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** An error that becomes an HTTP status and message; anything else thrown is a 500. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly headers: Record<string, string> = {},
  ) {
    super(errors.join('; '))
  }
}

const COMMON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body, null, 2)}\n`
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  })
  res.end(text)
}

export function sendBytes(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: Uint8Array | string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'content-type': contentType,
    'content-length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength),
    ...headers,
  })
  res.end(body)
}

export function sendError(res: ServerResponse, e: HttpError): void {
  sendJson(res, e.status, { errors: e.errors }, e.headers)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Reads a JSON request body of at most `limit` octets. 415 unless Content-Type is application/json,
 * 413 above the limit (announced or actual), 400 for bad UTF-8, an empty body or bad JSON.
 */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json')
    throw new HttpError(415, [
      `Content-Type must be application/json, got "${req.headers['content-type'] ?? ''}"`,
    ])
  const announced = Number(req.headers['content-length'] ?? 0)
  const tooLarge = (): HttpError =>
    new HttpError(413, [`request body larger than ${limit} bytes`], { connection: 'close' })
  if (announced > limit) throw tooLarge()
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength
      if (size <= limit) {
        parts.push(chunk)
        return
      }
      // Stop buffering but keep the socket, so the 413 can still be written; `connection: close` ends it.
      req.off('data', onData)
      req.pause()
      reject(tooLarge())
    }
    req.on('data', onData)
    req.once('end', () => resolve(Buffer.concat(parts)))
    req.once('error', reject)
  })
  let text: string
  try {
    text = utf8.decode(raw)
  } catch {
    throw new HttpError(400, ['request body is not valid UTF-8'])
  }
  if (text.trim() === '') throw new HttpError(400, ['request body is empty; a JSON document is expected'])
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new HttpError(400, [`request body is not valid JSON: ${(err as Error).message}`])
  }
}

/** Narrows a parsed body to a plain object, or 400 naming what was expected. */
export function expectObject(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, [`${what}: a JSON object is expected`])
  return body as Record<string, unknown>
}
