/**
 * The probe's YAML config file (YAML 1.2, package `yaml`): read → validated settings with errors that carry
 * the file name and line:column of the offending key, and save → YAML that keeps the operator's comments,
 * key order and layout when an existing file is updated (values are set in the parsed document, only keys
 * that change are touched). Keys at their default are not added to a file that does not have them.
 * The keys are documented in docs/settings.md.
 */
import {
  existsSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import {
  Document,
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Node as YamlNode,
  type ParsedNode,
} from 'yaml'
import { checkSettings, formatIssue, type SettingsIssue, type ValidateOptions } from './schema.js'
import { DEFAULT_SETTINGS, type ProbeSettings } from './settings.js'

/** A config file larger than this is refused (a settings file is a few hundred bytes). */
export const MAX_CONFIG_BYTES = 1024 * 1024

export type LoadResult =
  | { ok: true; settings: ProbeSettings; warnings: string[] }
  | { ok: false; errors: string[]; warnings: string[] }

/** The raw document of a config file (no defaults, no validation), or errors when it cannot be parsed. */
export type RawResult = { ok: true; doc: Record<string, unknown> } | { ok: false; errors: string[] }

/** Reads and validates a config file. Never throws for a missing, unreadable or malformed file. */
export function loadSettings(file: string, opts: ValidateOptions = {}): LoadResult {
  const text = readConfigText(file)
  if (typeof text !== 'string') return { ok: false, errors: text.errors, warnings: [] }
  return parseSettingsText(text, file, opts)
}

/** Validates YAML text; `file` only names it in messages. */
export function parseSettingsText(text: string, file: string, opts: ValidateOptions = {}): LoadResult {
  const parsed = parseYaml(text, file)
  if (!parsed.ok) return { ok: false, errors: parsed.errors, warnings: [] }
  const r = checkSettings(parsed.doc, opts)
  // Each message prefixed with file:line:col, in the order of the file (unlocated ones last).
  const at = (issues: SettingsIssue[]): string[] =>
    issues
      .map((i) => ({ where: locate(parsed.yaml, parsed.lines, i.path), text: formatIssue(i) }))
      .sort((a, b) => (a.where?.offset ?? Infinity) - (b.where?.offset ?? Infinity))
      .map((x) =>
        x.where === undefined ? `${file}: ${x.text}` : `${file}:${x.where.line}:${x.where.col}: ${x.text}`,
      )
  const warnings = at(r.warnings)
  if (r.settings !== undefined && r.errors.length === 0) return { ok: true, settings: r.settings, warnings }
  return { ok: false, errors: at(r.errors), warnings }
}

/** The file's mapping as plain data, for `settings set` to change a few keys and validate the result. */
export function readSettingsDocument(file: string): RawResult {
  const text = readConfigText(file)
  if (typeof text !== 'string') return text
  const parsed = parseYaml(text, file)
  return parsed.ok ? { ok: true, doc: parsed.doc } : parsed
}

/**
 * Writes settings to a YAML file. An existing file is updated in place: comments, order and style are kept
 * and only changed keys are rewritten; keys missing from the file are added only when they differ from the
 * default. The write is atomic (temporary file + rename) and keeps the file's mode; a new file holding a
 * token is created 0600. Throws when the existing file is not valid YAML (it is never overwritten then).
 */
export function saveSettings(file: string, settings: ProbeSettings): void {
  let doc: Document
  let mode = settings.api.token !== undefined ? 0o600 : 0o644
  // Through a symlink (e.g. /etc/flowtel/probe.yaml → a managed copy) the target is updated, not replaced.
  if (existsSync(file)) file = realpathSync(file)
  if (existsSync(file)) {
    mode = statSync(file).mode & 0o7777
    const text = readFileSync(file, 'utf8')
    doc = parseDocument(text)
    if (doc.errors.length > 0)
      throw new Error(
        `${file}: not updated, it has YAML errors: ${doc.errors[0]?.message.split('\n')[0] ?? ''}`,
      )
    if (!isMap(doc.contents)) doc.contents = doc.createNode({})
  } else {
    doc = new Document({})
    doc.commentBefore = ' Flowtel probe settings (docs/settings.md). Keys left out take their default.'
  }
  applyObject(
    doc,
    [],
    settings as unknown as Record<string, unknown>,
    DEFAULT_SETTINGS as unknown as Record<string, unknown>,
  )
  const tmp = `${file}.tmp-${process.pid}`
  try {
    writeFileSync(tmp, doc.toString({ lineWidth: 0 }), { mode })
    renameSync(tmp, file)
  } catch (e) {
    if (existsSync(tmp)) unlinkSync(tmp)
    throw e
  }
}

function readConfigText(file: string): string | { ok: false; errors: string[] } {
  try {
    const st = statSync(file)
    if (!st.isFile()) return { ok: false, errors: [`${file}: not a regular file`] }
    if (st.size > MAX_CONFIG_BYTES)
      return {
        ok: false,
        errors: [`${file}: ${st.size} bytes; a config file may hold at most ${MAX_CONFIG_BYTES}`],
      }
    return readFileSync(file, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { ok: false, errors: [`${file}: no such file`] }
    if (code === 'EACCES') return { ok: false, errors: [`${file}: permission denied`] }
    return { ok: false, errors: [`${file}: ${(e as Error).message}`] }
  }
}

type Parsed =
  | { ok: true; doc: Record<string, unknown>; yaml: Document.Parsed; lines: LineCounter }
  | { ok: false; errors: string[] }

function parseYaml(text: string, file: string): Parsed {
  const lines = new LineCounter()
  const yaml = parseDocument(text, { lineCounter: lines, prettyErrors: false })
  if (yaml.errors.length > 0)
    return {
      ok: false,
      errors: yaml.errors.map((e) => {
        const p = e.linePos?.[0] ?? lines.linePos(e.pos[0])
        return `${file}:${p.line}:${p.col}: YAML syntax error: ${e.message.split('\n')[0] ?? e.code}`
      }),
    }
  let doc: unknown
  try {
    doc = yaml.toJS({ maxAliasCount: 100 })
  } catch (e) {
    return { ok: false, errors: [`${file}: ${(e as Error).message}`] }
  }
  if (doc === null || doc === undefined) doc = {}
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    const at =
      yaml.contents?.range !== undefined ? lines.linePos(yaml.contents.range[0]) : { line: 1, col: 1 }
    return {
      ok: false,
      errors: [`${file}:${at.line}:${at.col}: the file must be a mapping of settings (key: value)`],
    }
  }
  return { ok: true, doc: doc as Record<string, unknown>, yaml, lines }
}

/** Where the deepest node on `path` starts (the key of a mapping entry, or the list item). */
function locate(
  yaml: Document.Parsed,
  lines: LineCounter,
  path: readonly (string | number)[],
): { offset: number; line: number; col: number } | undefined {
  let node: ParsedNode | null = yaml.contents
  let offset: number | undefined
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg))
      if (pair === undefined) break
      offset = pair.key.range[0]
      node = pair.value
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg]
      if (item === undefined) break
      offset = item.range[0]
      node = item
    } else break
  }
  return offset === undefined ? undefined : { offset, ...lines.linePos(offset) }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/** Without undefined members, so `createNode` writes nothing for them. */
