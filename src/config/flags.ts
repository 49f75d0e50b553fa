/**
 * Every probe setting as a command-line flag (`flowtel probe --config FILE` or `--interface eth0
 * --collector host:port --active-timeout 300 ...`): the commander option definitions and the overlay of
 * the given flags on a base (the config file's settings, or the defaults). A flag that is not given leaves
 * the base value alone, so no option here has a commander default. Values are checked by the settings
 * schema (config/schema.ts) and errors name the flag, e.g. `--active-timeout: must be an integer ...`.
 */
import { Option, type Command } from 'commander'
import { FIELD_GROUPS } from '../flow/fields/index.js'
import {
  checkSettings,
  formatIssue,
  formatPath,
  type ValidateOptions,
  type ValidationResult,
} from './schema.js'
import { DEFAULT_SETTINGS } from './settings.js'
import { commaList } from '../util/comma-list.js'

/** The flags as commander hands them over (all optional: absent = keep the base value). */
export interface SettingsFlags {
  config?: string
  interface?: string[]
  collector?: string[]
  activeTimeout?: string
  inactiveTimeout?: string
  exportProtocol?: string
  transport?: string
  tlsCa?: string
  tlsCert?: string
  tlsKey?: string
  tlsServerName?: string
  fields?: string
  sourceAddress?: string
  observationDomain?: string
  mtu?: string
  workers?: string
  apiListen?: string
  apiToken?: string
  apiTokenFile?: string
  bpf?: string
  snaplen?: string
  promisc?: boolean
  bufferSize?: string
}

interface FlagDef {
  flags: string
  help: string
  /** The settings key path the flag sets. */
  key: string[]
  kind: 'string' | 'int' | 'list' | 'bool' | 'fields' | 'domain'
  repeatable?: boolean
}

const groups = Object.keys(FIELD_GROUPS).filter((g) => g !== 'core')

/** One entry per flag; the order is the order of `--help`. */
export const SETTINGS_FLAGS: readonly FlagDef[] = [
  {
    flags: '--config <file>',
    help: 'YAML settings file (flags override its values)',
    key: [],
    kind: 'string',
  },
  {
    flags: '-i, --interface <name>',
    help: 'interface to capture on (repeatable, or comma separated)',
    key: ['interfaces'],
    kind: 'list',
    repeatable: true,
  },
  {
    flags: '-c, --collector <host:port>',
    help: 'collector: 1.1.1.1:2055, collector.local:4739 or [2001:db8::1]:4739 (repeatable)',
    key: ['collectors'],
    kind: 'list',
    repeatable: true,
  },
  {
    flags: '--active-timeout <s>',
    help: 'active timeout, 1..86400 s (300)',
    key: ['activeTimeout'],
    kind: 'int',
  },
  {
    flags: '--inactive-timeout <s>',
    help: 'inactive timeout, 1..86400 s (30)',
    key: ['inactiveTimeout'],
    kind: 'int',
  },
  {
    flags: '--export-protocol <p>',
    help: 'ipfix, netflow-v9 or netflow-v5 (ipfix)',
    key: ['exportProtocol'],
    kind: 'string',
  },
  { flags: '-t, --transport <t>', help: 'udp, tcp or tls (udp)', key: ['transport'], kind: 'string' },
  {
    flags: '--tls-ca <file>',
    help: 'TLS: CA certificate (PEM) of the collector',
    key: ['tls', 'caFile'],
    kind: 'string',
  },
  {
    flags: '--tls-cert <file>',
    help: 'TLS: client certificate (PEM)',
    key: ['tls', 'certFile'],
    kind: 'string',
  },
  { flags: '--tls-key <file>', help: 'TLS: client key (PEM)', key: ['tls', 'keyFile'], kind: 'string' },
  {
    flags: '--tls-server-name <name>',
    help: "TLS: name expected in the collector's certificate",
    key: ['tls', 'serverName'],
    kind: 'string',
  },
  {
    flags: '--fields <groups>',
    help: `field groups, comma separated: ${groups.join(', ')}; or all, default, none`,
    key: ['fields'],
    kind: 'fields',
  },
  {
    flags: '--source-address <ip>',
    help: "local address the export leaves from ('' = OS choice)",
    key: ['sourceAddress'],
    kind: 'string',
  },
  {
    flags: '--observation-domain <id>',
    help: 'observation domain ID 0..4294967295, or auto (derived per node)',
    key: ['observationDomainId'],
    kind: 'domain',
  },
  {
    flags: '--mtu <bytes>',
    help: 'link MTU the export datagrams fit, 576..65535 (1500)',
    key: ['mtu'],
    kind: 'int',
  },
  { flags: '--workers <n>', help: 'worker threads, 1..64 (1)', key: ['workers'], kind: 'int' },
  {
    flags: '--api-listen <host:port>',
    help: 'REST API and /metrics address (127.0.0.1:8765)',
    key: ['api', 'listen'],
    kind: 'string',
  },
  {
    flags: '--api-token <token>',
    help: 'REST API bearer token (prefer --api-token-file: flags are visible in ps)',
    key: ['api', 'token'],
    kind: 'string',
  },
  {
    flags: '--api-token-file <file>',
    help: 'file whose first line is the REST API token',
    key: ['api', 'tokenFile'],
    kind: 'string',
  },
  {
    flags: '--bpf <expr>',
    help: 'BPF capture filter (tcpdump syntax)',
    key: ['capture', 'filter'],
    kind: 'string',
  },
  {
    flags: '--snaplen <bytes>',
    help: 'bytes kept per packet, 64..262144',
    key: ['capture', 'snaplen'],
    kind: 'int',
  },
  {
    flags: '--promisc',
    help: 'capture in promiscuous mode (the default)',
    key: ['capture', 'promiscuous'],
    kind: 'bool',
  },
  { flags: '--no-promisc', help: 'do not put interfaces in promiscuous mode', key: [], kind: 'bool' },
  {
    flags: '--buffer-size <bytes>',
    help: 'kernel capture buffer per interface',
    key: ['capture', 'bufferBytes'],
    kind: 'int',
  },
]

