// The exit summary's sequence accounting (sequence-summary.ts): with many sessions it lists the trackers
// with the most loss, at most SUMMARY_SEQUENCE_TOP, and sums the rest, so the line stays short.
import { describe, expect, it } from 'vitest'
import { hex } from '../ipfix/testing.js'
import { FlowCollector } from './decode-message.js'
import { SUMMARY_SEQUENCE_TOP, sequenceSummary } from './sequence-summary.js'
import type { SessionKey } from './session.js'

const h32 = (n: number): string => n.toString(16).padStart(8, '0')
/** An IPFIX message with no sets: sequence `seq`, domain 1. */
const header = (seq: number): Uint8Array => hex(`000a 0010 6553f100 ${h32(seq)} 00000001`)
const key = (port: number): SessionKey => ({
  exporterAddress: '192.0.2.1',
  exporterPort: port,
  collectorAddress: '192.0.2.2',
  collectorPort: 4739,
  protocol: 'udp',
})

describe('sequence summary', () => {
  it('lists the trackers with the most loss and sums the rest into one entry', () => {
    const col = new FlowCollector()
    // 5000 sessions; session i (for i < 30) skips i + 1 records between its two messages.
    for (let i = 0; i < 5000; i++) {
      col.decode(header(0), key(10_000 + i), 0)
      col.decode(header(i < 30 ? i + 1 : 0), key(10_000 + i), 0)
    }
    const s = sequenceSummary(col.sessions.values())
    const listed = Object.entries(s.sequence)
    expect(listed).toHaveLength(SUMMARY_SEQUENCE_TOP)
    // Most lost first: sessions 29, 28, ... 10.
    expect(listed.map(([, t]) => t.lost)).toEqual(Array.from({ length: 20 }, (_, i) => 30 - i))
    expect(listed[0]![0]).toContain(':10029>')
    const lostListed = listed.reduce((n, [, t]) => n + t.lost, 0)
    expect(s.omitted).toMatchObject({ trackers: 5000 - 20, messages: 2 * (5000 - 20) })
    expect(lostListed + s.omitted!.lost).toBe((30 * 31) / 2)
    expect(JSON.stringify(s).length).toBeLessThan(6000)
  })

  it('lists every tracker and omits nothing when there are few', () => {
    const col = new FlowCollector()
    col.decode(header(0), key(1), 0)
    col.decode(header(0), key(2), 0)
    const s = sequenceSummary(col.sessions.values())
    expect(Object.keys(s.sequence)).toHaveLength(2)
    expect(s.omitted).toBeUndefined()
  })
})
