// RFC 6313 structured data: basicList from hand-annotated bytes (standards §5.3 #37/#38 loop guards), and
// subTemplateList / subTemplateMultiList decoded through the collector with the session's templates, incl.
// the §5.3 #39 (self reference, depth), #40 (inner length) and #41 (unknown template) cases: each is counted,
// its list kept as hex, and the records around it are decoded.
import fc from 'fast-check'
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { hex } from '../ipfix/testing.js'
import { recordLine } from '../cli/commands/collect.js'
import { FlowCollector, type CollectedRecord } from './decode-message.js'
import { OfflineReader } from './offline-reader.js'
import type { SessionKey } from './session.js'
import { MAX_DEPTH, basicListToJson, listToJson } from './structured.js'
import { normalize } from '../store/normalize.js'
import { RecordPlanner } from '../store/record-plan.js'
import { emptyBatch } from '../store/store.js'
import { COLUMNS } from '../schema/columns.js'

describe('basicList (RFC 6313 §4.5.3)', () => {
  it('decodes fixed-length and variable-length elements', () => {
    const counts: string[] = []
    const ports = hex('03  000b 0002  0050 01bb 0035') // allOf, destinationTransportPort, 2 octets each
    expect(basicListToJson(ports, (n) => counts.push(n))).toEqual({
      semantic: 'allOf',
      element: 'destinationTransportPort',
      values: [80, 443, 53],
    })
    const names = hex('04  0052 ffff  03 657468 ff0002 6c6f') // ordered, interfaceName, varlen "eth", "lo"
    expect(basicListToJson(names, (n) => counts.push(n))?.values).toEqual(['eth', 'lo'])
    const enterprise = hex('ff  8001 0001 0001e240  aa bb') // undefined semantic, PEN 123456 id 1
    expect(basicListToJson(enterprise, (n) => counts.push(n))).toEqual({
      semantic: 'undefined',
      element: '123456.1',
      values: ['aa', 'bb'],
    })
    expect(counts).toEqual([])
  })

  it('refuses a zero element length with content and overruns (#37, #38)', () => {
    const counts: string[] = []
    expect(basicListToJson(hex('03 000b 0000 0050'), (n) => counts.push(n))).toBeUndefined()
    expect(basicListToJson(hex('03 0052 ffff 09 6574'), (n) => counts.push(n))).toBeUndefined()
    expect(basicListToJson(hex('03 0052 ffff ff00'), (n) => counts.push(n))).toBeUndefined()
    expect(counts).toEqual(['basic_list_zero_length', 'basic_list_overrun', 'basic_list_overrun'])
  })
})

const KEY: SessionKey = {
  exporterAddress: '192.0.2.1',
  exporterPort: 40000,
  collectorAddress: '192.0.2.2',
  collectorPort: 4739,
  protocol: 'udp',
}
const h16 = (n: number): string => n.toString(16).padStart(4, '0')
const clean = (s: string): string => Buffer.from(hex(s)).toString('hex')
function msg(...sets: string[]): Uint8Array {
  const body = clean(sets.join(''))
  return hex(`000a ${h16(16 + body.length / 2)} 6553f100 00000000 00000001 ${body}`)
}
const set = (id: number, body: string): string =>
  `${h16(id)} ${h16(4 + clean(body).length / 2)} ${clean(body)}`
/** A variable-length field value with the 3-octet prefix RFC 6313 §5.1 recommends. */
const varlen = (body: string): string => `ff ${h16(clean(body).length / 2)} ${clean(body)}`

// 301: sourceIPv4Address + destinationTransportPort; 302: protocolIdentifier;
// 300: octetDeltaCount(4) + subTemplateList; 303: octetDeltaCount(4) + subTemplateMultiList;
// 304: subTemplateList only (a list of itself: the self reference of #39).
const TEMPLATES = set(
  2,
  `012d 0002 0008 0004 000b 0002
   012e 0001 0004 0001
   012c 0002 0001 0004 0124 ffff
   012f 0002 0001 0004 0125 ffff
   0130 0001 0124 ffff`,
)
const STL = (tid: number, records: string): string => varlen(`03 ${h16(tid)} ${records}`)

