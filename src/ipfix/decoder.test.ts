// Decoder robustness (RFC 7011 §9, §9.1; reference/standards.md §5.3 message, template and data cases) and
// fast-check properties: random bytes and mutations of valid messages never throw.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { IpfixDecoder, recordToJson, type DecodedMessage } from './decoder.js'
import { IpfixExporter } from './exporter.js'
import { Template } from './template.js'
import { MemoryTransport } from './testing.js'

const u16 = (v: number): number[] => [v >> 8, v & 255]
const u32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]
const set = (id: number, body: number[], len = body.length + 4): number[] => [
  ...u16(id),
  ...u16(len),
  ...body,
]
const msg = (sets: number[][], odid = 1, seq = 0, lenOverride?: number): Uint8Array => {
  const body = sets.flat()
  return Uint8Array.from([
    ...u16(10),
    ...u16(lenOverride ?? 16 + body.length),
    ...u32(1e9),
    ...u32(seq),
    ...u32(odid),
    ...body,
  ])
}
// Template 256: sourceIPv4Address(4), protocolIdentifier(1)
const tpl256 = set(2, [...u16(256), ...u16(2), ...u16(8), ...u16(4), ...u16(4), ...u16(1)])
const rec256 = (a: number, p: number): number[] => [...u32(a), p]
const good = (): Uint8Array => msg([tpl256, set(256, [...rec256(0x01020304, 6), ...rec256(0x05060708, 17)])])

const records = (m: DecodedMessage): unknown[] => m.records.map(recordToJson)

describe('decoder: message and set layer (§5.3 1-11)', () => {
  it('decodes a good message', () => {
    const d = new IpfixDecoder()
    const m = d.decode(good())
    expect(records(m)).toEqual([
      { sourceIPv4Address: '1.2.3.4', protocolIdentifier: 6 },
      { sourceIPv4Address: '5.6.7.8', protocolIdentifier: 17 },
    ])
    expect(m.templates).toBe(1)
    expect(d.counters).toEqual({})
  })

  const cases: [string, Uint8Array, string][] = [
    ['0-15 octets', Uint8Array.of(0, 10, 0, 16), 'short_header'],
    ['version 9', Uint8Array.from([0, 9, ...good().subarray(2)]), 'bad_version'],
    ['version 0xffff', Uint8Array.from([255, 255, ...good().subarray(2)]), 'bad_version'],
    ['header length < 16', msg([], 1, 0, 12), 'bad_message_length'],
    ['header length > datagram', msg([tpl256], 1, 0, 65535), 'truncated_message'],
    ['set length 0', msg([set(256, [1, 2, 3, 4], 0)]), 'bad_set_length'],
    ['set length 3', msg([set(256, [], 3)]), 'bad_set_length'],
    ['set length beyond the message', msg([set(256, [1, 2, 3, 4], 200)]), 'set_overruns_message'],
  ]
  for (const [name, bytes, counter] of cases)
    it(`${name} → discarded, ${counter}`, () => {
      const d = new IpfixDecoder()
      const m = d.decode(bytes)
      expect(m.error).toBe(counter)
      expect(m.records).toEqual([])
      expect(d.counters[counter]).toBe(1)
      // A good message afterwards still decodes.
      expect(d.decode(good()).records).toHaveLength(2)
    })

  it('trailing garbage after Length is counted and the message decoded', () => {
    const d = new IpfixDecoder()
    const m = d.decode(Uint8Array.from([...good(), 1, 2, 3]))
    expect(m.records).toHaveLength(2)
    expect(d.counters.trailing_bytes).toBe(1)
  })

  it('header-only message is valid', () => {
    const d = new IpfixDecoder()
    const m = d.decode(msg([]))
    expect(m.error).toBeUndefined()
    expect(d.counters).toEqual({})
  })

  it('16 000 empty sets are each counted once and yield nothing (no per-set pending data)', () => {
    const d = new IpfixDecoder()
    const sets = Array.from({ length: 16000 }, () => set(256, []))
    const m = d.decode(msg(sets.slice(0, 16379)))
    expect(m.error).toBeUndefined()
    expect(m.records).toHaveLength(0)
    expect(d.counters.empty_set).toBe(16000)
  })

  it('reserved set ids are skipped and the rest decoded', () => {
    const d = new IpfixDecoder()
    const m = d.decode(
      msg([set(0, [1, 2]), set(1, [3]), tpl256, set(4, []), set(255, [9]), set(256, rec256(1, 1))]),
    )
    expect(m.records).toHaveLength(1)
    expect(d.counters.reserved_set_id).toBe(3)
  })

  it('data before its template is counted; other sets still decode', () => {
    const d = new IpfixDecoder()
    const m = d.decode(msg([set(300, [1, 2, 3, 4, 5]), tpl256, set(256, rec256(1, 1))]))
    expect(m.records).toHaveLength(1)
    expect(d.counters.no_template).toBe(1)
  })
})

