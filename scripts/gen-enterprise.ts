/**
 * Generates the vendor element dictionaries under src/ipfix/enterprise/ (RFC 7012 §4 enterprise-specific
 * Information Elements; RFC 5153 §5.1 recommends a local dictionary loaded as data) from the definition files
 * in ../shared/reference/elements (CESNET libfds XML, netgauze IANA-style XML, the nProbe derived CSV).
 * Usage: `node --import tsx scripts/gen-enterprise.ts [path/to/shared/reference]`, then
 * `npx prettier --write src/ipfix/enterprise` (the committed files are prettier-formatted).
 *
 * The generated files are committed, so the collector and its tests need no ../shared. Flowmon (PEN 39499)
 * and Flowtel elements are maintained by hand elsewhere and are not generated here.
 *
 * Rules: unknown data types become octetArray (RFC 5153 §5.1); libfds `biflow mode="split"` scopes (CERT)
 * get their reverse elements as id | 1 << bit named reverse<Name>; netflow.xml (PEN 2^32-2, NetFlow v9 types
 * 128..32767) keeps only ids IANA does not define, since NetFlow v9 types below 32768 follow IANA.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IE_DATA_TYPES } from '../src/ipfix/data-types.js'
import { IANA_ELEMENTS } from '../src/ipfix/iana-elements.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const ref = resolve(process.argv[2] ?? resolve(repoRoot, '../shared/reference'))
const outDir = resolve(repoRoot, 'src/ipfix/enterprise')

const KNOWN_TYPES = new Set<string>(IE_DATA_TYPES)
const TYPE_FIX: Record<string, string> = { ipv6address: 'ipv6Address', ipv4address: 'ipv4Address' }

type Row = [number, string, string, string?, string?]
interface Table {
  pen: number
  rows: Row[]
}

const ianaIds = new Set(IANA_ELEMENTS.map((r) => r[0]))

const tag = (rec: string, name: string): string | undefined => {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(rec)
  return m?.[1]?.trim()
}

function normType(t: string | undefined, what: string): string {
  const x = TYPE_FIX[t ?? ''] ?? t ?? 'octetArray'
  if (KNOWN_TYPES.has(x)) return x
  console.warn(`${what}: data type ${t} emitted as octetArray`)
  return 'octetArray'
}

function row(id: number, name: string, type: string, sem?: string, units?: string): Row {
  const r: Row = [id, name, type]
  if (sem !== undefined || units !== undefined) r.push(sem ?? '')
  if (units !== undefined) r.push(units)
  return r
}

/** A libfds elements file: <scope><pen/><biflow mode=.../></scope> and <element> records. */
function libfds(file: string, filter?: (id: number) => boolean): Table {
  const xml = readFileSync(resolve(ref, 'elements', file), 'utf8')
  const scope = /<scope>([\s\S]*?)<\/scope>/.exec(xml)?.[1] ?? ''
  const pen = Number(tag(scope, 'pen'))
  const split = /<biflow mode="split">\s*(\d+)\s*<\/biflow>/.exec(scope)
  const rows: Row[] = []
  const seen = new Set<number>()
  for (const m of xml.matchAll(/<element>([\s\S]*?)<\/element>/g)) {
    const rec = m[1] ?? ''
    const id = Number(tag(rec, 'id'))
    const name = tag(rec, 'name')
    if (!Number.isInteger(id) || id < 1 || id > 32767 || name === undefined || seen.has(id)) continue
    if (filter !== undefined && !filter(id)) continue
    seen.add(id)
    const type = normType(tag(rec, 'dataType'), `${file} ${id} ${name}`)
    rows.push(row(id, name, type, tag(rec, 'dataSemantics'), tag(rec, 'units')))
  }
  if (split !== null) {
    // libfds counts the bit from 1 over the 16-bit field id (enterprise bit = 16): 15 = id bit 14 (+16384).
    const bit = 1 << (Number(split[1] ?? '15') - 1)
    for (const r of [...rows]) {
      const rid = r[0] | bit
      if (rid > 32767 || seen.has(rid)) continue
      seen.add(rid)
      rows.push(row(rid, 'reverse' + r[1].charAt(0).toUpperCase() + r[1].slice(1), r[2], r[3], r[4]))
    }
  }
  rows.sort((a, b) => a[0] - b[0])
  return { pen, rows }
}

/** An IANA-registry-style file (netgauze vendor registries). */
function ianaStyle(file: string, pen: number): Table {
  const xml = readFileSync(resolve(ref, 'iana/enterprise/netgauze', file), 'utf8')
  const rows: Row[] = []
  for (const m of xml.matchAll(/<record\b[^>]*>([\s\S]*?)<\/record>/g)) {
    const rec = m[1] ?? ''
    const id = Number(tag(rec, 'elementId'))
    const name = tag(rec, 'name')
    if (!Number.isInteger(id) || id < 1 || id > 32767 || name === undefined) continue
    const type = normType(tag(rec, 'dataType'), `${file} ${id} ${name}`)
    rows.push(row(id, name, type, tag(rec, 'dataTypeSemantics'), tag(rec, 'units')))
  }
  rows.sort((a, b) => a[0] - b[0])
  return { pen, rows }
}

