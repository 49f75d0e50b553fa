// RFC 7011 §8 template rules, data before its template (§8, §9.3), sequence accounting (§10.3.2, §11.6),
// template persistence, TCP framing and the standards §5.3 malformed-input contract, for the collector.
import fc from 'fast-check'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { recordToJson } from '../ipfix/decoder.js'
import { hex } from '../ipfix/testing.js'
import { FlowCollector } from './decode-message.js'
import { SequenceTracker, type SessionKey } from './session.js'
import { TcpFramer } from './tcp-framer.js'

const UDP: SessionKey = {
  exporterAddress: '192.0.2.1',
  exporterPort: 40000,
  collectorAddress: '192.0.2.2',
  collectorPort: 4739,
  protocol: 'udp',
}
const TCP: SessionKey = { ...UDP, protocol: 'tcp' }
const NOW = 1_700_000_000_000

const h16 = (n: number): string => n.toString(16).padStart(4, '0')
const h32 = (n: number): string => n.toString(16).padStart(8, '0')

/** An IPFIX message: header (export time 1 700 000 000) + sets given as hex. */
function msg(seq: number, odid: number, ...sets: string[]): Uint8Array {
  const body = hex(sets.join(''))
  return hex(
    `000a ${h16(16 + body.byteLength)} 6553f100 ${h32(seq)} ${h32(odid)}` + Buffer.from(body).toString('hex'),
  )
}
const set = (id: number, body: string): string => {
  const b = hex(body)
  return `${h16(id)} ${h16(4 + b.byteLength)} ${Buffer.from(b).toString('hex')}`
}
/** Template `id`: sourceIPv4Address(8) + octetDeltaCount(1) as 4 octets. */
const T_ADDR_BYTES = (id: number): string => set(2, `${h16(id)} 0002  0008 0004  0001 0004`)
/** Template `id`: destinationTransportPort(11) only. */
const T_PORT = (id: number): string => set(2, `${h16(id)} 0001  000b 0002`)
const D_ADDR_BYTES = (id: number, ...recs: Array<[string, number]>): string =>
  set(id, recs.map(([a, n]) => Buffer.from(a.split('.').map(Number)).toString('hex') + h32(n)).join(''))
const WITHDRAW = (id: number): string => set(2, `${h16(id)} 0000`)

