/**
 * Validation of a whole probe settings document, whether it comes from the YAML file, JSON over REST
 * (`PUT /api/v1/telemetry/settings`) or CLI flags: a JSON Schema (ajv, all errors, no unknown keys) for
 * types and ranges, then the checks a schema cannot express (collector addresses, duplicates, field
 * groups, TLS files, the API token rule, address families). Every error names the key path, e.g.
 * `activeTimeout: must be an integer from 1 to 86400 (got 0)` or `collectors[1]: ...`. Missing keys take
 * their DEFAULT_SETTINGS value. The rules are documented key by key in docs/settings.md.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isIP } from 'node:net'
import type { Ajv, ErrorObject } from 'ajv'
import { FIELD_GROUPS } from '../flow/fields/index.js'
import { parseCollectorAddress } from '../ipfix/transport.js'
import {
  canonicalIp,
  hasControlChars,
  hostProblem,
  isLoopback,
  parseListenAddress,
  printable,
} from './address.js'
import { DEFAULT_SETTINGS, type ProbeSettings } from './settings.js'

/** Seconds: the limits of both flow timeouts. */
export const TIMEOUT_MIN = 1
export const TIMEOUT_MAX = 86400
/** A token guarding an API reachable from other hosts must be at least this long. */
export const MIN_REMOTE_TOKEN_LENGTH = 16
export const MAX_COLLECTORS = 16
export const MAX_INTERFACES = 64

const int = (minimum: number, maximum: number): Record<string, unknown> => ({
  type: 'integer',
  minimum,
  maximum,
})
const str = (maxLength: number): Record<string, unknown> => ({ type: 'string', maxLength })

/** The JSON Schema of a settings document (every key optional; defaults fill the gaps). */
export const SETTINGS_JSON_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    collectors: { type: 'array', maxItems: MAX_COLLECTORS, items: str(300) },
    exportProtocol: { type: 'string', enum: ['ipfix', 'netflow-v9', 'netflow-v5'] },
    transport: { type: 'string', enum: ['udp', 'tcp', 'tls'] },
    tls: {
      type: 'object',
      additionalProperties: false,
      properties: { caFile: str(4096), certFile: str(4096), keyFile: str(4096), serverName: str(253) },
    },
    activeTimeout: int(TIMEOUT_MIN, TIMEOUT_MAX),
    inactiveTimeout: int(TIMEOUT_MIN, TIMEOUT_MAX),
    fields: { type: 'array', maxItems: 64, items: str(64) },
    interfaces: { type: 'array', maxItems: MAX_INTERFACES, items: str(64) },
    capture: {
      type: 'object',
      additionalProperties: false,
      properties: {
        promiscuous: { type: 'boolean' },
        snaplen: int(64, 262144),
        bufferBytes: int(65536, 1024 * 1024 * 1024),
        filter: str(8192),
      },
    },
    sourceAddress: str(64),
    observationDomainId: int(0, 0xffffffff),
    mtu: int(576, 65535),
    workers: int(1, 64),
    api: {
      type: 'object',
      additionalProperties: false,
      properties: { listen: str(300), token: str(4096), tokenFile: str(4096) },
    },
  },
} as const

/** One problem, located by its key path in the document (YAML positions are found from it). */
export interface SettingsIssue {
  path: (string | number)[]
  message: string
}

export interface ValidateOptions {
  /**
   * The document must be enough to run the probe service: at least one collector. Default true; false
   * for a partial document (e.g. a file that only changes timeouts before the collector is known).
   */
  requireCollectors?: boolean
  /** Check that TLS files and the token file exist and are readable (default true). */
  checkFiles?: boolean
  /**
   * Interface check supplied by the capture layer (exists, has an IP address): returns why the interface
   * cannot be used, or undefined when it can. Not called when absent.
   */
  checkInterface?: (name: string) => string | undefined
}