function decode(col: FlowCollector, ...sets: string[]): CollectedRecord[] {
  return col.decode(msg(...sets), KEY, 1_700_000_000_000).records
}

describe('subTemplateList and subTemplateMultiList (RFC 6313 §4.5.2, §4.5.3)', () => {
  it('decodes nested records with the session templates, as JSON', () => {
    const col = new FlowCollector()
    decode(col, TEMPLATES)
    const [r] = decode(col, set(300, `00000010 ${STL(301, '0a000001 0050 0a000002 01bb')}`))
    expect(recordLine(r!, false)).toEqual({
      octetDeltaCount: 16,
      subTemplateList: {
        semantic: 'allOf',
        templateId: 301,
        records: [
          { sourceIPv4Address: '10.0.0.1', destinationTransportPort: 80 },
          { sourceIPv4Address: '10.0.0.2', destinationTransportPort: 443 },
        ],
      },
    })
    const stml = varlen(`04  012d 000a 0a000003 0035  012e 0006 06 11  012e 0004`)
    const [m] = decode(col, set(303, `00000020 ${stml}`))
    expect(recordLine(m!, false)).toEqual({
      octetDeltaCount: 32,
      subTemplateMultiList: {
        semantic: 'ordered',
        lists: [
          { templateId: 301, records: [{ sourceIPv4Address: '10.0.0.3', destinationTransportPort: 53 }] },
          { templateId: 302, records: [{ protocolIdentifier: 6 }, { protocolIdentifier: 17 }] },
          { templateId: 302, records: [] },
        ],
      },
    })
    // A list of lists: 304 holds a subTemplateList of 301 records, nested in a list of 304 records.
    const inner = STL(301, '0a000009 0016')
    const [n] = decode(col, set(304, STL(304, inner)))
    expect(recordLine(n!, false)).toEqual({
      subTemplateList: {
        semantic: 'allOf',
        templateId: 304,
        records: [
          {
            subTemplateList: {
              semantic: 'allOf',
              templateId: 301,
              records: [{ sourceIPv4Address: '10.0.0.9', destinationTransportPort: 22 }],
            },
          },
        ],
      },
    })
    expect(col.allCounters().list_kept_hex).toBeUndefined()
  })

  it('stores decoded lists in the flow row as the same JSON (extra column), both ingest paths', () => {
    const col = new FlowCollector()
    decode(col, TEMPLATES)
    const [r] = decode(col, set(300, `00000010 ${STL(301, '0a000001 0050 0a000002 01bb')}`))
    const want = recordLine(r!, false).subTemplateList
    expect(want).toMatchObject({ templateId: 301 })
    const fromNormalize = JSON.parse(String(normalize(r!).extra)) as Record<string, unknown>
    expect(fromNormalize['subTemplateList']).toEqual(want)
    const batch = emptyBatch()
    new RecordPlanner().append(
      batch,
      r!,
      1n,
      COLUMNS.map((c) => c.name),
    )
    const fromPlan = JSON.parse(String(batch.columns['extra']?.[0])) as Record<string, unknown>
    expect(fromPlan['subTemplateList']).toEqual(want)
  })

  it('keeps malformed lists as hex, counts them, and decodes the records around them (§5.3 #39-#41)', () => {
    const col = new FlowCollector()
    decode(col, TEMPLATES)
    const good = STL(301, '0a000001 0050')
    // #39: 304 lists itself MAX_DEPTH + 4 levels deep.
    let deep = STL(301, '0a000001 0050')
    for (let i = 0; i < MAX_DEPTH + 4; i++) deep = STL(304, deep)
    const cases: Array<[string, string]> = [
      ['list_depth_exceeded', set(304, deep)],
      ['stml_bad_length', set(303, `00000002 ${varlen('03 012e 0002 06')}`)], // inner length < 4 (#40)
      ['stml_bad_length', set(303, `00000002 ${varlen('03 012e 0009 06')}`)], // beyond the list (#40)
      ['stl_unknown_template', set(300, `00000002 ${STL(999, '0a000001 0050')}`)], // #41
      ['list_varlen_overrun', set(304, STL(304, 'ff 0010 0102'))], // a record cut short
      ['stl_truncated', set(300, `00000002 ${varlen('03 01')}`)],
    ]
    for (const [counter, bad] of cases) {
      const before = col.allCounters()[counter] ?? 0
      const recs = decode(col, set(300, `00000001 ${good}`), bad, set(300, `00000003 ${good}`))
      expect(recs, counter).toHaveLength(3)
      expect(col.allCounters()[counter], counter).toBe(before + 1)
      const lines = recs.map((r) => recordLine(r, false))
      expect(lines[0]?.subTemplateList, counter).toMatchObject({ templateId: 301 })
      expect(lines[2]?.subTemplateList, counter).toMatchObject({ templateId: 301 })
      // The bad list is its hex, as received.
      const raw = lines[1]?.subTemplateList ?? lines[1]?.subTemplateMultiList
      expect(raw, counter).toMatch(/^([0-9a-f]{2})+$/)
    }
    // Inside a multi list, an entry with an unknown template is left as its hex; the others decode.
    const [m] = decode(col, set(303, `00000004 ${varlen('03 03e7 0006 0102 012e 0005 11')}`))
    expect(recordLine(m!, false).subTemplateMultiList).toEqual({
      semantic: 'allOf',
      lists: [
        { templateId: 999, unknownTemplate: true, data: '0102' },
        { templateId: 302, records: [{ protocolIdentifier: 17 }] },
      ],
    })
    expect(col.allCounters().list_kept_hex).toBe(cases.length)
  })

  it('never throws on random list content (fast-check), and gives JSON or undefined', () => {
    const col = new FlowCollector()
    decode(col, TEMPLATES)
    const t = (id: number) =>
      col.templates.get('udp:192.0.2.1:40000>192.0.2.2:4739', 10, 1, id, 1_700_000_000_000)
    expect(t(304)).toBeDefined()
    let counted = 0
    const ctx = { template: t, count: () => counted++ }
    fc.assert(
      fc.property(
        fc.constantFrom('basicList', 'subTemplateList', 'subTemplateMultiList' as const),
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom(0x012c, 0x012d, 0x012e, 0x012f, 0x0130),
        (type, body, tid) => {
          // Half the cases start with a known template id, so the records get decoded too.
          const b =
            body.byteLength >= 3 && body[0]! % 2 === 0
              ? Uint8Array.from([3, tid >> 8, tid & 255, ...body])
              : body
          const j = listToJson(type, b, ctx)
          expect(j === undefined || typeof j === 'object').toBe(true)
        },
      ),
      { numRuns: 3000, seed: 6313 },
    )
    expect(counted).toBeGreaterThan(0)
  })

  it('decodes real subTemplateMultiLists: YAF (CERT) exports, if present', async () => {
    const dir = '/work/shared/exports/ipfix/logstash__yaf-applabel'
    if (!existsSync(dir)) return
    const files = [
      'ipfix_test_yaf_tpls_option_tpl.dat',
      'ipfix_test_yaf_tpl45841.dat',
      'ipfix_test_yaf_data45841.dat',
      'ipfix_test_yaf_data45873.dat',
      'ipfix_test_yaf_data53248.dat',
    ].map((f) => `${dir}/${f}`)
    const col = new FlowCollector()
    const recs: CollectedRecord[] = []
    await new OfflineReader(col, (o) => recs.push(...o.records)).read(files)
    const lists = recs.map((r) => recordLine(r, false).subTemplateMultiList).filter((x) => x !== undefined)
    expect(lists).toEqual([
      {
        semantic: 'allOf',
        lists: [
          {
            templateId: 49156,
            records: [{ sourceMacAddress: '00:0c:29:70:86:09', destinationMacAddress: '00:0c:29:8d:af:c3' }],
          },
        ],
      },
      {
        semantic: 'allOf',
        lists: [
          {
            templateId: 49156,
            records: [{ sourceMacAddress: '00:0c:29:8d:af:c3', destinationMacAddress: '00:0c:29:a8:6e:2f' }],
          },
        ],
      },
    ])
  })
})