describe('RFC 7011 §8 template state', () => {
  it('keys templates by session and observation domain (no cross-talk, §5.3 #22, #23)', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, T_ADDR_BYTES(256)), UDP, NOW)
    col.decode(msg(0, 2, T_PORT(256)), UDP, NOW)
    const other = { ...UDP, exporterPort: 40001 }
    col.decode(msg(0, 1, T_PORT(256)), other, NOW)
    const a = col.decode(msg(0, 1, D_ADDR_BYTES(256, ['10.0.0.1', 5])), UDP, NOW).records
    expect(a.map(recordToJson)).toEqual([{ sourceIPv4Address: '10.0.0.1', octetDeltaCount: 5 }])
    const b = col.decode(msg(0, 2, set(256, '0035')), UDP, NOW).records
    expect(b.map(recordToJson)).toEqual([{ destinationTransportPort: 53 }])
    const c = col.decode(msg(0, 1, set(256, '01bb')), other, NOW).records
    expect(c.map(recordToJson)).toEqual([{ destinationTransportPort: 443 }])
  })

  it('UDP: a redefinition replaces at once; withdrawals are ignored and counted (§8.4, §5.3 #13, #25)', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, T_ADDR_BYTES(256)), UDP, NOW)
    const out = col.decode(msg(0, 1, T_PORT(256), set(256, '0050')), UDP, NOW)
    expect(out.events[0]?.status).toBe('updated')
    expect(out.records.map(recordToJson)).toEqual([{ destinationTransportPort: 80 }])
    col.decode(msg(1, 1, WITHDRAW(256)), UDP, NOW)
    expect(col.allCounters()['udp_withdrawal_ignored']).toBe(1)
    expect(col.decode(msg(1, 1, set(256, '0050')), UDP, NOW).records).toHaveLength(1)
  })

  it('UDP: templates expire after the configured lifetime', () => {
    const col = new FlowCollector({ templates: { lifetimeMs: 60_000 } })
    col.decode(msg(0, 1, T_PORT(256)), UDP, NOW)
    expect(col.decode(msg(0, 1, set(256, '0050')), UDP, NOW + 59_000).records).toHaveLength(1)
    expect(col.decode(msg(1, 1, set(256, '0050')), UDP, NOW + 61_000).records).toHaveLength(0)
    expect(col.allCounters()['template_expired']).toBe(1)
  })

  it('TCP: withdrawals apply in message order; All Templates Withdrawal only hits its domain (§8.1, #26)', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, T_PORT(256), T_PORT(257)), TCP, NOW)
    col.decode(msg(0, 2, T_PORT(256)), TCP, NOW)
    // Data, withdrawal, data in one message: the first set decodes, the second waits.
    const out = col.decode(msg(0, 1, set(256, '0001'), WITHDRAW(256), set(256, '0002')), TCP, NOW)
    expect(out.records).toHaveLength(1)
    expect(out.events.map((e) => e.event)).toEqual(['withdrawal'])
    col.decode(msg(1, 1, WITHDRAW(999)), TCP, NOW)
    expect(col.allCounters()['withdrawal_unknown']).toBe(1)
    col.decode(msg(1, 1, set(2, '0002 0000')), TCP, NOW) // all templates of domain 1
    expect(col.decode(msg(1, 1, set(257, '0003')), TCP, NOW).records).toHaveLength(0)
    expect(col.decode(msg(0, 2, set(256, '0004')), TCP, NOW).records).toHaveLength(1)
    // The end of the session withdraws everything else.
    col.endSession(col.sessions.keys().next().value!)
    expect(col.templates.size).toBe(0)
  })

  it('TCP: an All Templates Withdrawal takes its kind only, by an index, not by walking the store', () => {
    const col = new FlowCollector()
    // Domain 1: data templates 256, 257 and options template 258 (scope sourceIPv4Address); 259 turns from
    // data into options by redefinition; domain 2: data template 256.
    const OPT = (id: number): string => set(3, `${h16(id)} 0001 0001 0008 0004`)
    col.decode(msg(0, 1, T_PORT(256), T_PORT(257), OPT(258), T_PORT(259)), TCP, NOW)
    col.decode(msg(1, 1, OPT(259)), TCP, NOW)
    col.decode(msg(0, 2, T_PORT(256)), TCP, NOW)
    // The withdrawals find what they take without iterating the store's map (thousands of them in one
    // message would walk it thousands of times).
    const walks = vi.spyOn((col.templates as unknown as { map: Map<string, unknown> }).map, Symbol.iterator)
    const all = Array.from({ length: 1000 }, () => '0002 0000').join(' ')
    col.decode(msg(2, 1, set(2, all)), TCP, NOW) // All Templates Withdrawal × 1000: data templates only
    expect(walks).not.toHaveBeenCalled()
    walks.mockRestore()
    expect(col.allCounters()['withdrawal_all']).toBe(1000)
    const left = (id: number, domain: number): boolean =>
      col.decode(msg(3, domain, set(id, '00000001')), TCP, NOW).records.length > 0
    expect([left(256, 1), left(257, 1), left(258, 1), left(259, 1), left(256, 2)]).toEqual([
      false,
      false,
      true,
      true,
      true,
    ])
    col.decode(msg(4, 1, set(3, '0003 0000')), TCP, NOW) // All Options Templates Withdrawal
    expect([left(258, 1), left(259, 1), left(256, 2)]).toEqual([false, false, true])
  })

  it('templates and options templates share one id space: the last definition wins (#24)', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, T_PORT(256)), UDP, NOW)
    // Options template 256: scope observationDomainId(149) 4, field exportedMessageTotalCount(41) 8.
    col.decode(msg(0, 1, set(3, '0100 0002 0001  0095 0004  0029 0008')), UDP, NOW)
    const r = col.decode(msg(0, 1, set(256, '00000001 0000000000000009')), UDP, NOW).records
    expect(r[0]?.isOptions).toBe(true)
    expect(recordToJson(r[0]!)).toEqual({ observationDomainId: 1, exportedMessageTotalCount: 9 })
  })

  it('is bounded: the least recently defined template is evicted and counted (#20, #21)', () => {
    const col = new FlowCollector({ templates: { maxTemplates: 4, maxPerSession: 3 } })
    for (let id = 256; id < 260; id++) col.decode(msg(0, 1, T_PORT(id)), UDP, NOW)
    expect(col.templates.size).toBe(3)
    expect(col.allCounters()['template_limit_session']).toBe(1)
    for (let port = 1; port <= 3; port++)
      col.decode(msg(0, 1, T_PORT(256)), { ...UDP, exporterPort: port }, NOW)
    expect(col.templates.size).toBe(4)
    expect(col.allCounters()['template_evicted']).toBe(2)
  })

  it("keeps a session's template count right when a full store evicts its own templates", () => {
    const col = new FlowCollector({ templates: { maxTemplates: 4, maxPerSession: 8 } })
    for (let id = 256; id < 276; id++) col.decode(msg(0, 1, T_PORT(id)), UDP, NOW)
    expect(col.templates.size).toBe(4)
    expect(col.allCounters()).toMatchObject({ template_evicted: 16 })
    expect(col.allCounters()['template_limit_session']).toBeUndefined()
    expect(col.decode(msg(1, 1, set(275, '0050')), UDP, NOW).records).toHaveLength(1)
  })

  it('rejects bad template records but keeps the other sets (#12, #16)', () => {
    const col = new FlowCollector()
    const out = col.decode(
      msg(
        0,
        1,
        set(2, '00ff 0001 000b 0002'), // template id 255
        set(3, '0101 0001 0000 000b 0002'), // scope count 0
        T_PORT(258),
        set(258, '0016'),
      ),
      UDP,
      NOW,
    )
    expect(out.records.map(recordToJson)).toEqual([{ destinationTransportPort: 22 }])
    expect(col.allCounters()['template_bad_id']).toBe(1)
    expect(col.allCounters()['template_bad_scope_count']).toBe(1)
  })

  it('keeps an unknown enterprise element as hex under (PEN, id)', () => {
    const col = new FlowCollector()
    const out = col.decode(
      msg(0, 1, set(2, '0100 0001  8123 0003 0001e240'), set(256, 'abcdef')), // PEN 123456, id 0x123
      UDP,
      NOW,
    )
    expect(recordToJson(out.records[0]!)).toEqual({ '123456.291': 'abcdef' })
  })
})

