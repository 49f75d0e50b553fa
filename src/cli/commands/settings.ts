/**
 * `flowtel settings`: read and change the probe settings in the config file or through a running probe's
 * REST API (`GET`/`PUT /api/v1/telemetry/settings`, `POST /api/v1/telemetry/validate`, Bearer token), run
 * Validate (an ICMP echo to a collector host) and check a config file. Exit codes: 0 success / reachable,
 * 1 unreachable or a failure talking to the API, 2 bad input (invalid settings, address or arguments).
 * The settings keys are documented in docs/settings.md.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { Command, Option } from 'commander'
import { stringify } from 'yaml'
import { loadSettings, readSettingsDocument, saveSettings } from '../../config/load.js'
import { observationDomainFor } from '../../config/observation-domain.js'
import { SETTINGS_JSON_SCHEMA, suggest, validateSettings } from '../../config/schema.js'
import type { ProbeSettings } from '../../config/settings.js'
import type { ValidateResult } from '../../probe/control.js'
import { InvalidAddressError, parseValidateAddress, validateCollector } from '../../probe/validate.js'
import { commaList } from '../../util/comma-list.js'

/** The local probe's API when neither --config nor --api is given (the default api.listen). */
export const DEFAULT_API_URL = 'http://127.0.0.1:8765'
const SETTINGS_PATH = '/api/v1/telemetry/settings'
const VALIDATE_PATH = '/api/v1/telemetry/validate'
/** What `get` prints for the token (the REST API shows the same). */
const REDACTED = '<redacted>'

interface SourceFlags {
  config?: string
  api?: string
  token?: string
  tokenFile?: string
  json?: boolean
  showToken?: boolean
}

/** A usage or input error: printed, exit code 2. */
class BadInput extends Error {}

export function settingsCommand(): Command {
  const cmd = new Command('settings').description(
    'read and change the probe settings (config file or REST API), Validate a collector, check a file',
  )
  sourceOptions(
    cmd
      .command('get')
      .description('print the settings as YAML (or --json)')
      .option('--json', 'print JSON instead of YAML')
      .option('--show-token', 'print api.token from the file instead of <redacted>'),
  ).action((flags: SourceFlags) => run(() => getAction(flags)))
  sourceOptions(
    cmd
      .command('set')
      .description(
        'change settings: KEY=VALUE ... (e.g. activeTimeout=60 collectors=1.1.1.1:2055 fields=l2,npm)',
      )
      .argument('<key=value...>', 'dotted key (capture.snaplen) = value; lists comma separated; KEY= clears'),
  ).action((pairs: string[], flags: SourceFlags) => run(() => setAction(pairs, flags)))
  cmd
    .command('validate')
    .description('ICMP echo to a collector host; exit 0 reachable, 1 not reachable, 2 bad address')
    .argument('<address>', 'host[:port]: 1.1.1.1:2055, collector.local, [2001:db8::1]:4739')
    .addOption(new Option('--wait <s>', 'seconds to wait for the reply (1..10)').default('2'))
    .option('--json', 'print the result as JSON')
    .option('--api <url>', "ask a running probe's API instead of pinging from here")
    .option('--token <token>', 'API bearer token (or FLOWTEL_API_TOKEN)')
    .option('--token-file <file>', 'file whose first line is the API token')
    .action((address: string, flags: SourceFlags & { wait: string }) =>
      run(() => validateAction(address, flags)),
    )
  cmd
    .command('check')
    .description('validate a config file and print every error (exit 2 when invalid)')
    .requiredOption('--config <file>', 'YAML settings file')
    .option('--json', 'print the settings with defaults filled in, as JSON')
    .action((flags: SourceFlags) => run(() => checkAction(flags)))
  // A usage error (missing argument, unknown option) is bad input: exit 2, as for a bad address.
  for (const sub of cmd.commands) sub.exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2))
  return cmd
}

function sourceOptions(c: Command): Command {
  return c
    .option('--config <file>', 'YAML settings file')
    .option(
      '--api <url>',
      `REST API of a running probe (default ${DEFAULT_API_URL} when --config is not given)`,
    )
    .option('--token <token>', 'API bearer token (or FLOWTEL_API_TOKEN)')
    .option('--token-file <file>', 'file whose first line is the API token')
}

