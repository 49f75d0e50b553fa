/**
 * Template state per RFC 7011 §8 (and RFC 3954 §7 for NetFlow v9): keyed by (transport session, version,
 * observation domain, template id); templates and options templates share one id space, the last definition
 * wins. Over UDP a different definition replaces the old one at once (§8.4) and templates expire after a
 * configurable lifetime (RFC 6728 templateLifeTime, default 1800 s); over TCP they can be withdrawn (§8.1) and
 * all die with the session. The store is bounded (templates in total and per session, field specifiers in
 * total): the least recently defined template is evicted when full, and every limit hit is counted (§11.4).
 * Types an exporter announces (RFC 5610) apply to its templates when a template is next used to decode records,
 * not at once: a type record costs the same whatever the store holds. Templates can be saved to and loaded
 * from a JSON file, so a restarted collector decodes at once.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import {
  MAX_FIELD_VALUES_PER_OCTET,
  lenientType,
  minRecordLength,
  sameLayout,
  templateFromSpecs,
  type CollectorTemplate,
  type Counter,
  type FieldSpecTuple,
} from './data-set.js'
import { lookupElement } from '../ipfix/elements.js'
import type { TransportProtocol } from './session.js'
import { LearnedTypes, type PersistedType } from './type-records.js'
import { SetIndex } from '../util/set-index.js'

export interface TemplateStoreOptions {
  /** UDP template lifetime in ms (0 = never expire). Default 1 800 000 (RFC 6728). */
  lifetimeMs?: number
  /** Total templates over all sessions. Default 65 536. */
  maxTemplates?: number
  /** Templates per session. Default 8 192. */
  maxPerSession?: number
  /**
   * Field specifiers over all templates. Default 2 097 152 (32 a template when the store is full). A template
   * can hold 16 000 fields, so the template count alone would let 64 KB messages fill gigabytes.
   */
  maxFields?: number
}

export type SetResult = 'added' | 'updated' | 'unchanged' | 'rejected'

interface Entry {
  readonly session: string
  readonly protocol: TransportProtocol
  readonly domain: number
  template: CollectorTemplate
  receivedAt: number
  /** The session's learned-types generation the template's fields were resolved with. */
  typesSeen: number
}

interface PersistedTemplate {
  session: string
  protocol: TransportProtocol
  version: 9 | 10
  domain: number
  id: number
  scopeCount: number
  options?: boolean
  fields: FieldSpecTuple[]
  receivedAt: number
}

export function templateKey(session: string, version: number, domain: number, id: number): string {
  return `${session}|${version}|${domain}|${id}`
}

const kindKey = (session: string, version: number, domain: number, options: boolean): string =>
  `${session}|${version}|${domain}|${options ? 'options' : 'data'}`

export class TemplateStore {
  readonly counters: Record<string, number> = {}
  private readonly map = new Map<string, Entry>()
  /** Template keys of each session: its count for the per-session bound, and what dropSession removes. */
  private readonly bySession = new SetIndex<string, string>()
  readonly lifetimeMs: number
  private readonly maxTemplates: number
  private readonly maxPerSession: number
  private readonly maxFields: number
  /** Field specifiers of the templates held. */
  private fieldsHeld = 0
  /** Keys of the templates held by (session, version, domain, kind): what one All Templates Withdrawal takes. */
  private readonly byKind = new SetIndex<string, string>()

  constructor(opts: TemplateStoreOptions = {}) {
    this.lifetimeMs = opts.lifetimeMs ?? 1_800_000
    this.maxTemplates = opts.maxTemplates ?? 65_536
    this.maxPerSession = opts.maxPerSession ?? 8192
    this.maxFields = opts.maxFields ?? 2_097_152
  }

  readonly count: Counter = (name, n = 1) => {
    this.counters[name] = (this.counters[name] ?? 0) + n
  }

  /** RFC 5610 types learned per session (kept, dropped and persisted with the templates). */
  readonly types = new LearnedTypes(this.count)
  /** Per session: bumped whenever it learns or changes a type (typesChanged). */
  private readonly typesGeneration = new Map<string, number>()

  /**
   * `session` learned or changed a type (RFC 5610 records may follow the templates): its IPFIX templates
   * that use the element take the learned name and type when they next decode records (`get`). Nothing is
   * rewritten here, so an exporter that changes a type in every record costs no more than one that does not.
   */
  typesChanged(session: string): void {
    this.typesGeneration.set(session, (this.typesGeneration.get(session) ?? 0) + 1)
  }