describe('data before its template (RFC 7011 §8, §9.3)', () => {
  it('decodes waiting data sets once the template arrives, in arrival order', () => {
    const col = new FlowCollector()
    const early = col.decode(msg(0, 1, D_ADDR_BYTES(256, ['10.0.0.1', 1], ['10.0.0.2', 2])), UDP, NOW)
    expect(early.records).toHaveLength(0)
    expect(col.pending.size).toBe(1)
    col.decode(msg(2, 1, D_ADDR_BYTES(256, ['10.0.0.3', 3])), UDP, NOW + 10)
    const late = col.decode(msg(3, 1, T_ADDR_BYTES(256)), UDP, NOW + 20)
    expect(late.records.map((r) => [recordToJson(r), r.deferred, r.sequence])).toEqual([
      [{ sourceIPv4Address: '10.0.0.1', octetDeltaCount: 1 }, true, 0],
      [{ sourceIPv4Address: '10.0.0.2', octetDeltaCount: 2 }, true, 0],
      [{ sourceIPv4Address: '10.0.0.3', octetDeltaCount: 3 }, true, 2],
    ])
    expect(col.pending.size).toBe(0)
    expect(col.allCounters()['pending_decoded']).toBe(2)
    // The template is learnt: later data decodes directly.
    expect(col.decode(msg(3, 1, D_ADDR_BYTES(256, ['10.0.0.4', 4])), UDP, NOW).records[0]?.deferred).toBe(
      false,
    )
  })

  it('does the same for NetFlow v9, with the times of the message the data came in', () => {
    const col = new FlowCollector()
    const header = (seq: number): string => `0009 0001 00002710 6553f100 ${h32(seq)} 00000000`
    col.decode(hex(header(1) + '0100 0008 00000fa0'), UDP, NOW) // FIRST_SWITCHED 4000
    const out = col.decode(hex(header(2) + '0000 000c 0100 0001 0016 0004'), UDP, NOW)
    expect(recordToJson(out.records[0]!)).toEqual({
      flowStartSysUpTime: 4000,
      flowStartMilliseconds: new Date(1_700_000_000_000 - 6000).toISOString(),
    })
  })

  it('is bounded by count, bytes and age, and counts what it drops', () => {
    const col = new FlowCollector({ pending: { maxSets: 2, maxBytes: 1000, maxAgeMs: 1000 } })
    for (let i = 0; i < 3; i++) col.decode(msg(i, 1, set(256 + i, '0001')), UDP, NOW)
    expect(col.pending.size).toBe(2)
    expect(col.allCounters()['pending_evicted']).toBe(1)
    col.expire(NOW + 1001)
    expect(col.pending.size).toBe(0)
    expect(col.allCounters()['pending_expired']).toBe(2)
    col.decode(msg(9, 1, set(300, '00'.repeat(1200))), UDP, NOW)
    expect(col.allCounters()['pending_rejected']).toBe(1)
  })
})

