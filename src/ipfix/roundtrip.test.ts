// Writer → decoder round trips for every IPFIX data type (RFC 7011 §6.1, reduced size §6.2, varlen §7).
import { describe, expect, it } from 'vitest'
import { IpfixDecoder, recordToJson, type DecodedRecord } from './decoder.js'
import { IE_DATA_TYPES, registerElements, type IeDataType } from './elements.js'
import { IpfixExporter } from './exporter.js'
import type { RecordWriter } from './record-writer.js'
import { Template } from './template.js'
import { MemoryTransport } from './testing.js'

const PEN = 32473 // RFC 5612 documentation PEN
const types: readonly IeDataType[] = IE_DATA_TYPES
const nameOf = (t: IeDataType): string => 'rt' + t.charAt(0).toUpperCase() + t.slice(1)
registerElements(types.map((type, i) => ({ pen: PEN, id: i + 1, name: nameOf(type), type })))

/** Exports records of one template and decodes them again. */
async function roundTrip(
  fields: ReadonlyArray<readonly [string, number?]>,
  writes: ((w: RecordWriter) => void)[],
): Promise<DecodedRecord[]> {
  const t = new MemoryTransport()
  const e = new IpfixExporter(
    {
      observationDomainId: 5,
      maxMessageSize: 65535,
      templateRefreshSeconds: 600,
      templateRefreshMessages: 0,
      statsIntervalSeconds: 0,
      now: () => 1e9,
    },
    [t],
  )
  const tpl = Template.fromNames(300, fields)
  e.addTemplate(tpl)
  for (const write of writes) {
    write(e.beginRecord(tpl, 65535 - 20))
    e.endRecord()
  }
  await e.close()
  const d = new IpfixDecoder()
  const recs = t.messages.flatMap((m) => d.decode(m).records)
  expect(d.counters).toEqual({})
  return recs
}

const enc = new TextEncoder()