  /** The template's fields with the session's learned types applied to the elements the dictionaries lack. */
  private retyped(session: string, t: CollectorTemplate): CollectorTemplate {
    const learned = this.types.forSession(session)
    if (learned === undefined) return t
    let changed = false
    const fields = t.fields.map((f) => {
      const def = lookupElement(f.pen, f.id) === undefined ? learned(f.pen, f.id) : undefined
      if (def === undefined) return f
      const type = lenientType(def.type, f.length, this.count)
      if (def.name === f.name && type === f.type) return f
      changed = true
      return { ...f, name: def.name, type }
    })
    return changed ? { ...t, fields, minLength: minRecordLength(fields) } : t
  }

  get size(): number {
    return this.map.size
  }

  /** Defines (or refreshes) a template; the result says what changed. */
  set(
    session: string,
    protocol: TransportProtocol,
    domain: number,
    t: CollectorTemplate,
    now: number,
  ): SetResult {
    const key = templateKey(session, t.version, domain, t.id)
    if (t.fields.length > this.maxFields) {
      this.count('template_too_large')
      return 'rejected'
    }
    const old = this.map.get(key)
    if (old !== undefined) {
      this.map.delete(key) // re-inserted last: the map's order is least recently defined first
      const same = sameLayout(old.template, t)
      this.fieldsHeld += t.fields.length - old.template.fields.length
      if (old.template.options !== t.options) {
        this.unindex(key, old)
        this.index(key, session, t.version, domain, t.options)
      }
      old.template = t
      old.receivedAt = now
      old.typesSeen = this.typesGeneration.get(session) ?? 0
      this.map.set(key, old)
      this.evictFields(key)
      if (same) return 'unchanged'
      this.count(protocol === 'tcp' ? 'template_redefined_tcp' : 'template_redefined')
      return 'updated'
    }
    const inSession = this.bySession.size(session)
    if (inSession >= this.maxPerSession) {
      this.count('template_limit_session')
      return 'rejected'
    }
    if (this.map.size >= this.maxTemplates) {
      const oldest = this.map.keys().next()
      if (!oldest.done) {
        this.remove(oldest.value)
        this.count('template_evicted')
      }
    }
    const typesSeen = this.typesGeneration.get(session) ?? 0
    this.map.set(key, { session, protocol, domain, template: t, receivedAt: now, typesSeen })
    this.bySession.add(session, key)
    this.fieldsHeld += t.fields.length
    this.index(key, session, t.version, domain, t.options)
    this.evictFields(key)
    return 'added'
  }

  /** Evicts the least recently defined templates (never `keep`) while the field bound is exceeded. */
  private evictFields(keep: string): void {
    while (this.fieldsHeld > this.maxFields) {
      const oldest = this.map.keys().next()
      if (oldest.done || oldest.value === keep) return
      this.remove(oldest.value)
      this.count('template_evicted')
    }
  }

  private lastGet: { session: string; version: number; domain: number; id: number; key: string } | undefined

  /**
   * The live template, or undefined (an expired UDP template is removed and counted). `octets`: the bytes
   * its records are about to be decoded from; the session's learned types are applied first when they
   * changed since, unless those bytes are too few for even one record (MAX_FIELD_VALUES_PER_OCTET), so the
   * work is bounded by the data. Without `octets` they are applied whenever they changed.
   */
  get(
    session: string,
    version: number,
    domain: number,
    id: number,
    now: number,
    octets?: number,
  ): CollectorTemplate | undefined {
    // The last lookup's key string again when it is the same template (every data set of a stream asks
    // for the same few): no key built per data set.
    const h = this.lastGet
    const key =
      h !== undefined && h.id === id && h.session === session && h.domain === domain && h.version === version
        ? h.key
        : templateKey(session, version, domain, id)
    const e = this.map.get(key)
    if (e === undefined) return undefined
    if (h?.key !== key) this.lastGet = { session, version, domain, id, key }
    if (e.protocol === 'udp' && this.lifetimeMs > 0 && now - e.receivedAt > this.lifetimeMs) {
      this.remove(key)
      this.count('template_expired')
      return undefined
    }
    if (e.template.version === 10) {
      const generation = this.typesGeneration.get(session) ?? 0
      const decodable =
        octets === undefined || e.template.fields.length <= MAX_FIELD_VALUES_PER_OCTET * octets
      if (e.typesSeen !== generation && decodable) {
        e.template = this.retyped(session, e.template)
        e.typesSeen = generation
      }
    }
    return e.template
  }

  /** Withdraws one template (RFC 7011 §8.1); `options` must match its kind. False when unknown. */
  withdraw(session: string, version: number, domain: number, id: number, options: boolean): boolean {
    const key = templateKey(session, version, domain, id)
    const e = this.map.get(key)
    if (e === undefined || e.template.options !== options) {
      this.count('withdrawal_unknown')
      return false
    }
    this.remove(key)
    this.count('withdrawal')
    return true
  }