describe('sequence accounting (RFC 7011 §10.3.2, §11.6)', () => {
  it('counts lost records, reordering, and handles the 2^32 wrap', () => {
    const t = new SequenceTracker()
    t.observe(3, 1)
    t.observe(10, 2) // expected 4: 6 lost
    expect(t.stats.lost).toBe(6)
    t.observe(5, 1) // late
    expect(t.stats.reordered).toBe(1)
    expect(t.next).toBe(12)
    const w = new SequenceTracker()
    w.observe(0xffffffff, 1)
    w.observe(0, 5) // wrapped: no gap (§5.3 #43)
    w.observe(5, 1)
    expect(w.stats.lost).toBe(0)
    expect(w.stats.gapEvents).toBe(0)
  })

  it('does not blindly follow one far jump, but follows a restart that continues (#44, #45)', () => {
    const t = new SequenceTracker()
    t.observe(1000, 10)
    t.observe(3_000_000_000, 10) // far future: suspect
    expect(t.next).toBe(1010)
    t.observe(1010, 10) // normal numbers go on: no loss, no reordering
    expect(t.stats).toMatchObject({ lost: 0, reordered: 0, jumps: 1, resets: 0 })
    t.observe(0, 5) // exporter restart: looks late at first
    t.observe(5, 5)
    t.observe(10, 5) // three messages continue each other: a restart, resync
    expect(t.stats).toMatchObject({ lost: 0, reordered: 0, reorderedMessages: 0, resets: 1 })
    expect(t.next).toBe(15)
    t.observe(2_000_000_000, 1) // far jumps that go on are followed after three messages too
    t.observe(2_000_000_001, 1)
    t.observe(2_000_000_002, 1)
    expect(t.stats.resets).toBe(2)
    expect(t.next).toBe(2_000_000_003)
  })

  it('does not count the records of data waiting for a template as lost', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, T_PORT(256), set(256, '0001')), UDP, NOW)
    col.decode(msg(1, 1, set(257, '00010002')), UDP, NOW) // unknown count
    col.decode(msg(3, 1, set(256, '0001')), UDP, NOW)
    col.decode(msg(9, 1, set(256, '0001')), UDP, NOW) // 5 lost
    const s = col.sessions.values().next().value!.sequence('ipfix', 1).stats
    expect(s).toMatchObject({ lost: 5, unverifiable: 1, gapEvents: 1 })
  })
})

