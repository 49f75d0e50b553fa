// RFC 5610 type records learned per session: our exporter announces an enterprise element that the
// collector's own dictionaries (a fresh module graph) do not know, and its values come out named and typed;
// records that follow their templates retype them; learned types persist with the templates (restart); bad
// records are counted and change nothing.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { recordToJson } from '../ipfix/decoder.js'
import { registerElements } from '../ipfix/elements.js'
import { IpfixExporter } from '../ipfix/exporter.js'
import { Template } from '../ipfix/template.js'
import { MemoryTransport, hex } from '../ipfix/testing.js'
import type { FlowCollector as Collector } from './decode-message.js'
import type { SessionKey } from './session.js'
import { normalize } from '../store/normalize.js'

const PEN = 4_242_424
const KEY: SessionKey = {
  exporterAddress: '192.0.2.1',
  exporterPort: 40000,
  collectorAddress: '192.0.2.2',
  collectorPort: 4739,
  protocol: 'tcp',
}
const NOW = 1_700_000_000_000

/** A FlowCollector from a fresh module graph: its element table has only the IANA and vendor elements. */
async function freshCollector(): Promise<{
  col: Collector
  lookup: (pen: number, id: number) => unknown
}> {
  vi.resetModules()
  const m = await import('./decode-message.js')
  const e = await import('../ipfix/elements.js')
  return { col: new m.FlowCollector(), lookup: e.lookupElement }
}

/** Messages of our exporter with RFC 5610 records for two elements of PEN 4242424. */
async function exported(): Promise<Uint8Array[]> {
  registerElements([
    {
      pen: PEN,
      id: 7,
      name: 'testLearnedCounter',
      type: 'unsigned32',
      semantics: 'quantity',
      units: 'octets',
    },
    { pen: PEN, id: 8, name: 'testLearnedLabel', type: 'string' },
  ])
  const t = new MemoryTransport()
  const e = new IpfixExporter(
    {
      observationDomainId: 5,
      maxMessageSize: 1400,
      templateRefreshSeconds: 600,
      templateRefreshMessages: 0,
      statsIntervalSeconds: 0,
      rfc5610: true,
      now: () => 1_700_000_000,
    },
    [t],
  )
  const tpl = Template.fromNames(300, [['octetDeltaCount'], ['testLearnedCounter'], ['testLearnedLabel']])
  e.addTemplate(tpl)
  for (const [bytes, n, label] of [
    [100, 4_000_000_000, 'eu-west'],
    [200, 7, 'ünï'],
  ] as const) {
    const w = e.beginRecord(tpl, 64)
    w.u64(bytes)
    w.u32(n)
    w.string(label)
    e.endRecord()
  }
  await e.close()
  return t.messages
}

const h16 = (n: number): string => n.toString(16).padStart(4, '0')
const clean = (s: string): string => Buffer.from(hex(s)).toString('hex')
function msg(seq: number, ...sets: string[]): Uint8Array {
  const body = clean(sets.join(''))
  return hex(
    `000a ${h16(16 + body.length / 2)} 6553f100 ${seq.toString(16).padStart(8, '0')} 00000001 ${body}`,
  )
}
const set = (id: number, body: string): string =>
  `${h16(id)} ${h16(4 + clean(body).length / 2)} ${clean(body)}`
// Options template 400: scope privateEnterpriseNumber(346) + informationElementId(303); then
// informationElementDataType(339), informationElementName(341, varlen).
const TYPE_TEMPLATE = set(3, '0190 0004 0002  015a 0004 012f 0002 0153 0001 0155 ffff')
const typeRecord = (pen: number, id: number, code: number, name: string): string =>
  `${pen.toString(16).padStart(8, '0')} ${h16(id)} ${code.toString(16).padStart(2, '0')} ` +
  `${h16(name.length).slice(2)} ${Buffer.from(name).toString('hex')}`
// Data template 301: octetDeltaCount(4) + PEN 4242425 id 9 (4 octets) + PEN 4242425 id 10 (varlen).
const DATA_TEMPLATE = set(2, '012d 0003  0001 0004  8009 0004 0040bbf9  800a ffff 0040bbf9')
const DATA = set(301, '00000010 0000002a 03 616263')

