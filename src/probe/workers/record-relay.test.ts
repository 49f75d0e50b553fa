// Workers' messages re-framed into one exporter: records intact (fixed and variable length), one sequence
// space, and a template layout that differs between workers is refused.
import { describe, expect, it } from 'vitest'
import { IpfixDecoder, recordToJson } from '../../ipfix/decoder.js'
import { FLOWTEL_ELEMENTS, FLOWTEL_PEN } from '../../ipfix/enterprise/flowtel.js'
import { IpfixExporter } from '../../ipfix/exporter.js'
import { Template } from '../../ipfix/template.js'
import { MemoryTransport } from '../../ipfix/testing.js'
import { RecordMerger, RelayTransport, REMAP_FIRST_ID, WORKER_EXPORTER_OPTIONS } from './record-relay.js'

const now = (): number => 1_700_000_000
const MAIN = {
  observationDomainId: 5,
  maxMessageSize: 512,
  templateRefreshSeconds: 600,
  templateRefreshMessages: 0,
  statsIntervalSeconds: 0,
  now,
}

function worker(template: Template, names: string[]): Uint8Array {
  const relay = new RelayTransport()
  const e = new IpfixExporter({ ...WORKER_EXPORTER_OPTIONS, now }, [relay])
  e.addTemplate(template)
  for (const [i, name] of names.entries()) {
    const w = e.beginRecord(template, 300)
    w.u32(i)
    w.string(name)
    e.endRecord()
  }
  e.flush()
  return new Uint8Array(relay.take() ?? new ArrayBuffer(0))
}

describe('record relay', () => {
  const t = Template.fromNames(300, [['flowId', 4], ['applicationName']])

  it('re-frames the records of several workers with one domain and consecutive sequence numbers', () => {
    const wire = new MemoryTransport()
    const main = new IpfixExporter(MAIN, [wire])
    const merger = new RecordMerger(main)
    const a = Array.from({ length: 40 }, (_, i) => `a${i}`.repeat(1 + (i % 5)))
    const b = ['x'.repeat(300), 'y', '']
    merger.accept(0, worker(t, a))
    merger.accept(1, worker(t, b))
    main.flush()
    const d = new IpfixDecoder()
    let seq = 0
    const names: string[] = []
    for (const m of wire.messages) {
      const msg = d.decode(m)
      expect(msg.error).toBeUndefined()
      expect(msg.odid).toBe(5)
      expect(msg.sequence).toBe(seq)
      seq += msg.records.length
      for (const r of msg.records) names.push(String(r.fields[1]?.value))
    }
    expect(names).toEqual([...a, ...b])
    expect(merger.templateIds).toEqual([300])
  })

  it('refuses a template whose layout differs between workers, naming both', () => {
    const main = new IpfixExporter(MAIN, [new MemoryTransport()])
    const merger = new RecordMerger(main)
    merger.accept(0, worker(t, ['a']))
    const other = Template.fromNames(300, [['flowId', 4], ['interfaceName']])
    expect(() => merger.accept(2, worker(other, ['b']))).toThrow(
      /template 300 differs between metering workers 0 and 2/,
    )
  })

  it('live (remap): a worker that redefines an ID gets a fresh one; the others keep the old layout', () => {
    const wire = new MemoryTransport()
    const main = new IpfixExporter(MAIN, [wire])
    const merger = new RecordMerger(main, { remap: true })
    const other = Template.fromNames(300, [['flowId', 4], ['interfaceName']])
    merger.accept(0, worker(t, ['a0']))
    // Worker 1 already switched its field groups: the same ID, another layout.
    merger.accept(1, worker(other, ['b0']))
    // Worker 0, not yet switched, still writes the old layout; then switches too.
    merger.accept(0, worker(t, ['a1']))
    merger.accept(0, worker(other, ['a2']))
    main.flush()
    expect(merger.templateIds).toEqual([300, REMAP_FIRST_ID])
    const d = new IpfixDecoder()
    const got: string[] = []
    for (const m of wire.messages) {
      const msg = d.decode(m)
      expect(msg.error).toBeUndefined()
      for (const r of msg.records)
        got.push(`${r.templateId}:${r.fields[1]?.name}=${String(r.fields[1]?.value)}`)
    }
    expect(got).toEqual([
      '300:applicationName=a0',
      `${REMAP_FIRST_ID}:interfaceName=b0`,
      '300:applicationName=a1',
      `${REMAP_FIRST_ID}:interfaceName=a2`,
    ])
  })

  it("announces the Flowtel elements of the workers' templates (RFC 5610), unknown to this thread before", () => {
    // Found by the probe fuzz campaign: with --workers, the main thread never registered them (the workers
    // build the templates), so the probe sent no RFC 5610 records at all and JSON lines read "32473.1".
    const [id, name] = FLOWTEL_ELEMENTS[0]!
    const ft = new Template(301, [{ id, pen: FLOWTEL_PEN, length: 4 }])
    const relay = new RelayTransport()
    const e = new IpfixExporter({ ...WORKER_EXPORTER_OPTIONS, now }, [relay])
    e.addTemplate(ft)
    e.beginRecord(ft, 4).u32(1234)
    e.endRecord()
    e.flush()
    const wire = new MemoryTransport()
    const main = new IpfixExporter({ ...MAIN, rfc5610: true }, [wire])
    new RecordMerger(main).accept(0, new Uint8Array(relay.take() ?? new ArrayBuffer(0)))
    main.flush()
    const d = new IpfixDecoder()
    const records = wire.messages.flatMap((m) => d.decode(m).records.map(recordToJson))
    expect(records).toContainEqual(expect.objectContaining({ informationElementName: name }))
    expect(records).toContainEqual({ [name]: 1234 })
  })

  it('refuses a stream that is not IPFIX', () => {
    const merger = new RecordMerger(new IpfixExporter(MAIN, [new MemoryTransport()]))
    expect(() => merger.accept(1, new Uint8Array(20))).toThrow(/worker 1 relayed a malformed IPFIX message/)
  })
})

describe('record relay: outputs held for DNS answer cache lookups', () => {
  it('checks a held output from the lookup where the last check stopped, not from its first', () => {
    const merger = new RecordMerger(new IpfixExporter(MAIN, [new MemoryTransport()]), { workers: 2 })
    // Worker 0 holds one output of 2000 lookups due at 1..2000 µs and has metered past them; worker 1 then
    // advances 1 µs a report, so each report answers one more lookup.
    const n = 2000
    const lookups: [number, number, number][] = Array.from({ length: n }, (_, i) => [i + 1, 0x0a000001, i])
    merger.acceptShared(0, undefined, { answers: [], lookups }, n + 1)
    expect(merger.waiting).toBe(1)
    merger.heldSteps = 0
    for (let t = 1; t <= n; t++) {
      merger.acceptShared(1, undefined, undefined, t)
      expect(merger.waiting).toBe(t < n ? 1 : 0)
    }
    // Each lookup looked at once when answered, plus one look a report (a rescan from the first lookup
    // looked at 2000 · 2001 / 2 of them).
    expect(merger.heldSteps).toBeLessThanOrEqual(n + n + 1)
  })
})
