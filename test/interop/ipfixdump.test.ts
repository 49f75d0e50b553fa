// Interop smoke test: an RFC 5655 file written by our exporter (file transport) is decoded by ipfixDump
// (libfixbuf, the reference file decoder in reference/standards.md §6.2). Skipped when ipfixDump is absent.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { registerElements } from '../../src/ipfix/elements.js'
import { IpfixExporter } from '../../src/ipfix/exporter.js'
import { Template } from '../../src/ipfix/template.js'
import { FileTransport } from '../../src/ipfix/transport-file.js'

const hasIpfixDump = spawnSync('ipfixDump', ['--version']).error === undefined
const dir = mkdtempSync(path.join(tmpdir(), 'flowtel-ipfixdump-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.skipIf(!hasIpfixDump)('ipfixDump decodes our export file', () => {
  it('every record, template and message is accounted for', async () => {
    registerElements([{ pen: 32473, id: 1, name: 'flowtelTestCounter', type: 'unsigned32' }])
    const file = path.join(dir, 'export.ipfix')
    const t = new FileTransport(file)
    await t.open()
    let now = 1_700_000_000
    const e = new IpfixExporter(
      {
        observationDomainId: 12,
        maxMessageSize: 1472,
        templateRefreshSeconds: 600,
        templateRefreshMessages: 0,
        statsIntervalSeconds: 60,
        exportingProcessId: 1,
        now: () => now,
        meteringStats: () => ({
          ignoredPackets: 1,
          ignoredOctets: 60,
          firstIgnoredMs: 1e12,
          lastIgnoredMs: 1e12,
        }),
      },
      [t],
    )
    const v4 = Template.fromNames(256, [
      ['flowStartMilliseconds'],
      ['flowEndMilliseconds'],
      ['sourceIPv4Address'],
      ['destinationIPv4Address'],
      ['sourceTransportPort'],
      ['destinationTransportPort'],
      ['protocolIdentifier'],
      ['tcpControlBits', 1],
      ['octetDeltaCount'],
      ['packetDeltaCount'],
      ['reverseOctetDeltaCount'],
      ['reversePacketDeltaCount'],
      ['sourceMacAddress'],
      ['flowEndReason'],
      ['biflowDirection'],
      ['applicationName'],
      ['flowtelTestCounter'],
    ])
    const v6 = Template.fromNames(257, [
      ['flowStartMilliseconds'],
      ['sourceIPv6Address'],
      ['destinationIPv6Address'],
      ['protocolIdentifier'],
      ['octetDeltaCount', 4],
      ['applicationId'],
    ])
    e.addTemplate(v4)
    e.addTemplate(v6)
    const n4 = 500
    const n6 = 300
    const src6 = new Uint32Array([0x20010db8, 0, 0, 1])
    const dst6 = new Uint32Array([0x20010db8, 0, 0, 2])
    for (let i = 0; i < n4; i++) {
      const w = e.beginRecord(v4, 200)
      w.dateTimeMs(now * 1000)
      w.dateTimeMs(now * 1000 + 5)
      w.ipv4(0x0a000000 + i)
      w.ipv4(0xc0a80001)
      w.u16(1024 + i)
      w.u16(443)
      w.u8(6)
      w.u8(0x1b)
      w.u64(1000 + i)
      w.u64(10)
      w.u64(2000 + i)
      w.u64(20)
      w.mac(0x0011, 0x22334455)
      w.u8(3)
      w.u8(1)
      w.string(i % 50 === 0 ? 'long-' + 'x'.repeat(300) : `app${i}`) // 3-octet length form too
      w.u32(i)
      e.endRecord()
      if (i % 100 === 0) now += 2
      e.tick()
    }
    for (let i = 0; i < n6; i++) {
      const w = e.beginRecord(v6, 60)
      w.dateTimeMs(now * 1000)
      w.ipv6(src6)
      w.ipv6(dst6)
      w.u8(17)
      w.u32(i)
      w.varlen(Uint8Array.of(3, 0, 53)) // IANA-L4 port 53 (RFC 6759)
      e.endRecord()
    }
    await e.close()

    const stats = execFileSync('ipfixDump', ['--in', file, '--stats'], { encoding: 'utf8' })
    const fileStats = /File Stats: (\d+) Messages, (\d+) Data Records, (\d+) Template Records/.exec(stats)
    expect(fileStats, stats).not.toBeNull()
    const [, messages, dataRecords, templateRecords] = fileStats ?? []
    const statsRecords = e.stats.records - n4 - n6
    expect(Number(dataRecords)).toBe(e.stats.records)
    expect(Number(messages)).toBe(e.stats.messages + e.stats.templateSends)
    expect(Number(templateRecords)).toBe(5) // 2 data + 3 options templates, sent once to a file
    const perTemplate = new Map(
      [...stats.matchAll(/^\s*(\d+) \(0x[0-9a-f]+\)\|\s*(\d+)/gm)].map((m) => [Number(m[1]), Number(m[2])]),
    )
    expect(perTemplate.get(256)).toBe(n4)
    expect(perTemplate.get(257)).toBe(n6)
    expect(
      (perTemplate.get(65533) ?? 0) + (perTemplate.get(65534) ?? 0) + (perTemplate.get(65535) ?? 0),
    ).toBe(statsRecords)

    const text = execFileSync('ipfixDump', ['--in', file], { encoding: 'utf8', maxBuffer: 64 << 20 })
    const names = [...text.matchAll(/applicationName : \(len: \d+\) (\S+)/g)].map((m) => m[1])
    expect(names).toHaveLength(n4)
    expect(names[1]).toBe('app1')
    expect(names[50]).toBe('long-' + 'x'.repeat(300))
    expect(text).toContain('reverseOctetDeltaCount : 2499')
    expect(text).toContain('sourceIPv6Address : 2001:0db8::0001')
    expect(text).toMatch(/_alienInformationElement|32473/)
    expect(text).not.toMatch(/warning|error|malformed/i)
  })
})
