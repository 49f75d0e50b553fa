// Exporter behaviour: Sequence Numbers (RFC 7011 §3.1), MTU packing (§10.3.3), template refresh (§8.4),
// statistics options records (§4), oversize records and sessions.
import { describe, expect, it } from 'vitest'
import { IpfixDecoder, recordToJson } from './decoder.js'
import { IpfixExporter, STATS_TEMPLATE_IDS, type ExporterOptions } from './exporter.js'
import { lookupElement } from './elements.js'
import { Template } from './template.js'
import { MemoryTransport, headerOf } from './testing.js'

const tpl = Template.fromNames(256, [['sourceIPv4Address'], ['octetDeltaCount'], ['applicationName']])

function setup(over: Partial<ExporterOptions> = {}, periodic = false) {
  const clock = { now: 1_700_000_000 }
  const t = new MemoryTransport('mem', periodic)
  const e = new IpfixExporter(
    {
      observationDomainId: 3,
      maxMessageSize: 1472,
      templateRefreshSeconds: 600,
      templateRefreshMessages: 0,
      statsIntervalSeconds: 0,
      exportingProcessId: 42,
      now: () => clock.now,
      ...over,
    },
    [t],
  )
  e.addTemplate(tpl)
  const add = (i: number, name = `r${i}`): void => {
    const w = e.beginRecord(tpl, 4 + 8 + 3 + name.length * 3)
    w.ipv4(i)
    w.u64(i)
    w.string(name)
    e.endRecord()
  }
  return { clock, t, e, add }
}

describe('sequence numbers', () => {
  it('templates-only message carries 0, then counts data records before each message', async () => {
    const { t, e, add } = setup()
    add(1)
    add(2)
    e.flush()
    add(3)
    e.flush()
    add(4)
    await e.close()
    const h = t.messages.map(headerOf)
    expect(h.map((x) => [x.sets, x.sequence])).toEqual([
      [[2], 0],
      [[256], 0],
      [[256], 2],
      [[256], 3],
    ])
  })

  it('wraps at 2^32', async () => {
    const { t, e, add } = setup({ initialSequence: 0xffffffff })
    add(1)
    add(2)
    e.flush()
    add(3)
    await e.close()
    expect(t.messages.map((m) => headerOf(m).sequence)).toEqual([0xffffffff, 0xffffffff, 1])
  })

  it('options data records count, template messages do not', async () => {
    const { t, e, add } = setup({ statsIntervalSeconds: 60 })
    add(1)
    e.flush()
    add(2)
    await e.close()
    const h = t.messages.map(headerOf)
    // templates; [2 stats + 1 data]; [1 data + 2 stats at close]
    expect(h.map((x) => x.sequence)).toEqual([0, 0, 3])
    expect(h[0]?.sets).toEqual([2, 3, 3]) // each options template in its own Set
  })

  it('restarts at 0 with templates first on a new session', async () => {
    const { t, e, add } = setup()
    add(1)
    add(2)
    e.flush()
    t.newSession()
    add(3)
    await e.close()
    expect(t.messages.map((m) => [headerOf(m).sets[0], headerOf(m).sequence])).toEqual([
      [2, 0],
      [256, 0],
      [2, 0],
      [256, 0],
    ])
  })
})