export type ValidationResult =
  | { ok: true; settings: ProbeSettings; warnings: string[] }
  | { ok: false; errors: string[]; warnings: string[] }

export interface SettingsCheck {
  /** The settings with defaults filled in; present only when there is no error. */
  settings?: ProbeSettings
  errors: SettingsIssue[]
  warnings: SettingsIssue[]
}

let compiled: ReturnType<Ajv['compile']> | undefined
function schemaValidator(): ReturnType<Ajv['compile']> {
  if (compiled === undefined) {
    // ajv is loaded on first use: `flowtel probe --read` imports this module (through the settings flags)
    // but never validates a document, and loading ajv costs about 0.1 CPU-s of start-up.
    const { Ajv: AjvClass } = createRequire(import.meta.url)('ajv') as { Ajv: typeof Ajv }
    compiled = new AjvClass({ allErrors: true, verbose: true, strict: true }).compile(SETTINGS_JSON_SCHEMA)
  }
  return compiled
}

/** `activeTimeout`, `collectors[1]`, `capture.snaplen`; '' for the document itself. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = ''
  for (const p of path)
    if (typeof p === 'number') out += `[${p}]`
    // A key that is not a plain name (from a hand-written or hostile document) is shown quoted.
    else if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(p)) out += `["${printable(p, 40)}"]`
    else out += out === '' ? p : `.${p}`
  return out
}

export function formatIssue(issue: SettingsIssue): string {
  const where = formatPath(issue.path)
  return where === '' ? issue.message : `${where}: ${issue.message}`
}

/** Validates a settings document and fills defaults; never throws. */
export function validateSettings(doc: unknown, opts: ValidateOptions = {}): ValidationResult {
  const r = checkSettings(doc, opts)
  const warnings = r.warnings.map(formatIssue)
  if (r.settings !== undefined && r.errors.length === 0) return { ok: true, settings: r.settings, warnings }
  return { ok: false, errors: r.errors.map(formatIssue), warnings }
}

/** Like validateSettings, with the key path of each problem kept apart (for YAML line numbers). */
export function checkSettings(doc: unknown, opts: ValidateOptions = {}): SettingsCheck {
  try {
    return check(doc, opts)
  } catch (e) {
    // A bug here must not take the service or the API down; report it as a validation failure.
    return { errors: [{ path: [], message: `internal error while validating: ${String(e)}` }], warnings: [] }
  }
}

