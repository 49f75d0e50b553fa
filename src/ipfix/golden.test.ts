// Golden bytes of exporter output against hand-annotated messages in the style of RFC 7011 Appendix A.
import { describe, expect, it } from 'vitest'
import { IpfixExporter } from './exporter.js'
import { Template } from './template.js'
import { MemoryTransport, hex } from './testing.js'

const tplBytes = hex(`
  000a 0030          # version 10, length 48
  5e0be100           # export time 2020-01-01T00:00:00Z
  00000000           # sequence 0 (templates do not count)
  00000001           # observation domain 1
  0002 0020          # Template Set, length 32
  0100 0005          # template 256, 5 fields
  0008 0004          # sourceIPv4Address, 4
  000c 0004          # destinationIPv4Address, 4
  0001 0008          # octetDeltaCount, 8
  8001 0008 00007279 # reverseOctetDeltaCount: E bit + id 1, 8, PEN 29305 (RFC 5103 §6.1)
  0060 ffff          # applicationName, variable length
`)

const dataBytes = hex(`
  000a 0049          # version 10, length 73
  5e0be100           # export time
  00000000           # sequence 0: no data records before this message
  00000001           # observation domain 1
  0100 0039          # Data Set for template 256, length 57
  0a000001 0a000002 0000000000000064 0000000000000032 03 616263   # 10.0.0.1 > 10.0.0.2, 100 / 50, "abc"
  c0a80001 c0a80002 00000000000003e8 0000000000000000 00          # 192.168.0.1 > .2, 1000 / 0, ""
`)

const data2Bytes = hex(`
  000a 0032          # length 50
  5e0be101           # export time +1 s
  00000002           # sequence 2: two data records sent before
  00000001
  0100 0022          # Data Set 256, length 34
  01020304 05060708 0000000000000001 0000000000000002 ff0003 78797a   # "xyz" in the 3-octet length form (RFC 7011 §7)
`)

describe('golden messages', () => {
  it('template message and data messages match the annotated bytes', async () => {
    let now = 1577836800
    const t = new MemoryTransport()
    const e = new IpfixExporter(
      {
        observationDomainId: 1,
        maxMessageSize: 1472,
        templateRefreshSeconds: 600,
        templateRefreshMessages: 0,
        statsIntervalSeconds: 0,
        now: () => now,
      },
      [t],
    )
    const tpl = Template.fromNames(256, [
      ['sourceIPv4Address'],
      ['destinationIPv4Address'],
      ['octetDeltaCount'],
      ['reverseOctetDeltaCount'],
      ['applicationName'],
    ])
    e.addTemplate(tpl)
    const enc = new TextEncoder()
    const rec = (s: number, d: number, o: number, r: number, name: string, long = false): void => {
      const w = e.beginRecord(tpl, 4 + 4 + 8 + 8 + 3 + 64)
      w.ipv4(s)
      w.ipv4(d)
      w.u64(o)
      w.u64(r)
      if (long) (w as unknown as { varlenLong(b: Uint8Array): void }).varlenLong(enc.encode(name))
      else w.string(name)
      e.endRecord()
    }
    rec(0x0a000001, 0x0a000002, 100, 50, 'abc')
    rec(0xc0a80001, 0xc0a80002, 1000, 0, '')
    e.flush()
    now += 1
    rec(0x01020304, 0x05060708, 1, 2, 'xyz', true)
    await e.close()
    expect(t.messages.map((m) => Buffer.from(m).toString('hex'))).toEqual(
      [tplBytes, dataBytes, data2Bytes].map((m) => Buffer.from(m).toString('hex')),
    )
    expect(e.stats).toEqual({ messages: 2, records: 3, octets: 73 + 50, templateSends: 1, droppedRecords: 0 })
  })
})
