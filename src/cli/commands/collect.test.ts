// `flowtel collect --read`: several files are one stream (a template in the first decodes data in the
// second), one JSON line per data record with the probe's element names, template events kept apart.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { hex } from '../../ipfix/testing.js'
import { collectCommand } from './collect.js'

describe('flowtel collect --read', () => {
  it('reads raw IPFIX files as one stream and writes JSON lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowtel-collect-'))
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
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
      const events = stderr.mock.calls.map((c) => String(c[0])).join('')
      expect(events).toContain('"@event":"template"')
    } finally {
      stderr.mockRestore()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('keeps the summary short with many sessions: 20 sequence trackers listed, the rest summed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowtel-collect-'))
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
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
      const text = stderr.mock.calls.map((c) => String(c[0])).join('')
      const summary = JSON.parse(text.trim().split('\n').at(-1)!) as {
        sequence: Record<string, unknown>
        sequenceOmitted?: { trackers: number; messages: number }
      }
      expect(Object.keys(summary.sequence)).toHaveLength(20)
      expect(summary.sequenceOmitted).toMatchObject({ trackers: 30, messages: 30 })
    } finally {
      stderr.mockRestore()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