function check(doc: unknown, opts: ValidateOptions): SettingsCheck {
  const errors: SettingsIssue[] = []
  const warnings: SettingsIssue[] = []
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    errors.push({ path: [], message: `settings must be a mapping of keys to values (got ${describe(doc)})` })
    return { errors, warnings }
  }
  const validate = schemaValidator()
  const bad = new Set<string>()
  if (!validate(doc)) {
    const seen = new Set<string>()
    for (const e of validate.errors ?? []) {
      const issue = schemaIssue(e)
      const key = formatPath(issue.path)
      if (seen.has(key)) continue
      seen.add(key)
      errors.push(issue)
      // Any error under a key stops the semantic checks of that key and its parents' dependants.
      for (let i = 1; i <= issue.path.length; i++) bad.add(formatPath(issue.path.slice(0, i)))
    }
  }
  const s = withDefaults(doc)
  const ok = (key: string): boolean => !bad.has(key)
  const err = (path: (string | number)[], message: string): void => void errors.push({ path, message })
  const warn = (path: (string | number)[], message: string): void => void warnings.push({ path, message })

  // Collectors: each parsed as the exporter will, duplicates rejected.
  const collectorHosts: { host: string; index: number }[] = []
  if (ok('collectors')) {
    const seen = new Map<string, number>()
    s.collectors = s.collectors.map((c) => c.trim())
    s.collectors.forEach((c, i) => {
      let parsed: { host: string; port: number }
      try {
        parsed = parseCollectorAddress(c)
      } catch (e) {
        err(['collectors', i], collectorMessage(e, c))
        return
      }
      const problem = hostProblem(parsed.host)
      if (problem !== undefined) return err(['collectors', i], `${problem} in "${printable(c)}"`)
      const key = `${canonicalIp(parsed.host)}:${parsed.port}`
      const first = seen.get(key)
      if (first !== undefined)
        return err(['collectors', i], `duplicate of collectors[${first}] (${s.collectors[first] ?? ''})`)
      seen.set(key, i)
      collectorHosts.push({ host: parsed.host, index: i })
    })
    if (s.collectors.length === 0 && opts.requireCollectors !== false)
      err(['collectors'], 'at least one collector is needed, e.g. collectors: ["192.0.2.10:4739"]')
  }

  if (ok('activeTimeout') && ok('inactiveTimeout') && s.inactiveTimeout > s.activeTimeout)
    err(
      ['inactiveTimeout'],
      `must not be longer than activeTimeout (${s.inactiveTimeout} > ${s.activeTimeout}): ` +
        'the active timeout would always end the flow first',
    )

  if (ok('fields')) s.fields = checkFields(s.fields, err)

  // Export protocol and transport.
  const proto = s.exportProtocol
  if (ok('exportProtocol') && ok('transport') && proto !== 'ipfix' && s.transport !== 'udp')
    err(['transport'], `${proto} is exported over UDP only (got ${s.transport}); use ipfix for tcp or tls`)
  if (ok('exportProtocol') && proto === 'netflow-v5') {
    warn(['exportProtocol'], 'netflow-v5 carries IPv4 flows only; IPv6 flows are not exported')
    if (ok('fields') && s.fields.length > 0)
      warn(
        ['fields'],
        `netflow-v5 records have a fixed layout; groups ${s.fields.join(', ')} are not exported`,
      )
  }

  if (ok('tls') && ok('transport')) checkTls(s, opts, err, warn)
  if (ok('interfaces')) checkInterfaces(s.interfaces, opts, err, warn)
  if (ok('capture') && hasControlChars(s.capture.filter, '\t\n\r'))
    err(['capture', 'filter'], 'must not contain control characters')

  if (ok('sourceAddress') && s.sourceAddress !== '') {
    const family = isIP(s.sourceAddress)
    if (family === 0)
      err(['sourceAddress'], `must be an IP address or '' (got "${printable(s.sourceAddress)}")`)
    else if (s.sourceAddress === '0.0.0.0' || canonicalIp(s.sourceAddress) === '::')
      err(['sourceAddress'], `${s.sourceAddress} is the unspecified address; use '' to let the OS choose`)
    else
      for (const c of collectorHosts) {
        const cf = isIP(c.host)
        if (cf !== 0 && cf !== family)
          err(
            ['sourceAddress'],
            `IPv${family} address ${s.sourceAddress} cannot reach IPv${cf} collector collectors[${c.index}]`,
          )
      }
  }

  if (ok('api')) checkApi(s, opts, err)

  return errors.length === 0 ? { settings: s, errors, warnings } : { errors, warnings }
}

/** DEFAULT_SETTINGS overlaid with the document's keys (objects merged one level deep). */
function withDefaults(doc: Partial<ProbeSettings>): ProbeSettings {
  const d = structuredClone(DEFAULT_SETTINGS)
  const src = structuredClone(doc) as Record<string, unknown>
  const out = { ...d, ...src }
  const obj = (v: unknown): Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
  out.tls = { ...d.tls, ...obj(src.tls) }
  out.capture = { ...d.capture, ...obj(src.capture) }
  out.api = { ...d.api, ...obj(src.api) }
  return out
}

