// The YAML config file: errors with file:line:col, YAML syntax errors, unreadable files, and saving that
// keeps the operator's comments and layout; a round trip gives back the same settings.
import {
  chmodSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../../test/helpers/shared.js'
import { loadSettings, parseSettingsText, saveSettings } from './load.js'
import { DEFAULT_SETTINGS, type ProbeSettings } from './settings.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-load-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('loadSettings', () => {
  it('names file, line and column of each bad key, in file order', () => {
    const text = [
      '# probe on the edge router', // 1
      'collectors:', // 2
      '  - 192.0.2.1:4739 # main', // 3
      '  - collector.example', // 4
      'activeTimeout: 0   # far too low', // 5
      'capture:', // 6
      '  snaplen: 12', // 7
      '  promisc: false', // 8
      'fields: [l2, l9]', // 9
      'api:', // 10
      '  listen: 0.0.0.0:8765', // 11
    ].join('\n')
    const r = parseSettingsText(text, 'probe.yaml')
    expect(r.ok).toBe(false)
    expect(!r.ok && r.errors).toEqual([
      'probe.yaml:4:5: collectors[1]: expected host:port (got "collector.example")',
      'probe.yaml:5:1: activeTimeout: must be an integer from 1 to 86400 (got 0)',
      'probe.yaml:7:3: capture.snaplen: must be an integer from 64 to 262144 (got 12)',
      'probe.yaml:8:3: capture.promisc: unknown key; did you mean "promiscuous"? (known: promiscuous, snaplen, bufferBytes, filter)',
      'probe.yaml:9:14: fields[1]: unknown group "l9"; known: l2, tunnel, npm, tcpext, arp, dns, http, tls (core is always on)',
      'probe.yaml:10:1: api.token: required when api.listen (0.0.0.0:8765) is not a loopback address; set api.token or api.tokenFile',
    ])
  })

  it('reports YAML syntax errors with their position', () => {
    const r = parseSettingsText('collectors: [192.0.2.1:4739\nactiveTimeout: 60\n', 'p.yaml')
    expect(r.ok).toBe(false)
    expect(!r.ok && r.errors[0]).toMatch(/^p\.yaml:2:1: YAML syntax error: /)
    const dup = parseSettingsText('activeTimeout: 60\nactiveTimeout: 70\n', 'p.yaml')
    expect(!dup.ok && dup.errors).toEqual(['p.yaml:2:1: YAML syntax error: Map keys must be unique'])
    const tab = parseSettingsText('capture:\n\tsnaplen: 1\n', 'p.yaml')
    expect(!tab.ok && tab.errors[0]).toMatch(/^p\.yaml:2:1: YAML syntax error: /)
  })

  it('wants a mapping at the top; an empty file is all defaults', () => {
    const list = parseSettingsText('- 192.0.2.1:4739\n', 'p.yaml')
    expect(!list.ok && list.errors).toEqual([
      'p.yaml:1:1: the file must be a mapping of settings (key: value)',
    ])
    const empty = parseSettingsText('# nothing yet\n', 'p.yaml', { requireCollectors: false })
    expect(empty.ok && empty.settings).toEqual(DEFAULT_SETTINGS)
    const needs = parseSettingsText('', 'p.yaml')
    expect(!needs.ok && needs.errors).toEqual([
      'p.yaml: collectors: at least one collector is needed, e.g. collectors: ["192.0.2.10:4739"]',
    ])
  })

  it('refuses an alias bomb instead of expanding it', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]']
    for (let i = 1; i < 9; i++)
      bomb.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${new Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`,
      )
    const r = parseSettingsText(bomb.join('\n'), 'bomb.yaml')
    expect(r.ok).toBe(false)
    expect(!r.ok && r.errors[0]).toMatch(/^bomb\.yaml: .*alias/i)
  })

  it('says when the file is missing, a folder or too large', () => {
    expect(loadSettings(join(dir, 'nope.yaml'))).toEqual({
      ok: false,
      errors: [`${join(dir, 'nope.yaml')}: no such file`],
      warnings: [],
    })
    expect(loadSettings(dir)).toEqual({ ok: false, errors: [`${dir}: not a regular file`], warnings: [] })
    const big = join(dir, 'big.yaml')
    writeFileSync(big, '#'.repeat(1024 * 1024 + 1))
    expect(loadSettings(big).ok).toBe(false)
  })

  it('loads the shipped example, which passes every check', () => {
    const r = loadSettings(join(REPO_ROOT, 'deploy/probe.example.yaml'))
    expect(r).toEqual(expect.objectContaining({ ok: true, warnings: [] }))
    expect(r.ok && r.settings.collectors).toEqual(['192.0.2.10:4739'])
    expect(r.ok && r.settings.fields).toEqual(['l2', 'tunnel', 'npm'])
  })
})

describe('saveSettings', () => {
  const original = [
    '# Edge probe. Owner: netops.',
    'collectors:',
    '  - 192.0.2.1:4739 # main collector',
    '',
    '# Five minutes is what the NOC wants.',
    'activeTimeout: 300 # seconds',
    'fields: [l2, npm] # groups',
    'capture:',
    '  # keep headers only',
    '  snaplen: 128',
    'interfaces:',
    '  - eth0',
    '',
  ].join('\n')

  it('updates an existing file in place, keeping comments, order and style', () => {
    const file = join(dir, 'probe.yaml')
    writeFileSync(file, original, { mode: 0o640 })
    chmodSync(file, 0o640)
    const r = loadSettings(file)
    if (!r.ok) throw new Error(r.errors.join('\n'))
    const next: ProbeSettings = {
      ...r.settings,
      activeTimeout: 60,
      fields: ['npm', 'tcpext'],
      capture: { ...r.settings.capture, snaplen: 256 },
      workers: 2,
    }
    saveSettings(file, next)
    const text = readFileSync(file, 'utf8')
    expect(text).toBe(
      [
        '# Edge probe. Owner: netops.',
        'collectors:',
        '  - 192.0.2.1:4739 # main collector',
        '',
        '# Five minutes is what the NOC wants.',
        'activeTimeout: 60 # seconds',
        'fields: [ npm, tcpext ] # groups',
        'capture:',
        '  # keep headers only',
        '  snaplen: 256',
        'interfaces:',
        '  - eth0',
        'workers: 2',
        '',
      ].join('\n'),
    )
    expect(statSync(file).mode & 0o777).toBe(0o640)
    const again = loadSettings(file)
    expect(again.ok && again.settings).toEqual(next)
  })

  it('removes keys that became unset and writes nothing when nothing changed', () => {
    const file = join(dir, 'unset.yaml')
    writeFileSync(file, 'collectors: ["192.0.2.1:4739"] # c\nobservationDomainId: 7 # pinned\n')
    const r = loadSettings(file)
    if (!r.ok) throw new Error(r.errors.join('\n'))
    saveSettings(file, r.settings)
    expect(readFileSync(file, 'utf8')).toBe(
      'collectors: [ "192.0.2.1:4739" ] # c\nobservationDomainId: 7 # pinned\n',
    )
    const { observationDomainId: _, ...rest } = r.settings
    saveSettings(file, rest)
    expect(readFileSync(file, 'utf8')).toBe('collectors: [ "192.0.2.1:4739" ] # c\n')
  })

  it('creates a new file with only the non-default keys; a token makes it private', () => {
    const file = join(dir, 'new.yaml')
    const s: ProbeSettings = {
      ...structuredClone(DEFAULT_SETTINGS),
      collectors: ['[2001:db8::1]:4739'],
      api: { listen: '0.0.0.0:8765', token: 'abcdefghijklmnopqrstuvwxyz' },
    }
    saveSettings(file, s)
    const text = readFileSync(file, 'utf8')
    expect(text).toContain('collectors:\n  - "[2001:db8::1]:4739"\n')
    expect(text).not.toContain('activeTimeout')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const r = loadSettings(file)
    expect(r.ok && r.settings).toEqual(s)
  })

  it('updates the target of a symlinked config file and keeps the link', () => {
    const target = join(dir, 'managed.yaml')
    const link = join(dir, 'link.yaml')
    writeFileSync(target, 'collectors: ["192.0.2.1:4739"]\n')
    symlinkSync(target, link)
    const r = loadSettings(link)
    if (!r.ok) throw new Error(r.errors.join('\n'))
    saveSettings(link, { ...r.settings, workers: 3 })
    expect(lstatSync(link).isSymbolicLink()).toBe(true)
    expect(readFileSync(target, 'utf8')).toBe('collectors: [ "192.0.2.1:4739" ]\nworkers: 3\n')
  })

  it('does not overwrite a file that is not valid YAML', () => {
    const file = join(dir, 'broken.yaml')
    writeFileSync(file, 'collectors: [oops\n')
    expect(() => saveSettings(file, { ...DEFAULT_SETTINGS, collectors: ['192.0.2.1:1'] })).toThrow(
      /broken\.yaml: not updated, it has YAML errors/,
    )
    expect(readFileSync(file, 'utf8')).toBe('collectors: [oops\n')
  })
})