describe('decoder: template layer (§5.3 12-26)', () => {
  it('rejects template id < 256, bad scope counts and illegal lengths; keeps going', () => {
    const d = new IpfixDecoder()
    d.decode(
      msg([
        set(2, [...u16(255), ...u16(1), ...u16(8), ...u16(4)]),
        set(3, [...u16(257), ...u16(1), ...u16(0), ...u16(149), ...u16(4)]),
        set(3, [...u16(258), ...u16(1), ...u16(2), ...u16(149), ...u16(4)]),
        set(2, [...u16(259), ...u16(1), ...u16(8), ...u16(50)]), // ipv4Address length 50
        set(2, [...u16(260), ...u16(1), ...u16(8), ...u16(3)]), // ipv4Address length 3
        set(2, [...u16(261), ...u16(1), ...u16(152), ...u16(4)]), // dateTimeMilliseconds length 4
        set(2, [...u16(262), ...u16(1), ...u16(6), ...u16(9)]), // unsigned16 length 9
      ]),
    )
    expect(d.counters).toEqual({
      template_bad_id: 1,
      template_bad_scope_count: 2,
      template_bad_field_length: 4,
    })
    expect(d.templateCount).toBe(0)
  })

  it('field count larger than the set is rejected before allocating', () => {
    const d = new IpfixDecoder()
    const m = d.decode(msg([set(2, [...u16(256), ...u16(65535), ...u16(8), ...u16(4), 0, 0, 0, 0])]))
    expect(m.error).toBe('template_truncated')
  })

  it('enterprise bit with a truncated PEN → discarded', () => {
    const d = new IpfixDecoder()
    const m = d.decode(msg([set(2, [...u16(256), ...u16(1), ...u16(0x8001), ...u16(4), 0, 0])]))
    expect(m.error).toBe('template_truncated')
  })

  it('zero-length fields are accepted; an all-zero-length template does not loop', () => {
    const d = new IpfixDecoder()
    const m = d.decode(
      msg([
        set(2, [...u16(256), ...u16(2), ...u16(150), ...u16(0), ...u16(4), ...u16(1)]),
        set(2, [...u16(257), ...u16(1), ...u16(150), ...u16(0)]),
        set(256, [6, 17]),
        set(257, [1, 2, 3, 4]),
      ]),
    )
    expect(records(m)).toEqual([
      { flowStartSeconds: '1970-01-01T00:00:00.000Z', protocolIdentifier: 6 },
      { flowStartSeconds: '1970-01-01T00:00:00.000Z', protocolIdentifier: 17 },
    ])
    expect(d.counters.zero_length_records).toBe(1)
  })

  it('keys templates by observation domain; redefinition replaces; one id space for both kinds', () => {
    const d = new IpfixDecoder()
    d.decode(msg([tpl256], 1))
    d.decode(msg([set(2, [...u16(256), ...u16(1), ...u16(7), ...u16(2)])], 2))
    expect(records(d.decode(msg([set(256, rec256(0x0a000001, 1))], 1)))).toEqual([
      { sourceIPv4Address: '10.0.0.1', protocolIdentifier: 1 },
    ])
    expect(records(d.decode(msg([set(256, u16(80))], 2)))).toEqual([{ sourceTransportPort: 80 }])
    // Same id as an options template in domain 1 replaces the data template.
    d.decode(msg([set(3, [...u16(256), ...u16(1), ...u16(1), ...u16(149), ...u16(4)])], 1))
    const m = d.decode(msg([set(256, u32(77))], 1))
    expect(m.records[0]?.isOptions).toBe(true)
    expect(records(m)).toEqual([{ observationDomainId: 77 }])
    expect(d.counters.template_redefined).toBe(1)
  })

  it('withdrawals: applied over TCP, ignored over UDP, unknown ids ignored', () => {
    const withdraw256 = set(2, [...u16(256), ...u16(0)])
    const tcp = new IpfixDecoder({ transport: 'tcp' })
    tcp.decode(msg([tpl256]))
    tcp.decode(msg([withdraw256, set(2, [...u16(999), ...u16(0)])]))
    expect(tcp.decode(msg([set(256, rec256(1, 1))])).records).toHaveLength(0)
    expect(tcp.counters).toMatchObject({ withdrawal: 1, withdrawal_unknown: 1, no_template: 1 })

    const udp = new IpfixDecoder({ transport: 'udp' })
    udp.decode(msg([tpl256]))
    udp.decode(msg([withdraw256]))
    expect(udp.decode(msg([set(256, rec256(1, 1))])).records).toHaveLength(1)
    expect(udp.counters.udp_withdrawal_ignored).toBe(1)

    // All Templates Withdrawal (set 2, id 2) only for that domain; a mismatched form is ignored.
    const all = new IpfixDecoder()
    all.decode(msg([tpl256], 1))
    all.decode(msg([tpl256], 2))
    all.decode(msg([set(2, [...u16(3), ...u16(0)])], 1))
    expect(all.templateCount).toBe(2)
    all.decode(msg([set(2, [...u16(2), ...u16(0)])], 1))
    expect(all.templateCount).toBe(1)
    expect(all.counters).toMatchObject({ withdrawal_mismatched: 1, withdrawal_all: 1 })
  })

  it('caps the number of templates', () => {
    const d = new IpfixDecoder({ maxTemplates: 10 })
    for (let id = 256; id < 300; id++) d.decode(msg([set(2, [...u16(id), ...u16(1), ...u16(4), ...u16(1)])]))
    expect(d.templateCount).toBe(10)
    expect(d.counters.template_limit).toBe(34)
  })

  it('largest legal template (16370 fields) decodes', () => {
    const n = 16370
    const fields: number[] = []
    for (let i = 0; i < n; i++) fields.push(...u16(210), ...u16(0)) // paddingOctets, zero length
    fields.splice(0, 4, ...u16(4), ...u16(1))
    const d = new IpfixDecoder()
    const m = d.decode(msg([set(2, [...u16(256), ...u16(n), ...fields]), set(256, [6])]))
    expect(m.error).toBeUndefined()
    expect(m.records[0]?.fields).toHaveLength(n)
  })
})