/** Runs an action; BadInput → message and exit code 2; the action's own result is the exit code. */
async function run(action: () => number | Promise<number>): Promise<void> {
  try {
    process.exitCode = await action()
  } catch (e) {
    if (!(e instanceof BadInput)) throw e
    process.stderr.write(`flowtel settings: ${e.message}\n`)
    process.exitCode = 2
  }
}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`)
}
function err(s: string): void {
  process.stderr.write(s.endsWith('\n') ? s : `${s}\n`)
}

function render(settings: unknown, json: boolean | undefined): string {
  return json === true ? JSON.stringify(settings, null, 2) : stringify(settings, { lineWidth: 0 })
}

async function getAction(flags: SourceFlags): Promise<number> {
  if (flags.config !== undefined && flags.api !== undefined)
    throw new BadInput('give --config or --api, not both')
  if (flags.config !== undefined) {
    const r = loadSettings(flags.config)
    for (const w of r.warnings) err(`warning: ${w}`)
    if (!r.ok) return printErrors(r.errors)
    const shown =
      r.settings.api.token !== undefined && flags.showToken !== true
        ? { ...r.settings, api: { ...r.settings.api, token: REDACTED } }
        : r.settings
    out(render(shown, flags.json))
    return 0
  }
  const api = apiClient(flags)
  const got = await api.request('GET', SETTINGS_PATH)
  if (!got.ok) return reportApiFailure('GET', got)
  out(render(unwrapSettings(got.body), flags.json))
  return 0
}

async function setAction(pairs: string[], flags: SourceFlags): Promise<number> {
  if (flags.config !== undefined && flags.api !== undefined)
    throw new BadInput('give --config or --api, not both')
  const changes = pairs.map(parseAssignment)
  if (flags.config !== undefined) {
    const file = flags.config
    let doc: Record<string, unknown> = {}
    if (existsSync(file)) {
      const raw = readSettingsDocument(file)
      if (!raw.ok) return printErrors(raw.errors)
      doc = raw.doc
    }
    for (const c of changes) assign(doc, c)
    const r = validateSettings(doc)
    for (const w of r.warnings) err(`warning: ${w}`)
    if (!r.ok) return printErrors(r.errors.map((e) => `${file}: ${e}`))
    try {
      saveSettings(file, r.settings)
    } catch (e) {
      err(`flowtel settings: ${(e as Error).message}`)
      return 1
    }
    for (const c of changes)
      out(`${file}: ${c.key.join('.')} = ${JSON.stringify(readPath(r.settings, c.key))}`)
    if (r.settings.api.token !== undefined && (statSync(file).mode & 0o077) !== 0)
      err(
        `warning: ${file} holds api.token and other users can read it (chmod 600 ${file}, or use api.tokenFile)`,
      )
    return 0
  }
  const api = apiClient(flags)
  const got = await api.request('GET', SETTINGS_PATH)
  if (!got.ok) return reportApiFailure('GET', got)
  const doc = structuredClone(unwrapSettings(got.body)) as Record<string, unknown>
  for (const c of changes) assign(doc, c)
  const put = await api.request('PUT', SETTINGS_PATH, doc)
  if (!put.ok) return reportApiFailure('PUT', put)
  const now = unwrapSettings(put.body ?? doc) as Record<string, unknown>
  for (const c of changes) out(`${api.base}: ${c.key.join('.')} = ${JSON.stringify(readPath(now, c.key))}`)
  return 0
}

async function validateAction(address: string, flags: SourceFlags & { wait: string }): Promise<number> {
  if (!/^\d{1,2}$/.test(flags.wait) || Number(flags.wait) < 1 || Number(flags.wait) > 10)
    throw new BadInput(`--wait must be a whole number of seconds from 1 to 10 (got "${flags.wait}")`)
  try {
    parseValidateAddress(address)
  } catch (e) {
    if (e instanceof InvalidAddressError) throw new BadInput(`invalid address: ${e.message}`)
    throw e
  }
  let result: ValidateResult
  if (flags.api !== undefined) {
    const api = apiClient(flags)
    const r = await api.request('POST', VALIDATE_PATH, { address })
    if (!r.ok) return reportApiFailure('POST', r)
    result = r.body as ValidateResult
  } else result = await validateCollector(address, { waitSeconds: Number(flags.wait) })
  if (flags.json === true) out(JSON.stringify(result))
  else if (result.reachable)
    out(`reachable: ${result.address} (${result.resolved}) rtt ${result.rttMs ?? '?'} ms`)
  else
    out(
      `unreachable: ${result.address}${result.resolved !== '' ? ` (${result.resolved})` : ''}: ${result.error ?? 'no reply'}`,
    )
  return result.reachable ? 0 : 1
}

function checkAction(flags: SourceFlags): number {
  const file = flags.config ?? ''
  const r = loadSettings(file)
  for (const w of r.warnings) err(`warning: ${w}`)
  if (!r.ok) return printErrors(r.errors)
  const domain = observationDomainFor(r.settings)
  if (flags.json === true) out(JSON.stringify(r.settings, null, 2))
  else out(`${file}: ok (observation domain ${domain.id}, ${domain.from})`)
  return 0
}

function printErrors(errors: string[]): number {
  for (const e of errors) err(e)
  return 2
}

// --- KEY=VALUE -------------------------------------------------------------------------------------------

interface Assignment {
  key: string[]
  /** undefined removes the key (its default applies). */
  value: unknown
}

type SchemaNode = { type?: string; properties?: Record<string, SchemaNode> }

/** `capture.snaplen=128` → { key: ['capture','snaplen'], value: 128 }, typed by the settings schema. */
export function parseAssignment(text: string): Assignment {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new BadInput(`"${text}": expected KEY=VALUE, e.g. activeTimeout=60`)
  const key = text.slice(0, eq).trim().split('.')
  const raw = text.slice(eq + 1)
  let node: SchemaNode = SETTINGS_JSON_SCHEMA
  for (const [i, k] of key.entries()) {
    const props = node.properties ?? {}
    const next = Object.hasOwn(props, k) ? props[k] : undefined
    if (next === undefined) {
      const where = key.slice(0, i).join('.')
      const hint = suggest(k, Object.keys(props))
      throw new BadInput(
        `unknown key "${key.slice(0, i + 1).join('.')}"${hint !== undefined ? `; did you mean "${[...key.slice(0, i), hint].join('.')}"?` : ''}` +
          ` (keys${where !== '' ? ` of ${where}` : ''}: ${Object.keys(props).join(', ')})`,
      )
    }
    node = next
  }
  const value = raw.trim()
  switch (node.type) {
    case 'integer':
      return { key, value: value === '' ? undefined : /^\d{1,16}$/.test(value) ? Number(value) : raw }
    case 'boolean': {
      const b = { true: true, yes: true, on: true, false: false, no: false, off: false }[value.toLowerCase()]
      return { key, value: value === '' ? undefined : (b ?? raw) }
    }
    case 'array':
      return {
        key,
        value: commaList(value),
      }
    case 'object':
      if (value !== '')
        throw new BadInput(`${key.join('.')} is a group of keys; set ${key.join('.')}.KEY=VALUE`)
      return { key, value: {} }
    default:
      // Strings: an empty value removes an optional key (token, tls files) and clears the others.
      return { key, value: value === '' && isOptional(key) ? undefined : raw }
  }
}

function isOptional(key: string[]): boolean {
  const k = key.join('.')
  return k.startsWith('tls.') || k === 'api.token' || k === 'api.tokenFile'
}

function assign(doc: Record<string, unknown>, a: Assignment): void {
  let o = doc
  for (const k of a.key.slice(0, -1)) {
    const next = o[k]
    if (next === null || typeof next !== 'object' || Array.isArray(next)) o[k] = {}
    o = o[k] as Record<string, unknown>
  }
  const last = a.key[a.key.length - 1] as string
  if (a.value === undefined) delete o[last]
  else o[last] = a.value
}

function readPath(o: unknown, key: string[]): unknown {
  let v = o
  for (const k of key) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined
  return v ?? null
}

// --- REST client -----------------------------------------------------------------------------------------

interface ApiReply {
  ok: boolean
  status: number
  body: unknown
  /** Set when no HTTP reply came (connection refused, bad URL, ...). */
  failure?: string
}

function apiClient(flags: SourceFlags): {
  base: string
  request: (method: string, path: string, body?: unknown) => Promise<ApiReply>
} {
  const base = (flags.api ?? DEFAULT_API_URL).replace(/\/+$/, '')
  let url: URL
  try {
    url = new URL(base)
  } catch {
    throw new BadInput(`--api: "${base}" is not a URL (e.g. ${DEFAULT_API_URL})`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new BadInput(`--api: only http and https URLs (got ${url.protocol})`)
  if (flags.token !== undefined && flags.tokenFile !== undefined)
    throw new BadInput('give --token or --token-file, not both')
  let token = flags.token ?? process.env.FLOWTEL_API_TOKEN
  if (flags.tokenFile !== undefined) {
    try {
      token = (readFileSync(flags.tokenFile, 'utf8').split(/\r?\n/)[0] ?? '').trim()
    } catch (e) {
      throw new BadInput(`--token-file: ${(e as Error).message}`)
    }
  }
  return {
    base,
    request: async (method, path, body) => {
      const headers: Record<string, string> = { accept: 'application/json' }
      if (token !== undefined && token !== '') headers.authorization = `Bearer ${token}`
      if (body !== undefined) headers['content-type'] = 'application/json'
      try {
        const res = await fetch(`${base}${path}`, {
          method,
          headers,
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(15_000),
        })
        const text = await res.text()
        let parsed: unknown = text
        try {
          parsed = text === '' ? undefined : JSON.parse(text)
        } catch {
          // keep the text
        }
        return { ok: res.ok, status: res.status, body: parsed }
      } catch (e) {
        return { ok: false, status: 0, body: undefined, failure: networkError(e) }
      }
    },
  }
}

/** The system error code behind a failed fetch (ECONNREFUSED, ENOTFOUND, ...), else its message. */
function networkError(e: unknown): string {
  const codeOf = (x: unknown): string | undefined =>
    x !== null && typeof x === 'object' && typeof (x as { code?: unknown }).code === 'string'
      ? (x as { code: string }).code
      : undefined
  const cause = (e as { cause?: unknown }).cause
  const inner = (cause as { errors?: unknown } | undefined)?.errors
  const fromList = Array.isArray(inner) ? inner.map(codeOf).find((c) => c !== undefined) : undefined
  const code = codeOf(cause) ?? fromList
  if (code !== undefined && code !== 'UND_ERR_SOCKET') return code
  if (cause instanceof Error) return cause.message
  return e instanceof Error ? e.message : String(e)
}

/** The settings from a reply body: the document itself or `{ settings: {...} }`. */
function unwrapSettings(body: unknown): ProbeSettings | Record<string, unknown> {
  if (body !== null && typeof body === 'object' && 'settings' in body) {
    const s = body.settings
    if (s !== null && typeof s === 'object') return s as Record<string, unknown>
  }
  return (body ?? {}) as Record<string, unknown>
}

/** Prints the server's error list; 400/422 (rejected input) → 2, anything else → 1. */
function reportApiFailure(method: string, r: ApiReply): number {
  if (r.failure !== undefined) {
    err(`flowtel settings: ${method} failed: ${r.failure}`)
    return 1
  }
  const body = r.body as { errors?: unknown; error?: unknown; message?: unknown } | string | undefined
  const list: string[] = []
  if (typeof body === 'string' && body !== '') list.push(body.slice(0, 500))
  else if (body !== undefined && typeof body === 'object') {
    if (Array.isArray(body.errors))
      list.push(...body.errors.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))))
    else if (typeof body.error === 'string') list.push(body.error)
    else if (typeof body.message === 'string') list.push(body.message)
  }
  err(
    `flowtel settings: ${method} rejected: HTTP ${r.status}${r.status === 401 || r.status === 403 ? ' (check --token)' : ''}`,
  )
  for (const e of list) err(`  ${e}`)
  return r.status === 400 || r.status === 422 ? 2 : 1
}