describe('message packing', () => {
  it('no message exceeds maxMessageSize and every record arrives exactly once', async () => {
    const max = 512
    const { t, e, add } = setup({ maxMessageSize: max })
    const n = 2000
    for (let i = 0; i < n; i++) add(i, 'x'.repeat(i % 97))
    await e.close()
    const d = new IpfixDecoder()
    const seen: number[] = []
    for (const m of t.messages) {
      expect(m.byteLength).toBeLessThanOrEqual(max)
      expect(headerOf(m).length).toBe(m.byteLength)
      for (const r of d.decode(m).records) seen.push(recordToJson(r).octetDeltaCount as number)
    }
    expect(d.counters).toEqual({})
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(e.stats.records).toBe(n)
    // Sequence numbers advance by the records of the previous data message.
    let expected = 0
    for (const m of t.messages) {
      const h = headerOf(m)
      expect(h.sequence).toBe(expected)
      expected += d.decode(m).records.length
    }
  })

  it('drops and counts a record that cannot fit an empty message, never fragments', async () => {
    const { t, e, add } = setup({ maxMessageSize: 256 })
    add(1)
    add(2, 'y'.repeat(300)) // needs > 256 - 20 octets
    add(3, 'z'.repeat(200)) // maxLength over the budget, actual size fits: kept
    add(4)
    await e.close()
    expect(e.stats.droppedRecords).toBe(1)
    const d = new IpfixDecoder()
    const ids = t.messages.flatMap((m) => d.decode(m).records.map((r) => recordToJson(r).octetDeltaCount))
    expect(ids).toEqual([1, 3, 4])
    for (const m of t.messages) expect(m.byteLength).toBeLessThanOrEqual(256)
  })

  it('beginRecordFit packs exactly as beginRecord with the exact length, and drops what no message holds', async () => {
    const run = async (
      names: string[],
      fit: boolean,
    ): Promise<{ messages: Uint8Array[]; dropped: number }> => {
      const { t, e } = setup({ maxMessageSize: 256 })
      names.forEach((name, i) => {
        let tries = 0
        for (;;) {
          tries++
          const w = fit ? e.beginRecordFit(tpl) : e.beginRecord(tpl, 4 + 8 + 1 + name.length)
          w.ipv4(i)
          w.u64(i)
          w.string(name)
          if (!fit) {
            e.endRecord()
            break
          }
          if (e.endRecordFit()) break
        }
        expect(tries).toBeLessThanOrEqual(2)
      })
      await e.close()
      return { messages: t.messages, dropped: e.stats.droppedRecords }
    }
    const names = Array.from({ length: 600 }, (_, i) => 'n'.repeat((i * 37) % 200))
    const exact = await run(names, false)
    const fitted = await run(names, true)
    expect(fitted.messages.length).toBeGreaterThan(100)
    expect(fitted.messages.map((m) => Buffer.from(m).toString('hex'))).toEqual(
      exact.messages.map((m) => Buffer.from(m).toString('hex')),
    )
    // A record longer than a whole message: dropped and counted, the others all arrive.
    names.splice(100, 0, 'w'.repeat(300))
    const withLong = await run(names, true)
    expect(withLong.dropped).toBe(1)
    const d = new IpfixDecoder()
    const ids = withLong.messages.flatMap((m) =>
      d.decode(m).records.map((r) => recordToJson(r).octetDeltaCount),
    )
    expect(ids).toEqual(names.map((_, i) => i).filter((i) => i !== 100))
    expect(d.counters).toEqual({})
    for (const m of withLong.messages) expect(m.byteLength).toBeLessThanOrEqual(256)
  })

  it('flushes a partly filled message after about one second of now()', () => {
    const { clock, t, e, add } = setup()
    add(1)
    e.tick()
    expect(t.messages.length).toBe(1) // templates only
    clock.now += 0.5
    e.tick()
    expect(t.messages.length).toBe(1)
    clock.now += 0.6
    e.tick()
    expect(t.messages.length).toBe(2)
    expect(headerOf(t.messages[1] ?? new Uint8Array(16)).exportTime).toBe(Math.floor(clock.now))
  })
})

describe('template refresh over UDP', () => {
  it('resends templates after templateRefreshSeconds', async () => {
    const { clock, t, e, add } = setup({ templateRefreshSeconds: 10 }, true)
    add(1)
    e.flush()
    clock.now += 5
    add(2)
    e.flush()
    clock.now += 6
    e.tick()
    add(3)
    await e.close()
    expect(t.messages.map((m) => headerOf(m).sets[0])).toEqual([2, 256, 256, 2, 256])
    expect(e.stats.templateSends).toBe(2)
  })

  it('resends templates every N data messages', async () => {
    const { t, e, add } = setup({ templateRefreshMessages: 2 }, true)
    for (let i = 0; i < 5; i++) {
      add(i)
      e.flush()
    }
    await e.close()
    expect(t.messages.map((m) => headerOf(m).sets[0])).toEqual([2, 256, 256, 2, 256, 256, 2, 256])
  })

  it('does not refresh on non-UDP transports', async () => {
    const { clock, t, e, add } = setup({ templateRefreshSeconds: 1, templateRefreshMessages: 1 }, false)
    for (let i = 0; i < 3; i++) {
      add(i)
      clock.now += 2
      e.flush()
    }
    await e.close()
    expect(t.messages.filter((m) => headerOf(m).sets[0] === 2)).toHaveLength(1)
  })
})