describe('template persistence', () => {
  it('a restarted collector decodes with the templates saved before', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowtel-tpl-'))
    try {
      const file = join(dir, 'templates.json')
      const a = new FlowCollector()
      a.decode(msg(0, 1, T_ADDR_BYTES(256), set(3, '0101 0002 0001  0095 0004  0029 0008')), UDP, NOW)
      a.decode(hex(`0009 0001 00002710 6553f100 00000001 00000007 0000 000c 0102 0001 9c40 0004`), UDP, NOW)
      a.templates.saveFile(file)
      const b = new FlowCollector()
      expect(b.templates.loadFile(file)).toBe(3)
      const r = b.decode(msg(1, 1, D_ADDR_BYTES(256, ['10.1.1.1', 7])), UDP, NOW).records
      expect(r.map(recordToJson)).toEqual([{ sourceIPv4Address: '10.1.1.1', octetDeltaCount: 7 }])
      const v9 = b.decode(hex(`0009 0001 00002710 6553f100 00000002 00000007 0102 0008 6a6f686e`), UDP, NOW)
      expect(v9.records[0]?.fields[0]).toMatchObject({ pen: 4294967295, id: 7232, value: 'john' })
      expect(b.templates.loadFile(join(dir, 'missing.json'))).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('TCP framing (RFC 7011 §10.4.3)', () => {
  it('frames messages by the header Length across arbitrary chunk boundaries', () => {
    const m1 = msg(0, 1, T_PORT(256))
    const m2 = msg(0, 1, set(256, '0050'))
    const stream = new Uint8Array([...m1, ...m2])
    for (let cut = 1; cut < stream.byteLength; cut++) {
      const f = new TcpFramer()
      const got = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))]
      expect(got.map((m) => m.byteLength)).toEqual([m1.byteLength, m2.byteLength])
    }
    const bad = new TcpFramer()
    expect(bad.push(hex('0005 0001 00000000'))).toEqual([])
    expect(bad.fault).toBe('tcp_not_ipfix')
  })

  it('copies each octet a bounded number of times when a message arrives one octet per chunk', () => {
    // A 16 KiB message (a data set of 16 320 octets) fed one octet at a time: the octets copied by
    // TypedArray set/slice stay linear in the message (copying the whole buffer per chunk was quadratic:
    // 134 million octets here, 2.1 billion for a 64 KiB message).
    const m = msg(0, 1, set(256, '00'.repeat(16_364)))
    expect(m.byteLength).toBe(16_384)
    const typedArray = Object.getPrototypeOf(Uint8Array.prototype) as {
      set: (this: Uint8Array, src: ArrayLike<number>, offset?: number) => void
      slice: (this: Uint8Array, start?: number, end?: number) => Uint8Array
    }
    let copied = 0
    const set0 = typedArray.set
    const slice0 = typedArray.slice
    const setSpy = vi.spyOn(typedArray, 'set').mockImplementation(function (this: Uint8Array, src, offset) {
      copied += src.length
      set0.call(this, src, offset)
    })
    const sliceSpy = vi.spyOn(typedArray, 'slice').mockImplementation(function (this: Uint8Array, s, e) {
      const r = slice0.call(this, s, e)
      copied += r.byteLength
      return r
    })
    const f = new TcpFramer()
    const got: Uint8Array[] = []
    try {
      for (let i = 0; i < m.byteLength; i++) got.push(...f.push(m.subarray(i, i + 1)))
    } finally {
      setSpy.mockRestore()
      sliceSpy.mockRestore()
    }
    expect(got).toHaveLength(1)
    expect(Buffer.from(got[0]!).equals(Buffer.from(m))).toBe(true)
    expect(f.buffered).toBe(0)
    expect(copied).toBeLessThanOrEqual(2 * m.byteLength)
  })
})

describe('malformed input (standards §5.3)', () => {
  it('counts faults, never loops, and decodes the good messages around them', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, T_PORT(256)), UDP, NOW)
    const bad = [
      hex('000a'), // #1 short
      hex('000b 0010 00000000 00000000 00000001'), // #2 version 11
      hex('000a 000c 00000000 00000000 00000001'), // #3 length < 16
      hex('000a ffff 00000000 00000000 00000001'), // #4 length > datagram
      msg(0, 1, '0100 0000'), // #7 set length 0
      msg(0, 1, '0100 0002 0000'), // #7 set length 2
      msg(0, 1, '0100 0040 0050'), // #9 set beyond the message
      msg(0, 1, set(2, '0101 ffff 000b 0002')), // #14 field count 65535
      msg(0, 1, set(2, '0101 0001 800b 0002 0000')), // #15 PEN cut short
    ]
    for (const b of bad) {
      const out = col.decode(b, UDP, NOW)
      expect(out.records).toHaveLength(0)
    }
    const c = col.allCounters()
    expect(c['malformed_messages']).toBe(7)
    expect(c['template_truncated']).toBe(2)
    const good = col.decode(msg(1, 1, set(256, '0050'), set(256, '0051')), UDP, NOW)
    expect(good.records).toHaveLength(2)
    // Trailing bytes after Length are tolerated (#5); header-only messages are fine (#6).
    const trailing = new Uint8Array([...msg(2, 1, set(256, '0050')), 0, 0])
    expect(col.decode(trailing, UDP, NOW).records).toHaveLength(1)
    expect(col.decode(msg(3, 1), UDP, NOW).error).toBeUndefined()
    // 16 000 empty sets in one message: bounded (#8).
    const empties = msg(3, 1, '0100 0004'.repeat(16000))
    expect(col.decode(empties, UDP, NOW).error).toBeUndefined()
  })

  it('never throws on random or mutated input (fast-check)', () => {
    const seed = [
      msg(0, 1, T_ADDR_BYTES(256), D_ADDR_BYTES(256, ['10.0.0.1', 1])),
      hex('0009 0002 00002710 6553f100 00000007 0000002a 0000 000c 0100 0001 0008 0004 0100 0008 0a000001'),
      hex('0005 0001' + '00'.repeat(20) + '00'.repeat(48)),
    ]
    const col = new FlowCollector({ pending: { maxSets: 100 } })
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: seed.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(),
        (which, flips, cut) => {
          const b = seed[which]!.slice()
          for (const [at, v] of flips) b[at % b.byteLength] = v
          const m = b.subarray(0, b.byteLength - (cut % 8))
          expect(() => col.decode(m, UDP, NOW)).not.toThrow()
        },
      ),
      { numRuns: 2000 },
    )
    expect(col.allCounters()['exception']).toBeUndefined()
  })
})