  /** All (Options) Templates Withdrawal for one domain of a session (RFC 7011 §8.1). */
  withdrawAll(session: string, version: number, domain: number, options: boolean): number {
    // By the index: the work is the templates withdrawn, however many others the store holds.
    const keys = this.byKind.members(kindKey(session, version, domain, options))
    for (const k of keys) this.remove(k)
    this.count('withdrawal_all')
    return keys.length
  }

  private index(key: string, session: string, version: number, domain: number, options: boolean): void {
    this.byKind.add(kindKey(session, version, domain, options), key)
  }

  private unindex(key: string, e: Entry): void {
    this.byKind.delete(kindKey(e.session, e.template.version, e.domain, e.template.options), key)
  }

  /**
   * Every template of a session goes (the end of a TCP session, §8.1), and its learned types. By the
   * session's index: the work is the templates it held, however many others the store holds.
   */
  dropSession(session: string): number {
    this.types.dropSession(session)
    this.typesGeneration.delete(session)
    const keys = this.bySession.members(session)
    for (const k of keys) this.remove(k)
    return keys.length
  }

  /** Removes UDP templates older than the lifetime; returns how many. */
  expire(now: number): number {
    if (this.lifetimeMs <= 0) return 0
    let n = 0
    for (const [k, e] of this.map)
      if (e.protocol === 'udp' && now - e.receivedAt > this.lifetimeMs) {
        this.remove(k)
        n++
      }
    if (n > 0) this.count('template_expired', n)
    return n
  }

  private remove(key: string): void {
    const e = this.map.get(key)
    if (e === undefined) return
    this.map.delete(key)
    this.unindex(key, e)
    this.fieldsHeld -= e.template.fields.length
    this.bySession.delete(e.session, key)
  }

  /** The templates as plain JSON (definitions by [pen, id, length]; names are resolved again on load). */
  toJSON(): { version: 1; templates: PersistedTemplate[]; types: PersistedType[] } {
    const templates: PersistedTemplate[] = []
    for (const e of this.map.values()) {
      const t = e.template
      templates.push({
        session: e.session,
        protocol: e.protocol,
        version: t.version,
        domain: e.domain,
        id: t.id,
        scopeCount: t.scopeCount,
        options: t.options,
        fields: t.fields.map((f) => [f.pen, f.id, f.length] as const),
        receivedAt: e.receivedAt,
      })
    }
    return { version: 1, templates, types: this.types.toJSON() }
  }

  /** Loads templates saved by toJSON; bad entries are skipped and counted. Returns how many were loaded. */
  load(data: unknown): number {
    if (
      typeof data !== 'object' ||
      data === null ||
      !Array.isArray((data as { templates?: unknown }).templates)
    ) {
      this.count('persist_bad_file')
      return 0
    }
    // Learned types first: the templates that use them are resolved with them.
    this.types.load((data as { types?: unknown }).types)
    let n = 0
    for (const raw of (data as { templates: unknown[] }).templates) {
      const p = raw as Partial<PersistedTemplate>
      const ok =
        typeof p.session === 'string' &&
        (p.protocol === 'udp' || p.protocol === 'tcp' || p.protocol === 'file') &&
        (p.version === 9 || p.version === 10) &&
        Number.isInteger(p.domain) &&
        Number.isInteger(p.id) &&
        Number.isInteger(p.scopeCount) &&
        Array.isArray(p.fields) &&
        p.fields.every(
          (f) => Array.isArray(f) && f.length === 3 && f.every((x) => Number.isInteger(x) && x >= 0),
        )
      if (!ok) {
        this.count('persist_bad_entry')
        continue
      }
      const t = templateFromSpecs(
        p.version!,
        p.id!,
        p.scopeCount!,
        p.fields!,
        this.count,
        typeof p.options === 'boolean' ? p.options : p.scopeCount! > 0,
        this.types.forSession(p.session!),
      )
      if (this.set(p.session!, p.protocol!, p.domain!, t, p.receivedAt ?? 0) !== 'rejected') n++
    }
    return n
  }

  /** Writes the templates to `path` atomically (a temporary file renamed over it). */
  saveFile(path: string): void {
    const tmp = `${path}.tmp-${process.pid}`
    writeFileSync(tmp, JSON.stringify(this.toJSON()))
    renameSync(tmp, path)
  }

  /** Loads `path` if it exists and parses; returns the number of templates loaded. */
  loadFile(path: string): number {
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch {
      return 0
    }
    try {
      return this.load(JSON.parse(text))
    } catch {
      this.count('persist_bad_file')
      return 0
    }
  }
}