function checkFields(fields: string[], err: (p: (string | number)[], m: string) => void): string[] {
  const groups = Object.keys(FIELD_GROUPS).filter((g) => g !== 'core')
  const on = new Set<string>()
  fields.forEach((name, i) => {
    const g = name.trim().toLowerCase()
    if (g === 'core') return // always on
    if (g === 'all') return groups.forEach((x) => on.add(x))
    if (g === 'default') return groups.filter((x) => FIELD_GROUPS[x]?.defaultOn).forEach((x) => on.add(x))
    if (FIELD_GROUPS[g] !== undefined) return void on.add(g)
    err(['fields', i], `unknown group "${printable(name)}"; known: ${groups.join(', ')} (core is always on)`)
  })
  // Registry order: the order of the fields in the template.
  return groups.filter((g) => on.has(g))
}

function checkTls(
  s: ProbeSettings,
  opts: ValidateOptions,
  err: (p: (string | number)[], m: string) => void,
  warn: (p: (string | number)[], m: string) => void,
): void {
  const set = Object.keys(s.tls).filter((k) => s.tls[k as keyof typeof s.tls] !== undefined)
  if (s.transport !== 'tls') {
    if (set.length > 0) warn(['tls'], `ignored unless transport is tls (transport is ${s.transport})`)
    return
  }
  if ((s.tls.certFile === undefined) !== (s.tls.keyFile === undefined))
    err(['tls', s.tls.certFile === undefined ? 'certFile' : 'keyFile'], 'certFile and keyFile go together')
  if (opts.checkFiles !== false)
    for (const key of ['caFile', 'certFile', 'keyFile'] as const) {
      const file = s.tls[key]
      if (file === undefined) continue
      const problem = unreadable(file)
      if (problem !== undefined) err(['tls', key], problem)
    }
  if (s.tls.serverName !== undefined) {
    const problem = hostProblem(s.tls.serverName)
    if (problem !== undefined) err(['tls', 'serverName'], problem)
  }
}

function checkInterfaces(
  names: string[],
  opts: ValidateOptions,
  err: (p: (string | number)[], m: string) => void,
  warn: (p: (string | number)[], m: string) => void,
): void {
  if (names.length === 0) warn(['interfaces'], 'none listed; nothing is captured')
  const seen = new Map<string, number>()
  names.forEach((name, i) => {
    // Linux interface names: 1..15 bytes (IFNAMSIZ - 1), no '/', no whitespace, not '.' or '..'.
    if (
      name === '' ||
      name.length > 15 ||
      /[/\s:]/.test(name) ||
      hasControlChars(name) ||
      name === '.' ||
      name === '..'
    )
      return err(
        ['interfaces', i],
        `"${printable(name)}" is not an interface name (1 to 15 characters, no '/', ':' or spaces)`,
      )
    const first = seen.get(name)
    if (first !== undefined) return err(['interfaces', i], `duplicate of interfaces[${first}] (${name})`)
    seen.set(name, i)
    const problem = opts.checkInterface?.(name)
    if (problem !== undefined) err(['interfaces', i], problem)
  })
}

function checkApi(s: ProbeSettings, opts: ValidateOptions, err: (p: (string | number)[], m: string) => void) {
  let remote = false
  try {
    const { host } = parseListenAddress(s.api.listen)
    remote = !isLoopback(host)
  } catch (e) {
    err(['api', 'listen'], (e as Error).message)
  }
  const { token, tokenFile } = s.api
  if (token !== undefined && tokenFile !== undefined) return err(['api'], 'set token or tokenFile, not both')
  let secret = token
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token))
    return err(['api', 'token'], 'must be printable ASCII without spaces (it goes in an HTTP header)')
  if (tokenFile !== undefined && opts.checkFiles !== false) {
    const problem = unreadable(tokenFile)
    if (problem !== undefined) return err(['api', 'tokenFile'], problem)
    secret = (readFileSync(tokenFile, 'utf8').split(/\r?\n/)[0] ?? '').trim()
    if (!/^[\x21-\x7e]+$/.test(secret))
      return err(['api', 'tokenFile'], 'the first line must hold the token (printable ASCII, no spaces)')
  }
  if (!remote) return
  if (token === undefined && tokenFile === undefined)
    return err(
      ['api', 'token'],
      `required when api.listen (${s.api.listen}) is not a loopback address; set api.token or api.tokenFile`,
    )
  if (secret !== undefined && secret.length < MIN_REMOTE_TOKEN_LENGTH)
    err(
      ['api', tokenFile !== undefined ? 'tokenFile' : 'token'],
      `must be at least ${MIN_REMOTE_TOKEN_LENGTH} characters when the API listens beyond loopback (got ${secret.length})`,
    )
}