describe('state exhaustion (RFC 7011 §11.4, standards §5.3 #20, #21)', () => {
  it('keeps sessions, templates and pending data bounded under a flood, and counts what it drops', () => {
    const col = new FlowCollector({
      maxSessions: 100,
      templates: { maxTemplates: 500, maxPerSession: 50 },
      pending: { maxSets: 200, maxBytes: 64 * 1024 },
    })
    for (let i = 0; i < 10_000; i++) {
      const key = { ...UDP, exporterPort: 1024 + (i % 1000) }
      const id = 256 + (i % 300)
      col.decode(msg(i, i % 7, T_PORT(id), set(id + 1000, '0001000200030004')), key, NOW)
    }
    expect(col.sessions.size).toBeLessThanOrEqual(100)
    expect(col.templates.size).toBeLessThanOrEqual(500)
    expect(col.pending.size).toBeLessThanOrEqual(200)
    expect(col.pending.bytes).toBeLessThanOrEqual(64 * 1024)
    const c = col.allCounters()
    expect(c['session_evicted']).toBeGreaterThan(0)
    // Pending sets leave by eviction or with their evicted session; none stays unaccounted.
    expect((c['pending_evicted'] ?? 0) + (c['pending_session_closed'] ?? 0)).toBeGreaterThan(0)
    expect(c['pending_added']).toBe(
      col.pending.size +
        (c['pending_evicted'] ?? 0) +
        (c['pending_session_closed'] ?? 0) +
        (c['pending_decoded'] ?? 0),
    )
    // A legitimate exporter still works afterwards.
    col.decode(msg(0, 1, T_PORT(256)), UDP, NOW)
    expect(col.decode(msg(1, 1, set(256, '0050')), UDP, NOW).records).toHaveLength(1)
  })
})

describe('template size (RFC 7011 §11.4)', () => {
  /** Template `id` of `n` fields (octetDeltaCount, 4 octets each). */
  const big = (id: number, n: number): string => set(2, `${h16(id)} ${h16(n)}` + ' 0001 0004'.repeat(n))

  it('bounds the field specifiers held, not only the templates: large templates evict the oldest', () => {
    const col = new FlowCollector({ templates: { maxFields: 20_000 } })
    for (let i = 0; i < 20; i++) col.decode(msg(i, 1, big(256 + i, 8000)), { ...UDP, exporterPort: i }, NOW)
    expect(col.templates.size).toBe(2)
    expect(col.allCounters()['template_evicted']).toBe(18)
    // The newest are the ones kept, and they decode.
    const o = col.decode(msg(20, 1, set(275, '00000001'.repeat(8000))), { ...UDP, exporterPort: 19 }, NOW)
    expect(o.records).toHaveLength(1)
    // A redefinition that grows a template evicts too; one larger than the whole bound is refused.
    col.decode(msg(21, 1, big(275, 15_000)), { ...UDP, exporterPort: 19 }, NOW)
    expect(col.templates.size).toBe(1)
    const tiny = new FlowCollector({ templates: { maxFields: 10 } })
    tiny.decode(msg(0, 1, big(256, 11)), UDP, NOW)
    expect(tiny.templates.size).toBe(0)
    expect(tiny.allCounters()['template_too_large']).toBe(1)
  })
})