describe('statistics options records (RFC 7011 §4)', () => {
  it('sends metering, exporting-reliability and metering-reliability statistics at start, periodically and at close', async () => {
    const { clock, t, e, add } = setup({
      statsIntervalSeconds: 60,
      meteringStats: () => ({
        ignoredPackets: 7,
        ignoredOctets: 700,
        firstIgnoredMs: 1000,
        lastIgnoredMs: 2000,
      }),
    })
    add(1)
    e.flush()
    clock.now += 61
    e.tick()
    e.flush()
    await e.close()
    const d = new IpfixDecoder()
    const opts = t.messages.flatMap((m) => d.decode(m).records).filter((r) => r.isOptions)
    expect(opts.map((r) => r.templateId)).toEqual([
      65533, 65534, 65535, 65533, 65534, 65535, 65533, 65534, 65535,
    ])
    const last = opts.slice(-3).map(recordToJson)
    expect(last[0]).toEqual({
      observationDomainId: 3,
      exportedMessageTotalCount: 2,
      exportedFlowRecordTotalCount: 1,
      exportedOctetTotalCount: expect.any(Number) as number,
    })
    expect(last[1]).toMatchObject({ exportingProcessId: 42, notSentFlowTotalCount: 0 })
    expect(last[2]).toEqual({
      observationDomainId: 3,
      ignoredPacketTotalCount: 7,
      ignoredOctetTotalCount: 700,
      observationTimeMilliseconds: ['1970-01-01T00:00:01.000Z', '1970-01-01T00:00:02.000Z'],
    })
    expect(opts[0]?.scopeCount).toBe(1)
    expect(STATS_TEMPLATE_IDS.meteringStatistics).toBe(65533)
  })

  it('gives the statistics the interval they cover (start to now) while nothing was ignored nor dropped, not time 0', async () => {
    const { clock, t, e, add } = setup({
      statsIntervalSeconds: 60,
      meteringStats: () => ({ ignoredPackets: 0, ignoredOctets: 0, firstIgnoredMs: 0, lastIgnoredMs: 0 }),
    })
    add(1)
    clock.now += 61
    e.tick()
    await e.close()
    const d = new IpfixDecoder()
    const opts = t.messages.flatMap((m) => d.decode(m).records).filter((r) => r.isOptions)
    const times = opts
      .map(recordToJson)
      .filter((r) => 'observationTimeMilliseconds' in r)
      .map((r) => r['observationTimeMilliseconds'])
    const start = new Date(1_700_000_000_000).toISOString()
    const later = new Date(1_700_000_061_000).toISOString()
    // At start, after 61 s, at close: exporting then metering reliability each time.
    expect(times).toEqual([
      [start, start],
      [start, start],
      [start, later],
      [start, later],
      [start, later],
      [start, later],
    ])
  })

  it('rejects a caller template on a reserved statistics id', () => {
    const { e } = setup({ statsIntervalSeconds: 60 })
    expect(() => e.addTemplate(Template.fromNames(65533, [['octetDeltaCount']]))).toThrow(/reserved/)
  })
})

