// `flowtel collect --read`: several files are one stream (a template in the first decodes data in the
// second), one JSON line per data record with the probe's element names, template events kept apart.
// The summary carries the capture's IP fragments and the export datagrams rebuilt from them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { LINKTYPE, PROTO, eth, ipv4, pcapFile, udp } from '../../../test/helpers/packet-builder.js'
import { hex } from '../../ipfix/testing.js'
import { collectCommand } from './collect.js'

/** What a test wrote to stderr: as text, and as the JSON lines `collect` writes. */
interface CapturedStderr {
  text(): string
  lines(): Record<string, unknown>[]
}

/** Runs `body` with a fresh temporary folder and stderr captured, and removes both after it. */
async function withStderr(body: (dir: string, stderr: CapturedStderr) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtel-collect-'))
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
  const text = (): string => spy.mock.calls.map((c) => String(c[0])).join('')
  try {
    await body(dir, {
      text,
      lines: () =>
        text()
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
    })
  } finally {
    spy.mockRestore()
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('flowtel collect --read', () => {
  it('reads raw IPFIX files as one stream and writes JSON lines', () =>
    withStderr(async (dir, stderr) => {
      const tpl = join(dir, 'a.ipfix')
      const data = join(dir, 'b.ipfix')
      const out = join(dir, 'out.jsonl')
      // RFC 5655 files: template 256 (destinationTransportPort) in the first, two data messages in the second.
      writeFileSync(tpl, hex('000a 001c 6553f100 00000000 00000001  0002 000c 0100 0001 000b 0002'))
      writeFileSync(
        data,
        hex(
          '000a 0016 6553f100 00000000 00000001 0100 0006 0050  000a 0016 6553f100 00000001 00000001 0100 0006 01bb',
        ),
      )
      await collectCommand().parseAsync(['--read', tpl, '--read', data, '--json', out, '--no-summary'], {
        from: 'user',
      })
      const lines = readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown)
      expect(lines).toEqual([{ destinationTransportPort: 80 }, { destinationTransportPort: 443 }])
      const events = stderr.text()
      expect(events).toContain('"@event":"template"')
    }))

  it('keeps the summary short with many sessions: 20 sequence trackers listed, the rest summed', () =>
    withStderr(async (dir, stderr) => {
      // 50 raw files, each its own session (--session-per-file): one header-only message each.
      const files: string[] = []
      for (let i = 0; i < 50; i++) {
        const f = join(dir, `${i}.ipfix`)
        writeFileSync(f, hex('000a 0010 6553f100 00000000 00000001'))
        files.push('--read', f)
      }
      await collectCommand().parseAsync([...files, '--session-per-file', '--json', join(dir, 'out.jsonl')], {
        from: 'user',
      })
      const text = stderr.text()
      const summary = JSON.parse(text.trim().split('\n').at(-1)!) as {
        sequence: Record<string, unknown>
        sequenceOmitted?: { trackers: number; messages: number }
      }
      expect(Object.keys(summary.sequence)).toHaveLength(20)
      expect(summary.sequenceOmitted).toMatchObject({ trackers: 30, messages: 30 })
    }))

  it('bounds the template event lines on stderr per exporter and kind; a summary line carries the rest', () =>
    withStderr(async (dir, stderr) => {
      // One raw IPFIX stream: template 256 defined and withdrawn 1000 times, then refreshed 2000 times.
      const define = hex('000a 001c 6553f100 00000000 00000001  0002 000c 0100 0001 000b 0002')
      const withdraw = hex('000a 0018 6553f100 00000000 00000001  0002 0008 0100 0000')
      const parts: Uint8Array[] = []
      for (let i = 0; i < 1000; i++) parts.push(define, withdraw)
      for (let i = 0; i < 2000; i++) parts.push(define)
      const f = join(dir, 'flood.ipfix')
      writeFileSync(f, Buffer.concat(parts))
      await collectCommand().parseAsync(['--read', f, '--json', join(dir, 'out.jsonl')], { from: 'user' })
      const lines = stderr.lines()
      const of = (event: string): Record<string, unknown>[] => lines.filter((l) => l['@event'] === event)
      // 4000 events: 20 lines of each kind (added, unchanged, withdrawal), then one summary per kind.
      expect(of('template')).toHaveLength(40)
      expect(of('withdrawal')).toHaveLength(20)
      const suppressed = of('template-events-suppressed')
      expect(suppressed.map((l) => [l['kind'], l['suppressed'], l['logged']])).toEqual([
        ['template/added', 1001 - 20, 20],
        ['withdrawal', 1000 - 20, 20],
        ['template/unchanged', 1999 - 20, 20],
      ])
      expect(suppressed[0]).toMatchObject({ exporter: '0.0.0.0' })
      expect(lines).toHaveLength(40 + 20 + 3 + 1)
      // The counters keep the exact numbers.
      const summary = lines.at(-1) as { counters: Record<string, number> }
      expect(summary.counters).toMatchObject({
        templates_added: 1001,
        templates_unchanged: 1999,
        withdrawal: 1000,
      })
    }))

  it('says in the summary how many IP fragments the capture had and how many datagrams they rebuilt', () =>
    withStderr(async (dir, stderr) => {
      // A real MikroTik IPFIX template message (test/fixtures/exports/SOURCES.md) in one UDP datagram, cut
      // into two IPv4 fragments of 80 and 76 octets.
      const fixture = new URL('../../../test/fixtures/exports/logstash-mikrotik-tpl.dat', import.meta.url)
      const dgram = udp({ sport: 2055, dport: 4739, payload: new Uint8Array(readFileSync(fixture)) })
      const frames = [0, 80].map((at) =>
        eth(
          {},
          ipv4(
            { src: '192.0.2.1', dst: '192.0.2.2', proto: PROTO.UDP, id: 1, mf: at === 0, fragOffset: at },
            dgram.subarray(at, at + 80),
          ),
        ),
      )
      const f = join(dir, 'fragments.pcap')
      writeFileSync(
        f,
        pcapFile(
          LINKTYPE.ETHERNET,
          frames.map((data) => ({ data })),
        ),
      )
      await collectCommand().parseAsync(['--read', f, '--json', join(dir, 'out.jsonl')], { from: 'user' })
      const text = stderr.text()
      const summary = JSON.parse(text.trim().split('\n').at(-1)!) as {
        input: Record<string, unknown>
        counters: Record<string, number>
      }
      expect(summary.input).toMatchObject({
        packets: 2,
        fragments: 2,
        reassembled: 1,
        datagrams: 1,
        skipped: {},
      })
      expect(summary.counters).toMatchObject({ templates_added: 2 })
    }))

  it('bounds the options data lines on stderr per exporter too; a summary line carries the rest', () =>
    withStderr(async (dir, stderr) => {
      // Options template 257 (RFC 7011 §3.4.2.2): scope ingressInterface, then interfaceName (8 octets).
      const template = hex(
        '000a 0022 6553f100 00000000 00000001  0003 0012 0101 0002 0001 000a 0004 0052 0008',
      )
      // A catalogue of 300 interfaces in one data set, sent 5 times (1500 options data records).
      const set = Buffer.alloc(4 + 300 * 12)
      set.writeUInt16BE(257, 0)
      set.writeUInt16BE(set.length, 2)
      for (let i = 0; i < 300; i++) {
        set.writeUInt32BE(i + 1, 4 + i * 12)
        set.write(`if${i}`, 8 + i * 12, 'latin1')
      }
      const parts: Uint8Array[] = [template]
      for (let n = 0; n < 5; n++) {
        const header = Buffer.from(hex('000a 0000 6553f100 00000000 00000001'))
        header.writeUInt16BE(16 + set.length, 2)
        header.writeUInt32BE(1 + n * 300, 8)
        parts.push(header, set)
      }
      const f = join(dir, 'catalogue.ipfix')
      writeFileSync(f, Buffer.concat(parts))
      await collectCommand().parseAsync(['--read', f, '--json', join(dir, 'out.jsonl')], { from: 'user' })
      const lines = stderr.lines()
      const of = (event: string): Record<string, unknown>[] => lines.filter((l) => l['@event'] === event)
      expect(of('options-template')).toHaveLength(1)
      const logged = of('options-data')
      expect(logged).toHaveLength(20)
      expect(logged[0]).toMatchObject({ ingressInterface: 1, interfaceName: 'if0' })
      expect(of('options-data-suppressed')).toEqual([
        {
          '@event': 'options-data-suppressed',
          exporter: '0.0.0.0',
          kind: 'options-data',
          suppressed: 1500 - 20,
          logged: 20,
          seconds: 0,
        },
      ])
      expect(lines).toHaveLength(1 + 20 + 1 + 1)
      // The counters keep the exact number of records.
      expect(lines.at(-1)).toMatchObject({ records: 0, counters: { records: 1500 } })
    }))
})