/** The long flag name of a definition, e.g. '--active-timeout'. */
function longFlag(def: FlagDef): string {
  return /--[a-z-]+/.exec(def.flags)?.[0] ?? def.flags
}

/** commander's attribute name of a long flag: '--active-timeout' → 'activeTimeout', '--no-promisc' → 'promisc'. */
function attributeName(long: string): string {
  return long.replace(/^--(no-)?/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

/**
 * Adds the settings flags to a command. A flag the command already defines (same long name) is skipped,
 * so a command can keep its own definition; it must then have no default to keep the overlay semantics.
 */
export function addSettingsOptions(cmd: Command): Command {
  const have = new Set(cmd.options.flatMap((o) => [o.long, o.short]))
  for (const def of SETTINGS_FLAGS) {
    const long = longFlag(def)
    if (have.has(long)) continue
    // A short letter the command already uses for something else is left out.
    const short = /^(-[a-zA-Z]), /.exec(def.flags)?.[1]
    const flags = short !== undefined && have.has(short) ? def.flags.slice(short.length + 2) : def.flags
    const opt = new Option(flags, def.help)
    if (def.repeatable === true)
      opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    cmd.addOption(opt)
  }
  return cmd
}

/** A flag value as text (commander gives strings; a command's own parser may give numbers). */
function text(v: unknown): string {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  return JSON.stringify(v) ?? ''
}

const asInt = (v: string): number | string => (/^\s*\d{1,16}\s*$/.test(v) ? Number(v) : v)

/** The base document with the given flags written over it (not validated). */
export function overlayFlags(
  flags: SettingsFlags,
  base: unknown = DEFAULT_SETTINGS,
): Record<string, unknown> {
  const doc = structuredClone(
    base !== null && typeof base === 'object' && !Array.isArray(base) ? base : {},
  ) as Record<string, unknown>
  const given = flags as Record<string, unknown>
  for (const def of SETTINGS_FLAGS) {
    if (def.key.length === 0) continue
    const raw = given[attributeName(longFlag(def))]
    if (raw === undefined) continue
    let value: unknown
    switch (def.kind) {
      case 'string':
        value = raw
        break
      case 'int':
        value = asInt(text(raw))
        break
      case 'bool':
        value = raw
        break
      case 'list':
        value = (Array.isArray(raw) ? raw : [raw]).flatMap((v: unknown) => commaList(text(v)))
        break
      case 'fields': {
        const names = commaList(text(raw))
        value = names.length === 1 && names[0] === 'none' ? [] : names
        break
      }
      case 'domain':
        value = text(raw).trim() === 'auto' ? undefined : asInt(text(raw))
        break
    }
    setPath(doc, def.key, value)
  }
  return doc
}

/**
 * The settings from `base` (a config file's settings or document, DEFAULT_SETTINGS when absent) with the
 * given flags over it, validated; an error about a key a flag set names the flag.
 */
export function settingsFromFlags(
  flags: SettingsFlags,
  base: unknown = DEFAULT_SETTINGS,
  opts: ValidateOptions = {},
): ValidationResult {
  const r = checkSettings(overlayFlags(flags, base), opts)
  const given = flags as Record<string, unknown>
  const byKey = new Map<string, string>()
  for (const def of SETTINGS_FLAGS) {
    const long = longFlag(def)
    if (def.key.length > 0 && given[attributeName(long)] !== undefined) byKey.set(formatPath(def.key), long)
  }
  const name = (issue: { path: (string | number)[]; message: string }): string => {
    for (let n = issue.path.length; n > 0; n--) {
      const flag = byKey.get(formatPath(issue.path.slice(0, n)))
      if (flag !== undefined) {
        const rest = formatPath(issue.path.slice(n))
        return `${flag}${rest === '' ? '' : ` ${rest.replace(/^\./, '')}`}: ${issue.message}`
      }
    }
    return formatIssue(issue)
  }
  const warnings = r.warnings.map(name)
  if (r.settings !== undefined && r.errors.length === 0) return { ok: true, settings: r.settings, warnings }
  return { ok: false, errors: r.errors.map(name), warnings }
}

function setPath(doc: Record<string, unknown>, key: string[], value: unknown): void {
  let o = doc
  for (const k of key.slice(0, -1)) {
    const next = o[k]
    if (next === null || typeof next !== 'object' || Array.isArray(next)) o[k] = {}
    o = o[k] as Record<string, unknown>
  }
  const last = key[key.length - 1] as string
  if (value === undefined) delete o[last]
  else o[last] = value
}