/** Why a file cannot be read, or undefined. */
function unreadable(file: string): string | undefined {
  try {
    if (!statSync(file).isFile()) return `"${printable(file)}" is not a regular file`
    accessSync(file, constants.R_OK)
    return undefined
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return `file "${printable(file)}" does not exist`
    if (code === 'EACCES') return `file "${printable(file)}" is not readable`
    return `file "${printable(file)}": ${(e as Error).message}`
  }
}

function collectorMessage(e: unknown, c: string): string {
  const m = e instanceof Error ? e.message : String(e)
  return m.replace(/^collector address "[^]*?": /, '') + ` (got "${printable(c)}")`
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'string') return `"${printable(v, 60)}"`
  if (typeof v === 'object') return 'a mapping'
  return printable(JSON.stringify(v) ?? typeof v, 60)
}

/** One ajv error as a key path and a sentence. */
function schemaIssue(e: ErrorObject): SettingsIssue {
  const path: (string | number)[] = e.instancePath
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((seg) => (/^\d+$/.test(seg) ? Number(seg) : seg))
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>
  const got = describe(e.data)
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty)
      const known = Object.keys(parent.properties ?? {})
      const hint = suggest(key, known)
      return {
        path: [...path, key],
        message: `unknown key${hint !== undefined ? `; did you mean "${hint}"?` : ''} (known: ${known.join(', ')})`,
      }
    }
    case 'type':
    case 'minimum':
    case 'maximum':
      if (parent.type === 'integer')
        return {
          path,
          message: `must be an integer from ${String(parent.minimum)} to ${String(parent.maximum)} (got ${got})`,
        }
      if (parent.type === 'array') return { path, message: `must be a list (got ${got})` }
      if (parent.type === 'boolean') return { path, message: `must be true or false (got ${got})` }
      if (parent.type === 'object') return { path, message: `must be a mapping of keys (got ${got})` }
      if (parent.type === 'string') return { path, message: `must be a string (got ${got})` }
      break
    case 'enum':
      return { path, message: `must be one of ${(parent.enum as string[]).join(', ')} (got ${got})` }
    case 'maxItems':
      return {
        path,
        message: `at most ${String(parent.maxItems)} entries (got ${(e.data as unknown[]).length})`,
      }
    case 'maxLength':
      return {
        path,
        message: `at most ${String(parent.maxLength)} characters (got ${(e.data as string).length})`,
      }
  }
  return { path, message: e.message ?? e.keyword }
}

/** The known key an unknown one was probably meant to be (case, '-', '_', a prefix, or two typos apart). */
export function suggest(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '')
  const exact = known.find((k) => norm(k) === norm(key))
  if (exact !== undefined) return exact
  const prefix = known.find((k) => key.length >= 4 && norm(k).startsWith(norm(key)))
  if (prefix !== undefined) return prefix
  let best: string | undefined
  let bestD = 3
  for (const k of known) {
    const d = editDistance(norm(key), norm(k))
    if (d < bestD) [best, bestD] = [k, d]
  }
  return best
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64 || b.length > 64) return 99
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++)
      cur.push(
        Math.min(
          (prev[j] ?? 0) + 1,
          (cur[j - 1] ?? 0) + 1,
          (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
        ),
      )
    prev = cur
  }
  return prev[b.length] ?? 99
}