/** nProbe (PEN 35632) from the derived CSV: the CSV has lengths, not types, so types are inferred. */
function nprobe(): Table {
  const csv = readFileSync(resolve(ref, 'elements/derived/nprobe-elements.derived.csv'), 'utf8')
  const rows: Row[] = []
  const seen = new Set<number>()
  for (const line of csv.split('\n').slice(1)) {
    const c = line.split(',')
    if (c.length < 6 || c[1] !== '35632') continue
    const id = Number(c[2])
    const len = Number(c[3])
    const varlen = (c[4] ?? '') !== ''
    const name = c[5] ?? ''
    if (!Number.isInteger(id) || id < 1 || id > 32767 || name === '' || seen.has(id)) continue
    seen.add(id)
    let type = 'octetArray'
    if (/MAC/.test(name) && len === 6) type = 'macAddress'
    else if (/IPV4|_IP$|_ADDR$/.test(name) && len === 4) type = 'ipv4Address'
    else if (/IPV6/.test(name) && len === 16) type = 'ipv6Address'
    else if (!varlen && len === 1) type = 'unsigned8'
    else if (!varlen && len === 2) type = 'unsigned16'
    else if (!varlen && len === 4) type = 'unsigned32'
    else if (!varlen && len === 8) type = 'unsigned64'
    else type = 'string'
    rows.push(row(id, name, type))
  }
  rows.sort((a, b) => a[0] - b[0])
  return { pen, rows }
}
const pen = 35632

function emit(file: string, constName: string, what: string, source: string, tables: Table[]): void {
  const lines = [
    `// Generated by scripts/gen-enterprise.ts from ${source}. Do not edit.`,
    `// ${what}: enterprise Information Elements (RFC 7012 §4), rows [elementId, name, dataType, semantics?, units?].`,
    `import type { EnterpriseTable } from './types.js'`,
    '',
    `export const ${constName}: readonly EnterpriseTable[] = [`,
  ]
  for (const t of tables) {
    lines.push(`  {`, `    pen: ${t.pen},`, `    rows: [`)
    for (const r of t.rows) lines.push(`      ${JSON.stringify(r).replaceAll('"', "'")},`)
    lines.push(`    ],`, `  },`)
  }
  lines.push(']', '')
  writeFileSync(resolve(outDir, file), lines.join('\n'))
  console.log(`${file}: ${tables.map((t) => `${t.pen}: ${t.rows.length}`).join(', ')}`)
}

emit('cisco.ts', 'CISCO_ELEMENTS', 'Cisco (PEN 9)', 'reference/elements/cisco.xml (libfds)', [
  libfds('cisco.xml'),
])
emit('cesnet.ts', 'CESNET_ELEMENTS', 'CESNET (PEN 8057)', 'reference/elements/cesnet.xml (libfds)', [
  libfds('cesnet.xml'),
])
emit('cert.ts', 'CERT_ELEMENTS', 'CERT NetSA / YAF (PEN 6871)', 'reference/elements/cert.xml (libfds)', [
  libfds('cert.xml'),
])
emit(
  'netscaler.ts',
  'NETSCALER_ELEMENTS',
  'Citrix NetScaler (PEN 5951)',
  'reference/elements/netscaler.xml',
  [libfds('netscaler.xml')],
)
emit(
  'vmware.ts',
  'VMWARE_ELEMENTS',
  'VMware (PEN 6876)',
  'reference/elements/vmware.xml (libfds) and reference/iana/enterprise/netgauze/vmware.xml',
  [libfds('vmware.xml'), ianaStyle('vmware.xml', 6876)],
)
emit('muni.ts', 'MUNI_ELEMENTS', 'Masaryk University (PEN 16982)', 'reference/elements/muni.xml', [
  libfds('muni.xml'),
])
emit(
  'netgauze-vendors.ts',
  'NETGAUZE_VENDOR_ELEMENTS',
  'Huawei (PEN 2011) and Nokia (PEN 637)',
  'reference/iana/enterprise/netgauze/{huawei,nokia}.xml',
  [ianaStyle('huawei.xml', 2011), ianaStyle('nokia.xml', 637)],
)
emit(
  'nprobe.ts',
  'NPROBE_ELEMENTS',
  'ntop nProbe (PEN 35632; types inferred from lengths)',
  'reference/elements/derived/nprobe-elements.derived.csv',
  [nprobe()],
)
emit(
  'netflow-types.ts',
  'NETFLOW_TYPE_ELEMENTS',
  'NetFlow v9 field types outside IANA: 128..32767 under PEN 2^32-2, 32768..65535 (ASA NSEL etc.) as type - 32768 under PEN 2^32-1 (libfds convention)',
  'reference/elements/{netflow,netflowExtra}.xml (libfds)',
  [libfds('netflow.xml', (id) => !ianaIds.has(id)), libfds('netflowExtra.xml')],
)
