// The Flowmon table matches flowmon.xml exactly (ids, names, types; skipped without ../shared), the Flowtel
// table is well-formed, and the exporter's RFC 5610 records (RFC 5610 §3) describe every enterprise element
// a data template uses, before the templates, with the right type, semantics and units codes.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SHARED } from '../../../test/helpers/shared.js'
import { IpfixDecoder } from '../decoder.js'
import { elementByName, lookupElement } from '../elements.js'
import { IpfixExporter, RFC5610_TEMPLATE_ID } from '../exporter.js'
import { Template } from '../template.js'
import { MemoryTransport } from '../testing.js'
import { FLOWMON_ELEMENTS, FLOWMON_PEN } from './flowmon.js'
import { FLOWTEL_ELEMENTS, FLOWTEL_PEN, describeElement, registerEnterpriseElements } from './flowtel.js'

const XML = join(SHARED, 'reference/elements/flowmon.xml')

describe('Flowmon elements', () => {
  it.skipIf(!existsSync(XML))('match flowmon.xml exactly', () => {
    const xml = readFileSync(XML, 'utf8')
    const want = [...xml.matchAll(/<element>([\s\S]*?)<\/element>/g)].map((m) => {
      const b = m[1] ?? ''
      return [
        Number(/<id>\s*(\d+)/.exec(b)?.[1]),
        /<name>\s*(\w+)/.exec(b)?.[1],
        /<dataType>\s*(\w+)/.exec(b)?.[1],
      ]
    })
    expect(FLOWMON_ELEMENTS.map(([id, name, type]) => [id, name, type])).toEqual(want)
  })

  it('register under PEN 39499 without taking IANA names', () => {
    registerEnterpriseElements()
    expect(elementByName('npnRoundTripTime')).toMatchObject({ pen: FLOWMON_PEN, id: 69, type: 'unsigned32' })
    expect(elementByName('arpOp')).toMatchObject({ pen: FLOWMON_PEN, id: 191, type: 'unsigned16' })
    expect(elementByName('httpStatusCode').pen).toBe(0)
    expect(lookupElement(FLOWMON_PEN, 12)?.name).toBe('httpStatusCode@39499')
  })
})

describe('Flowtel elements', () => {
  it('have unique ids and names and a description each', () => {
    registerEnterpriseElements()
    expect(new Set(FLOWTEL_ELEMENTS.map((r) => r[0])).size).toBe(FLOWTEL_ELEMENTS.length)
    expect(new Set(FLOWTEL_ELEMENTS.map((r) => r[1])).size).toBe(FLOWTEL_ELEMENTS.length)
    for (const [id, name, type] of FLOWTEL_ELEMENTS) {
      expect(lookupElement(FLOWTEL_PEN, id)).toMatchObject({ name, type })
      expect(describeElement(FLOWTEL_PEN, id)).toBeTruthy()
    }
  })
})

describe('RFC 5610 records', () => {
  it('announce each enterprise element of the data templates before the templates', async () => {
    registerEnterpriseElements()
    const t = new MemoryTransport()
    const e = new IpfixExporter(
      {
        observationDomainId: 1,
        maxMessageSize: 1400,
        templateRefreshSeconds: 600,
        templateRefreshMessages: 0,
        statsIntervalSeconds: 0,
        rfc5610: true,
        describeElement,
        now: () => 1_700_000_000,
      },
      [t],
    )
    const tpl = Template.fromNames(300, [
      ['octetDeltaCount'],
      ['reverseOctetDeltaCount'],
      ['npnRoundTripTime'],
      ['flowtelTcpRttServer'],
      ['flowtelTcpSackPermitted'],
    ])
    e.addTemplate(tpl)
    const w = e.beginRecord(tpl, tpl.fixedLength)
    w.u64(1)
    w.u64(2)
    w.u32(3)
    w.u32(4)
    w.u8(1)
    e.endRecord()
    await e.close()
    const d = new IpfixDecoder()
    const msgs = t.messages.map((m) => d.decode(m))
    const info = msgs.flatMap((m) => m.records).filter((r) => r.templateId === RFC5610_TEMPLATE_ID)
    const byName = new Map(
      info.map((r) => [r.fields.find((f) => f.name === 'informationElementName')?.value, r]),
    )
    expect([...byName.keys()].sort()).toEqual([
      'flowtelTcpRttServer',
      'flowtelTcpSackPermitted',
      'npnRoundTripTime',
    ])
    const v = (name: string, field: string): unknown =>
      byName.get(name)?.fields.find((f) => f.name === field)?.value
    expect(v('npnRoundTripTime', 'privateEnterpriseNumber')).toBe(FLOWMON_PEN)
    expect(v('npnRoundTripTime', 'informationElementId')).toBe(69)
    expect(v('npnRoundTripTime', 'informationElementDataType')).toBe(3) // unsigned32
    expect(v('npnRoundTripTime', 'informationElementUnits')).toBe(7) // microseconds
    expect(v('flowtelTcpRttServer', 'informationElementSemantics')).toBe(1) // quantity
    expect(v('flowtelTcpSackPermitted', 'informationElementDataType')).toBe(11) // boolean
    expect(v('flowtelTcpRttServer', 'informationElementDescription')).toMatch(/SYN to SYN\/ACK/)
    // Order: the RFC 5610 options template and records come before the data template 300.
    const firstInfo = msgs.findIndex((m) => m.records.some((r) => r.templateId === RFC5610_TEMPLATE_ID))
    const dataTemplateMsg = t.messages.findIndex((m) => {
      const view = new DataView(m.buffer, m.byteOffset, m.byteLength)
      return m.byteLength > 20 && view.getUint16(16) === 2 && view.getUint16(20) === 300
    })
    expect(firstInfo).toBeGreaterThanOrEqual(0)
    expect(dataTemplateMsg).toBeGreaterThan(firstInfo)
  })

  it('are not sent when the templates use no enterprise element', async () => {
    const t = new MemoryTransport()
    const e = new IpfixExporter(
      {
        observationDomainId: 1,
        maxMessageSize: 1400,
        templateRefreshSeconds: 600,
        templateRefreshMessages: 0,
        statsIntervalSeconds: 0,
        rfc5610: true,
        now: () => 1_700_000_000,
      },
      [t],
    )
    e.addTemplate(Template.fromNames(300, [['octetDeltaCount'], ['reverseOctetDeltaCount']]))
    await e.close()
    const d = new IpfixDecoder()
    const recs = t.messages.flatMap((m) => d.decode(m).records)
    expect(recs.filter((r) => r.templateId === RFC5610_TEMPLATE_ID)).toHaveLength(0)
  })
})