describe('zero-length fields (standards §5.3 #19)', () => {
  const template = (zeros: number): string =>
    set(2, `0100 ${h16(1 + zeros)} 0004 0001` + ' 0001 0000'.repeat(zeros)) // protocolIdentifier + zeros × 0-length
  const values = (o: { records: ReadonlyArray<{ fields: readonly unknown[] }> }): number =>
    o.records.reduce((n, r) => n + r.fields.length, 0)

  it('decodes every record of a template with a few zero-length fields, as devices send them', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, template(3)), UDP, NOW)
    const o = col.decode(msg(1, 1, set(256, '06'.repeat(1000))), UDP, NOW)
    expect(o.records).toHaveLength(1000)
    expect(recordToJson(o.records[0]!)).toEqual({
      protocolIdentifier: 6,
      octetDeltaCount: [0n, 0n, 0n].map(Number),
    })
  })

  it('bounds the values one octet can make: 1000 octets of a 1000-zero-field template are no million', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, template(1000)), UDP, NOW)
    const o = col.decode(msg(1, 1, set(256, '06'.repeat(1000))), UDP, NOW)
    expect(values(o)).toBeLessThanOrEqual(8 * 1000)
    expect(o.records.length).toBeGreaterThan(0)
    expect(col.allCounters()['field_value_limit']).toBe(1)
  })
})

describe('sequence trackers under a domain flood (RFC 7011 §11.4)', () => {
  it('keeps one exporter that changes its observation domain in every message bounded, and counts it', () => {
    const col = new FlowCollector({ sequence: { maxTrackers: 100 } })
    col.decode(msg(0, 1, T_PORT(256)), UDP, NOW)
    for (let i = 0; i < 10_000; i++) {
      col.decode(msg(i, 1_000_000 + i), UDP, NOW) // a header-only message from a new domain each time
      col.decode(msg(i, 1, set(256, '0050')), UDP, NOW) // domain 1 goes on, in sequence
    }
    const sess = col.sessions.get([...col.sessions.keys()][0]!)!
    expect(sess.sequences.size).toBeLessThanOrEqual(100)
    expect(col.allCounters()['sequence_trackers_evicted']).toBe(10_000 + 1 - 100)
    // The domain in use is the most recently used: its accounting was never dropped.
    expect(sess.sequence('ipfix', 1).stats).toMatchObject({ messages: 10_001, lost: 0, reordered: 0 })
  })
})