describe('RFC 5610 type records (learned per session)', () => {
  it('probe exporter → collector: an element the collector does not know comes out named and typed', async () => {
    const messages = await exported()
    const { col, lookup } = await freshCollector()
    expect(lookup(PEN, 7)).toBeUndefined() // the collector's dictionaries do not know it
    const recs = messages.flatMap((m) => col.decode(m, KEY, NOW).records).filter((r) => !r.isOptions)
    expect(recs.map(recordToJson)).toEqual([
      { octetDeltaCount: 100, testLearnedCounter: 4_000_000_000, testLearnedLabel: 'eu-west' },
      { octetDeltaCount: 200, testLearnedCounter: 7, testLearnedLabel: 'ünï' },
    ])
    expect(recs[0]?.fields[1]).toMatchObject({ pen: PEN, id: 7, type: 'unsigned32' })
    // The store's map column holds them by name, typed (not as hex under "4242424.7").
    const extra = JSON.parse(String(normalize(recs[0]!, 0n).extra)) as Record<string, unknown>
    expect(extra).toEqual({ testLearnedCounter: 4_000_000_000, testLearnedLabel: 'eu-west' })
    expect(col.allCounters().type_records_learned).toBe(2)
  })

  it('retypes templates defined before the records, persists with the templates, and survives a restart', async () => {
    const { col } = await freshCollector()
    col.decode(msg(0, DATA_TEMPLATE), KEY, NOW)
    const before = col.decode(msg(0, DATA), KEY, NOW).records.map(recordToJson)
    expect(before).toEqual([{ octetDeltaCount: 16, '4242425.9': '0000002a', '4242425.10': '616263' }])
    col.decode(
      msg(
        1,
        TYPE_TEMPLATE,
        set(400, typeRecord(4242425, 9, 3, 'learnedCount') + typeRecord(4242425, 10, 13, 'learnedText')),
      ),
      KEY,
      NOW,
    )
    const after = col.decode(msg(2, DATA), KEY, NOW).records.map(recordToJson)
    expect(after).toEqual([{ octetDeltaCount: 16, learnedCount: 42, learnedText: 'abc' }])
    const dir = mkdtempSync(join(tmpdir(), 'flowtel-5610-'))
    try {
      const file = join(dir, 'templates.json')
      col.templates.saveFile(file)
      const { col: restarted } = await freshCollector()
      expect(restarted.templates.loadFile(file)).toBe(2)
      expect(restarted.templates.types.size).toBe(2)
      const again = restarted.decode(msg(3, DATA), KEY, NOW).records.map(recordToJson)
      expect(again).toEqual(after)
      // A new template in the restarted session resolves with the persisted types too.
      restarted.decode(msg(4, set(2, '012e 0001  8009 0004 0040bbf9')), KEY, NOW)
      expect(restarted.decode(msg(5, set(302, '00000005')), KEY, NOW).records.map(recordToJson)).toEqual([
        { learnedCount: 5 },
      ])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('retypes a template when it next decodes, not every template at each record (a type flip is cheap)', async () => {
    const { col } = await freshCollector()
    // 500 templates (1000..1499) that use PEN 4242425 id 9 with 4 octets, as DATA_TEMPLATE 301 does.
    const many = Array.from({ length: 500 }, (_, i) => `${h16(1000 + i)} 0001  8009 0004 0040bbf9`).join(' ')
    col.decode(msg(0, DATA_TEMPLATE, set(2, many)), KEY, NOW)
    // One set of 1000 records that flip its type: unsigned16 (code 2; 4 octets is no legal length for it,
    // so each retype of a template counts field_length_nonstandard), then unsigned32 (code 3), and so on.
    const flips = Array.from({ length: 1000 }, (_, i) => typeRecord(4242425, 9, 2 + (i % 2), 'learnedCount'))
    col.decode(msg(1, TYPE_TEMPLATE, set(400, flips.join(' '))), KEY, NOW)
    const c = col.allCounters()
    expect(c.type_record_redefined).toBe(999)
    expect(c.field_length_nonstandard).toBeUndefined() // no template was rewritten for the records
    // The template used next decodes with the last definition (unsigned32), retyped once.
    const recs = col.decode(msg(2, DATA), KEY, NOW).records.map(recordToJson)
    expect(recs).toEqual([{ octetDeltaCount: 16, learnedCount: 42, '4242425.10': '616263' }])
    expect(col.allCounters().field_length_nonstandard).toBeUndefined()
    col.decode(msg(3, TYPE_TEMPLATE, set(400, typeRecord(4242425, 9, 2, 'learnedCount'))), KEY, NOW)
    col.decode(msg(4, DATA), KEY, NOW)
    expect(col.allCounters().field_length_nonstandard).toBe(1) // one template, once
  })

  it('counts and ignores bad or redundant records, and forgets a session with its templates', async () => {
    const { col } = await freshCollector()
    col.decode(
      msg(
        0,
        TYPE_TEMPLATE,
        set(
          400,
          typeRecord(4242425, 9, 99, 'badType') + // unknown type code
            typeRecord(0, 1, 4, 'mineNow') + // octetDeltaCount: the dictionary wins
            typeRecord(29305, 1, 4, 'rev') + // RFC 5103 reverse PEN
            typeRecord(4242425, 11, 4, 'octetDeltaCount') + // a name another element has
            typeRecord(4242425, 12, 2, 'bad name!'),
        ),
      ),
      KEY,
      NOW,
    )
    const c = col.allCounters()
    expect(c.type_record_bad_type).toBe(1)
    expect(c.type_record_known).toBe(1)
    expect(c.type_record_bad_id).toBe(1)
    expect(c.type_record_name_taken).toBe(1)
    expect(c.type_record_bad_name).toBe(1)
    expect(col.templates.types.toJSON().map((t) => [t.id, t.name, t.type])).toEqual([
      [11, '4242425.11', 'unsigned64'],
      [12, '4242425.12', 'unsigned16'],
    ])
    col.endSession(
      `tcp:${KEY.exporterAddress}:${KEY.exporterPort}>${KEY.collectorAddress}:${KEY.collectorPort}`,
    )
    expect(col.templates.types.size).toBe(0)
  })
})
