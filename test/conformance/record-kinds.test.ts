// Record kinds (docs/elements.md): the ICMP type/code pair only in the templates of ICMP/ICMPv6 flows,
// layer2SegmentId only in those of tunnelled flows, 4-octet counters in the templates 40 above when all four
// fit in 32 bits; each template is sent before the first record using it.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../helpers/shared.js'
import { decodeStream, runToMemory, setsOf } from './harness.js'

const FIXTURES = join(REPO_ROOT, 'test/fixtures/pcap')

async function recordsByTemplate(file: string) {
  const { messages } = await runToMemory([join(FIXTURES, file)])
  const { msgs, decoder } = decodeStream(messages)
  expect(decoder.counters).toEqual({})
  const known = new Set<number>()
  for (const m of messages)
    for (const s of setsOf(m)) {
      if (s.setId === 2) for (const t of s.templates) known.add(t.id)
      else if (s.setId >= 256 && s.setId < 400) expect(known.has(s.setId), `data set ${s.setId}`).toBe(true)
    }
  return msgs.flatMap((m) => m.records.filter((r) => !r.isOptions))
}

describe('record kinds', () => {
  it('puts GRE-tunnelled flows in the tunnel templates and ICMP flows in the ICMP templates', async () => {
    const recs = await recordsByTemplate('tunnels/tcpdump-various_gre.pcap')
    expect(recs.length).toBeGreaterThan(0)
    for (const r of recs) {
      const icmp = r.json.protocolIdentifier === 1 || r.json.protocolIdentifier === 58
      const tunnelled = 'layer2SegmentId' in r.json
      const v6 = r.json.ipVersion === 6
      // These small flows all have counters that fit in 32 bits (RecordKind.Counters32: 40 above).
      expect(r.templateId).toBe(296 + 2 * ((tunnelled ? 1 : 0) + (icmp ? 2 : 0)) + (v6 ? 1 : 0))
      expect('icmpTypeCodeIPv4' in r.json || 'icmpTypeCodeIPv6' in r.json).toBe(icmp)
    }
    expect(recs.some((r) => 'layer2SegmentId' in r.json)).toBe(true)
  })

  it('gives ICMP echo flows the ICMP template and keeps their type and code', async () => {
    const recs = await recordsByTemplate('formats/arkime-bigendian.pcap')
    const icmp = recs.filter((r) => r.json.protocolIdentifier === 1)
    expect(icmp.length).toBeGreaterThan(0)
    for (const r of icmp) {
      expect(r.templateId).toBe(300)
      expect(r.json.icmpTypeCodeIPv4).toBe(8 * 256)
    }
  })
})