describe('lookups reused from the last message (one key object per exporter, as listeners pass)', () => {
  it('a key object whose session ended starts a new session without the old templates', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, T_PORT(256)), TCP, NOW)
    expect(col.decode(msg(1, 1, set(256, '0050')), TCP, NOW).records).toHaveLength(1)
    col.endSession(col.sessions.keys().next().value!)
    const out = col.decode(msg(2, 1, set(256, '0050')), TCP, NOW)
    expect(out.records).toHaveLength(0)
    expect(col.allCounters()).toMatchObject({ sessions: 2, no_template: 1 })
  })

  it('keeps templates and sequence numbers of domains apart when messages alternate between them', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, T_PORT(256)), UDP, NOW)
    col.decode(msg(0, 2, T_ADDR_BYTES(256)), UDP, NOW)
    for (let i = 0; i < 3; i++) {
      const a = col.decode(msg(i, 1, set(256, '0035')), UDP, NOW).records
      expect(a.map(recordToJson)).toEqual([{ destinationTransportPort: 53 }])
      const b = col.decode(msg(i, 2, D_ADDR_BYTES(256, ['10.0.0.9', 7])), UDP, NOW).records
      expect(b.map(recordToJson)).toEqual([{ sourceIPv4Address: '10.0.0.9', octetDeltaCount: 7 }])
    }
    const s = [...col.sessions.values()][0]!
    expect(s.sequence('ipfix', 1).stats.lost).toBe(0)
    expect(s.sequence('ipfix', 2).stats.lost).toBe(0)
    // A gap in domain 2 only is counted there.
    col.decode(msg(10, 2, D_ADDR_BYTES(256, ['10.0.0.9', 7])), UDP, NOW)
    expect(s.sequence('ipfix', 1).stats.lost).toBe(0)
    expect(s.sequence('ipfix', 2).stats.lost).toBe(7)
  })

  it('a redefined template is the one used next, though the lookup key is the last one', () => {
    const col = new FlowCollector()
    col.decode(msg(0, 1, T_PORT(256)), UDP, NOW)
    expect(col.decode(msg(0, 1, set(256, '0035')), UDP, NOW).records.map(recordToJson)).toEqual([
      { destinationTransportPort: 53 },
    ])
    col.decode(msg(1, 1, T_ADDR_BYTES(256)), UDP, NOW)
    expect(
      col.decode(msg(1, 1, D_ADDR_BYTES(256, ['10.0.0.1', 1])), UDP, NOW).records.map(recordToJson),
    ).toEqual([{ sourceIPv4Address: '10.0.0.1', octetDeltaCount: 1 }])
  })

  it('evicts the least recently seen session while one key object keeps coming back', () => {
    const col = new FlowCollector({ maxSessions: 2 })
    const other = { ...UDP, exporterPort: 40001 }
    const third = { ...UDP, exporterPort: 40002 }
    col.decode(msg(0, 1, T_PORT(256)), UDP, NOW)
    col.decode(msg(0, 1, T_PORT(256)), other, NOW)
    col.decode(msg(1, 1, set(256, '0001')), UDP, NOW) // UDP is now the most recent
    col.decode(msg(0, 1, T_PORT(256)), third, NOW) // evicts `other`
    expect(col.allCounters()['session_evicted']).toBe(1)
    expect(col.decode(msg(2, 1, set(256, '0002')), UDP, NOW).records).toHaveLength(1)
    expect(col.decode(msg(1, 1, set(256, '0003')), other, NOW).records).toHaveLength(0)
  })

  it('evicting a session steps through what it owns, not through every template and pending set', () => {
    // 3000 sessions, each with two templates and one data set waiting for a third: the store holds 6000
    // templates and 3000 pending sets. Evicting one session (a new one arriving) removes its two templates
    // and its set by the session indexes; a scan of the stores stepped through all 9000 entries.
    const n = 3000
    const col = new FlowCollector({ maxSessions: n })
    const key = (i: number): SessionKey => ({ ...UDP, exporterPort: 10_000 + i })
    for (let i = 0; i < n; i++)
      col.decode(msg(0, 1, T_PORT(256), T_ADDR_BYTES(257), set(258, '0001')), key(i), NOW)
    expect(col.templates.size).toBe(2 * n)
    expect(col.pending.size).toBe(n)
    const steps = mapSteps(() => col.decode(msg(0, 1, T_PORT(256)), key(n), NOW))
    expect(col.allCounters()['session_evicted']).toBe(1)
    expect(col.allCounters()['pending_session_closed']).toBe(1)
    expect(col.templates.size).toBe(2 * n - 1)
    expect(col.pending.size).toBe(n - 1)
    expect(steps).toBeLessThan(50)
    // The next session's templates still decode; the evicted session's are gone.
    expect(col.decode(msg(1, 1, set(256, '0001')), key(1), NOW).records).toHaveLength(1)
    expect(col.decode(msg(1, 1, set(256, '0001')), key(0), NOW).records).toHaveLength(0)
  })
})

/** Entries stepped through by Map iterators (for..of, entries, keys, values) while `f` runs. */
function mapSteps(f: () => void): number {
  let steps = 0
  const proto = Map.prototype as unknown as Record<string | symbol, (this: unknown) => Iterator<unknown>>
  const names: Array<string | symbol> = ['entries', 'keys', 'values', Symbol.iterator]
  const saved = names.map((k) => proto[k]!)
  names.forEach((k, i) => {
    const orig = saved[i]!
    proto[k] = function (this: unknown) {
      const it = orig.call(this)
      const counted: IterableIterator<unknown> = {
        next: () => {
          const r = it.next()
          if (r.done !== true) steps++
          return r
        },
        [Symbol.iterator]: () => counted,
      }
      return counted
    }
  })
  try {
    f()
  } finally {
    names.forEach((k, i) => (proto[k] = saved[i]!))
  }
  return steps
}