describe('round trip', () => {
  it('every fixed-size type at its full length', async () => {
    const ip6 = new Uint32Array([0x20010db8, 0, 0, 0x00000001])
    const [rec] = await roundTrip(
      types
        .filter(
          (t) =>
            !['octetArray', 'string', 'basicList', 'subTemplateList', 'subTemplateMultiList'].includes(t),
        )
        .map((t) => [nameOf(t)] as const),
      [
        (w) => {
          w.u8(200) // unsigned8
          w.u16(65535) // unsigned16
          w.u32(0xfffffffe) // unsigned32
          w.u64(Number.MAX_SAFE_INTEGER) // unsigned64
          w.u8(0xff) // signed8 = -1
          w.u16(0x8000) // signed16 = -32768
          w.u32(0xfffffffe) // signed32 = -2
          w.bytes(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd)) // signed64 = -3
          w.bytes(Uint8Array.of(0x3f, 0xc0, 0, 0)) // float32 1.5
          w.f64(-0.25) // float64
          w.u8(2) // boolean false
          w.mac(0xa0b1, 0xc2d3e4f5)
          w.u32(1577836800) // dateTimeSeconds
          w.dateTimeMs(1577836800123)
          // dateTimeMicroseconds: NTP 2020-01-01 + 0.5 s, with low 11 bits set (ignored, RFC 7011 §6.1.9)
          w.u32(1577836800 + 2208988800)
          w.u32(0x800007ff)
          // dateTimeNanoseconds: + 0.25 s
          w.u32(1577836800 + 2208988800)
          w.u32(0x40000000)
          w.ipv4(0xc0000201)
          w.ipv6(ip6)
        },
      ],
    )
    expect(rec && recordToJson(rec)).toEqual({
      rtUnsigned8: 200,
      rtUnsigned16: 65535,
      rtUnsigned32: 0xfffffffe,
      rtUnsigned64: Number.MAX_SAFE_INTEGER,
      rtSigned8: -1,
      rtSigned16: -32768,
      rtSigned32: -2,
      rtSigned64: -3,
      rtFloat32: 1.5,
      rtFloat64: -0.25,
      rtBoolean: false,
      rtMacAddress: 'a0:b1:c2:d3:e4:f5',
      rtDateTimeSeconds: '2020-01-01T00:00:00.000Z',
      rtDateTimeMilliseconds: '2020-01-01T00:00:00.123Z',
      rtDateTimeMicroseconds: '2020-01-01T00:00:00.500000Z',
      rtDateTimeNanoseconds: '2020-01-01T00:00:00.250000000Z',
      rtIpv4Address: '192.0.2.1',
      rtIpv6Address: '2001:db8::1',
    })
  })

  it('reduced-size integers and float64 as float32 (RFC 7011 §6.2)', async () => {
    const [rec] = await roundTrip(
      [
        ['rtUnsigned64', 4],
        ['rtUnsigned64', 3],
        ['rtUnsigned64', 7],
        ['rtSigned32', 3],
        ['rtSigned64', 1],
        ['rtUnsigned16', 1],
        ['rtFloat64', 4],
      ],
      [
        (w) => {
          w.u32(4_000_000_000)
          w.bytes(Uint8Array.of(0x01, 0x02, 0x03))
          w.bytes(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)) // 2^56 - 1
          w.bytes(Uint8Array.of(0xff, 0xff, 0xfe)) // -2
          w.u8(0x80) // -128
          w.u8(7)
          w.bytes(Uint8Array.of(0x40, 0x20, 0, 0)) // 2.5
        },
      ],
    )
    expect(rec && recordToJson(rec)).toEqual({
      rtUnsigned64: [4_000_000_000, 0x010203, '72057594037927935'],
      rtSigned32: -2,
      rtSigned64: -128,
      rtUnsigned16: 7,
      rtFloat64: 2.5,
    })
  })

  it('unsigned64 beyond 2^53 becomes a decimal string; 2^64-1 is exact', async () => {
    const [rec] = await roundTrip(
      [['octetDeltaCount'], ['packetDeltaCount']],
      [
        (w) => {
          w.bytes(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
          w.bytes(Uint8Array.of(0, 0x20, 0, 0, 0, 0, 0, 1)) // 2^53 + 1
        },
      ],
    )
    expect(rec && recordToJson(rec)).toEqual({
      octetDeltaCount: '18446744073709551615',
      packetDeltaCount: '9007199254740993',
    })
  })

  it('variable-length octetArray, string and lists in the 1- and 3-octet length forms (RFC 7011 §7)', async () => {
    const long = 'é'.repeat(200) // 400 octets of UTF-8: needs the 3-octet form
    const big = new Uint8Array(300).fill(0xab)
    const recs = await roundTrip(
      [
        ['rtOctetArray'],
        ['rtString'],
        ['rtBasicList'],
        ['rtSubTemplateList'],
        ['rtSubTemplateMultiList'],
        ['protocolIdentifier'],
      ],
      [
        (w) => {
          w.varlen(Uint8Array.of(1, 2, 3))
          w.string('héllo')
          w.varlen(new Uint8Array(0))
          w.varlen(Uint8Array.of(0xff))
          w.varlen(new Uint8Array(254).fill(1))
          w.u8(6)
        },
        (w) => {
          w.varlen(big)
          w.string(long)
          w.varlen(new Uint8Array(255).fill(2))
          ;(w as unknown as { varlenLong(b: Uint8Array): void }).varlenLong(Uint8Array.of(9)) // FF 00 01 09
          w.varlen(new Uint8Array(0))
          w.u8(17)
        },
      ],
    )
    expect(recs).toHaveLength(2)
    const [a, b] = recs.map((r) => recordToJson(r))
    expect(a).toEqual({
      rtOctetArray: '010203',
      rtString: 'héllo',
      rtBasicList: '',
      rtSubTemplateList: 'ff',
      rtSubTemplateMultiList: '01'.repeat(254),
      protocolIdentifier: 6,
    })
    expect(b).toEqual({
      rtOctetArray: 'ab'.repeat(300),
      rtString: long,
      rtBasicList: '02'.repeat(255),
      rtSubTemplateList: '09',
      rtSubTemplateMultiList: '',
      protocolIdentifier: 17,
    })
    expect(enc.encode(long).byteLength).toBe(400)
  })
})