describe('templates', () => {
  it('validates ids, lengths and scope counts', () => {
    expect(() => Template.fromNames(255, [['octetDeltaCount']])).toThrow(/256\.\.65535/)
    expect(() => Template.fromNames(256, [['sourceIPv4Address', 3]])).toThrow(/illegal for ipv4Address/)
    expect(() => Template.fromNames(256, [['flowStartMilliseconds', 4]])).toThrow(/illegal/)
    expect(() => Template.fromNames(256, [['octetDeltaCount']], 2)).toThrow(/scope count/)
    expect(() => Template.fromNames(256, [['noSuchElement']])).toThrow(/noSuchElement/)
    expect(() => Template.fromNames(256, [['reverseFlowId']])).toThrow(/not reversible/)
    const t = Template.fromNames(256, [['octetDeltaCount', 4], ['applicationName'], ['protocolIdentifier']])
    expect([t.fixedLength, t.minRecordLength, t.hasVariableLength, t.isOptions]).toEqual([5, 6, true, false])
    expect(lookupElement(29305, 2)?.name).toBe('reversePacketDeltaCount')
  })

  it('takes records only of added templates, also when records of several templates alternate', async () => {
    const { t, e, add } = setup()
    const other = Template.fromNames(272, [['protocolIdentifier']])
    const notAdded = Template.fromNames(300, [['protocolIdentifier']])
    const sameSlot = Template.fromNames(320, [['protocolIdentifier']]) // 320 & 63 === 256 & 63
    e.addTemplate(other)
    for (let i = 0; i < 3; i++) {
      add(i)
      e.beginRecord(other, 1).u8(17)
      e.endRecord()
    }
    expect(() => e.beginRecord(notAdded, 1)).toThrow(/template 300 was not added/)
    expect(() => e.beginRecord(sameSlot, 1)).toThrow(/template 320 was not added/)
    add(3) // 256 again, after 320 was looked up in its slot
    // A template replaced by another layout on its ID no longer serves.
    const replaced = Template.fromNames(272, [['protocolIdentifier'], ['ipClassOfService']])
    e.addTemplate(replaced)
    expect(() => e.beginRecord(other, 1)).toThrow(/template 272 was not added/)
    e.beginRecord(replaced, 2).u16(0x1100)
    e.endRecord()
    await e.close()
    const d = new IpfixDecoder()
    const records = t.messages.flatMap((m) => d.decode(m).records)
    expect(records.map((r) => r.templateId)).toEqual([256, 272, 256, 272, 256, 272, 256, 272])
  })

  it('redefining a template id flushes pending data first and resends templates', async () => {
    const { t, e, add } = setup()
    add(1)
    e.addTemplate(Template.fromNames(256, [['octetDeltaCount']]))
    await e.close()
    expect(t.messages.map((m) => headerOf(m).sets[0])).toEqual([2, 256, 2])
  })
})

/** A transport that sends from the exporter's reused buffer and keeps the buffer when `keep` says so. */
class ReusedBufferTransport extends MemoryTransport {
  /** The buffers this transport kept, with the bytes they held when sent. */
  readonly kept: { buf: Uint8Array; sent: Uint8Array }[] = []
  constructor(private readonly keep: (i: number) => boolean) {
    super('reused')
  }
  sendReused(message: Uint8Array): boolean {
    const i = this.messages.length
    this.send([message]) // MemoryTransport copies
    if (!this.keep(i)) return false
    this.kept.push({ buf: message, sent: Uint8Array.from(message) })
    return true
  }
}

describe('sending from the reused message buffer (Transport.sendReused)', () => {
  /** 40 records; `restart` starts a new session halfway, so its Sequence Numbers differ from the others'. */
  const run = (dests: MemoryTransport[], restart?: MemoryTransport): Promise<void> => {
    const e = new IpfixExporter(
      {
        observationDomainId: 3,
        maxMessageSize: 200,
        templateRefreshSeconds: 600,
        templateRefreshMessages: 0,
        statsIntervalSeconds: 0,
        now: () => 1_700_000_000,
      },
      dests,
    )
    e.addTemplate(tpl)
    for (let i = 0; i < 40; i++) {
      if (i === 20) restart?.newSession()
      const name = `record-${i}`
      const w = e.beginRecord(tpl, 4 + 8 + 3 + name.length * 3)
      w.ipv4(i)
      w.u64(i * 1000)
      w.string(name)
      e.endRecord()
    }
    return e.close()
  }

  it('gives every destination the same bytes as the copying path, whether the buffer is kept or not', async () => {
    const copying = new MemoryTransport()
    const copyingRestarted = new MemoryTransport()
    await run([copying, copyingRestarted], copyingRestarted)
    expect(copying.messages.length).toBeGreaterThan(5)
    for (const keep of [() => false, () => true, (i: number) => i % 3 === 1]) {
      const reused = new ReusedBufferTransport(keep)
      const second = new MemoryTransport()
      await run([reused, second], second)
      expect(reused.messages).toEqual(copying.messages)
      expect(second.messages).toEqual(copyingRestarted.messages)
      // A kept buffer is never written again: it still holds the message it carried.
      for (const k of reused.kept) expect(Uint8Array.from(k.buf)).toEqual(k.sent)
    }
  })

  it('writes a later destination its own header when the first one kept the buffer', async () => {
    const reused = new ReusedBufferTransport(() => true)
    const second = new MemoryTransport()
    await run([reused, second], second)
    expect(reused.kept.length).toBeGreaterThan(5)
    const seq = (t: MemoryTransport): number[] => t.messages.map((m) => headerOf(m).sequence)
    expect(seq(second)).not.toEqual(seq(reused))
    for (const k of reused.kept) expect(Uint8Array.from(k.buf)).toEqual(k.sent)
  })
})