function defined(v: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined))
}

function applyObject(
  doc: Document,
  path: string[],
  value: Record<string, unknown>,
  defaults: Record<string, unknown> | undefined,
): void {
  const existing = path.length === 0 ? doc.contents : doc.getIn(path, true)
  const fileKeys = isMap(existing)
    ? existing.items.map((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)))
    : []
  for (const key of new Set([...Object.keys(value), ...fileKeys])) {
    const p = [...path, key]
    const v = value[key]
    const def = defaults?.[key]
    const present = doc.hasIn(p)
    if (v === undefined) {
      if (present) doc.deleteIn(p)
      continue
    }
    const current: unknown = doc.getIn(p, true)
    if (isPlainObject(v)) {
      if (present && isMap(current)) applyObject(doc, p, v, isPlainObject(def) ? def : undefined)
      else {
        const wanted = defined(v)
        const diff = Object.fromEntries(
          Object.entries(wanted).filter(([k, x]) => !isPlainObject(def) || !same(x, def[k])),
        )
        if (present || Object.keys(diff).length > 0) doc.setIn(p, doc.createNode(present ? wanted : diff))
      }
      continue
    }
    if (!present) {
      if (!same(v, def)) doc.setIn(p, doc.createNode(v))
      continue
    }
    const now: unknown = isNode(current) ? (current as YamlNode).toJSON() : current
    if (same(now, v)) continue
    if (Array.isArray(v)) {
      const node = doc.createNode(v)
      if (isSeq(current)) {
        node.flow = current.flow ?? false
        if (current.comment !== undefined) node.comment = current.comment
        if (current.commentBefore !== undefined) node.commentBefore = current.commentBefore
      }
      doc.setIn(p, node)
    } else doc.setIn(p, v)
  }
}