describe('decoder: data records (§5.3 27-34)', () => {
  const vt = set(2, [...u16(256), ...u16(2), ...u16(96), ...u16(65535), ...u16(4), ...u16(1)]) // applicationName, protocolIdentifier
  it('varlen prefix longer than the set → discarded', () => {
    const d = new IpfixDecoder()
    expect(d.decode(msg([vt, set(256, [200, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])])).error).toBe('varlen_overrun')
    expect(d.decode(msg([vt, set(256, [255, 0])])).error).toBe('varlen_overrun')
  })
  it('3-octet prefix for a short value and an empty value are legal', () => {
    const d = new IpfixDecoder()
    const m = d.decode(msg([vt, set(256, [255, 0, 2, 0x68, 0x69, 6, 0, 17])]))
    expect(records(m)).toEqual([
      { applicationName: 'hi', protocolIdentifier: 6 },
      { applicationName: '', protocolIdentifier: 17 },
    ])
  })
  it('padding shorter than the minimum record is not an error, even non-zero', () => {
    const d = new IpfixDecoder()
    const m = d.decode(msg([tpl256, set(256, [...rec256(1, 1), 0, 0, 0]), set(256, [...rec256(2, 2), 9, 9])]))
    expect(m.records).toHaveLength(2)
    expect(d.counters).toEqual({})
  })
  it('a trailing partial record makes the message malformed', () => {
    const d = new IpfixDecoder()
    const t = set(2, [...u16(256), ...u16(2), ...u16(8), ...u16(4), ...u16(96), ...u16(65535)])
    expect(d.decode(msg([t, set(256, [1, 2, 3, 4, 0, 1, 2, 3, 4, 5])])).error).toBe('varlen_overrun')
  })
  it('invalid UTF-8 and booleans other than 1/2 drop the value, keep the record', () => {
    const d = new IpfixDecoder()
    const bt = set(2, [...u16(257), ...u16(1), ...u16(276), ...u16(1)]) // dataRecordsReliability (boolean)
    const m = d.decode(
      msg([vt, set(256, [2, 0xc0, 0xaf, 6, 3, 0xed, 0xa0, 0x80, 6, 1, 0xe2, 6]), bt, set(257, [0, 3, 1])]),
    )
    expect(records(m)).toEqual([
      { applicationName: null, protocolIdentifier: 6 },
      { applicationName: null, protocolIdentifier: 6 },
      { applicationName: null, protocolIdentifier: 6 },
      { dataRecordsReliability: null },
      { dataRecordsReliability: null },
      { dataRecordsReliability: true },
    ])
    expect(d.counters).toEqual({ invalid_utf8: 3, invalid_boolean: 2 })
  })
  it('unknown elements are kept as hex under "<pen>.<id>", repeated elements as arrays', () => {
    const d = new IpfixDecoder()
    const t = set(2, [
      ...u16(256),
      ...u16(4),
      ...u16(0x8000 | 77),
      ...u16(3),
      ...u32(12345),
      ...u16(32000),
      ...u16(65535),
      ...u16(4),
      ...u16(1),
      ...u16(4),
      ...u16(1),
    ])
    const m = d.decode(msg([t, set(256, [0xaa, 0xbb, 0xcc, 2, 0xde, 0xad, 6, 17])]))
    expect(records(m)).toEqual([{ '12345.77': 'aabbcc', '0.32000': 'dead', protocolIdentifier: [6, 17] }])
  })
  it('IPv6 addresses are RFC 5952 text', () => {
    const t = set(2, [...u16(256), ...u16(1), ...u16(27), ...u16(16)])
    const addr = (...g: number[]): number[] => g.flatMap(u16)
    const d = new IpfixDecoder()
    const m = d.decode(
      msg([
        t,
        set(256, [
          ...addr(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1),
          ...addr(0, 0, 0, 0, 0, 0, 0, 0),
          ...addr(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201),
          ...addr(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1),
          ...addr(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        ]),
      ]),
    )
    expect(m.records.map((r) => r.fields[0]?.value)).toEqual([
      '2001:db8::1:0:0:1',
      '::',
      '::ffff:192.0.2.1',
      '2001:db8:0:1:1:1:1:1',
      'fe80::',
    ])
  })
})

describe('decoder: properties', () => {
  it('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => {
        const d = new IpfixDecoder()
        d.decode(b)
        expect(d.counters.exception).toBeUndefined()
        d.decode(
          Uint8Array.from([
            0,
            10,
            (b.length + 16) >> 8,
            (b.length + 16) & 255,
            ...new Array<number>(12).fill(0),
            ...b,
          ]),
        )
      }),
      { numRuns: 2000, seed: 7 },
    )
  })

  it('mutations of valid exporter output never throw, and good messages decode unchanged afterwards', async () => {
    const t = new MemoryTransport()
    const e = new IpfixExporter(
      {
        observationDomainId: 1,
        maxMessageSize: 512,
        templateRefreshSeconds: 600,
        templateRefreshMessages: 0,
        statsIntervalSeconds: 60,
        now: () => 1e9,
      },
      [t],
    )
    const tpl = Template.fromNames(256, [
      ['sourceIPv6Address'],
      ['octetDeltaCount', 4],
      ['applicationName'],
      ['reversePacketDeltaCount'],
    ])
    e.addTemplate(tpl)
    const w6 = new Uint32Array([0x20010db8, 0, 0, 1])
    for (let i = 0; i < 30; i++) {
      const w = e.beginRecord(tpl, 100)
      w.ipv6(w6)
      w.u32(i)
      w.string('a'.repeat(i))
      w.u64(i)
      e.endRecord()
    }
    await e.close()
    const valid = t.messages
    const reference = new IpfixDecoder()
    const expected = valid.map((m) => records(reference.decode(m)))
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: valid.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.nat(600),
        (which, edits, cut) => {
          const d = new IpfixDecoder()
          d.decode(valid[0] ?? new Uint8Array(0)) // templates
          const m = Uint8Array.from(valid[which] ?? [])
          for (const [pos, v] of edits) m[pos % m.length] = v
          d.decode(m)
          d.decode(m.subarray(0, cut))
          // Faults are named counters; 'exception' would mean a decoder bug (an unexpected throw inside).
          expect(d.counters.exception).toBeUndefined()
          // Re-learn templates (the mutation may have redefined them), then a good message decodes as before.
          d.decode(valid[0] ?? new Uint8Array(0))
          expect(records(d.decode(valid[1] ?? new Uint8Array(0)))).toEqual(expected[1])
        },
      ),
      { numRuns: 1000, seed: 11 },
    )
  })
})
