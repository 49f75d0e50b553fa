// Real captures through the readers: the committed format fixtures (test/fixtures/pcap/formats, see
// SOURCES.md there), and a sweep of the shared corpus's formats/ and malformed/ files, whose packet
// counts must match capinfos (or the MANIFEST.tsv count when capinfos is absent).
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { formatErrorsOf, readAllPackets } from '../../test/helpers/pcap-builder.js'
import { openCaptureFiles } from './file-source.js'
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 } from './link-types.js'

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/pcap/formats/', import.meta.url))
const SHARED = '/work/shared/pcaps'

type Row = [tsUs: number, caplen: number, origlen: number, linkType: number, ifIndex: number]

async function rows(path: string, chunkSize?: number): Promise<{ rows: Row[]; errors: object }> {
  const source = await openCaptureFiles([path], chunkSize === undefined ? {} : { chunkSize, batchSize: 2 })
  const packets = await readAllPackets(source)
  return {
    rows: packets.map((p) => [p.tsUs, p.caplen, p.origlen, p.linkType, p.ifIndex]),
    errors: formatErrorsOf(source.stats),
  }
}

describe('format fixtures', () => {
  // Expected values: tshark frame.time_epoch (floored to µs), cap_len, len, interface_id + 1.
  const cases: Record<string, Row[]> = {
    'tcpdump-tcp-handshake-nano.pcap': [
      [1418145369924505, 76, 76, LINKTYPE_LINUX_SLL, 0],
      [1418145370052027, 76, 76, LINKTYPE_LINUX_SLL, 0],
      [1418145370052115, 68, 68, LINKTYPE_LINUX_SLL, 0],
    ],
    'arkime-bigendian.pcap': [
      [1335958313152630, 98, 98, LINKTYPE_ETHERNET, 0],
      [1335958317529201, 98, 98, LINKTYPE_ETHERNET, 0],
    ],
    'zeek-pcapng-multi-interface.pcapng': [
      [1767663089500330, 96, 96, LINKTYPE_ETHERNET, 1],
      [1767663089514291, 214, 214, LINKTYPE_ETHERNET, 1],
      [1767663437111897, 70, 70, LINKTYPE_ETHERNET, 2],
      [1767663437126460, 166, 166, LINKTYPE_ETHERNET, 2],
      [1767663437128303, 70, 70, LINKTYPE_ETHERNET, 2],
      [1767663437140942, 182, 182, LINKTYPE_ETHERNET, 2],
    ],
    'zeek-linux_dlt_sll2.pcap': [
      [1660534249872259, 104, 104, LINKTYPE_LINUX_SLL2, 0],
      [1660534249872288, 104, 104, LINKTYPE_LINUX_SLL2, 0],
      [1660534264088564, 124, 124, LINKTYPE_LINUX_SLL2, 0],
      [1660534264088594, 124, 124, LINKTYPE_LINUX_SLL2, 0],
      [1660535793578961, 48, 48, LINKTYPE_LINUX_SLL2, 0],
      [1660535793578961, 48, 48, LINKTYPE_LINUX_SLL2, 0],
    ],
  }
  for (const [file, expected] of Object.entries(cases)) {
    it(`${file} reads as tshark does`, async () => {
      for (const chunkSize of [undefined, 29]) {
        expect(await rows(join(FIXTURES, file), chunkSize)).toEqual({ rows: expected, errors: {} })
      }
    })
  }

  it('the fixture directory reads as one stream', async () => {
    const source = await openCaptureFiles([FIXTURES])
    expect(source.files.map((f) => f.slice(FIXTURES.length))).toEqual(Object.keys(cases).sort())
    const packets = await readAllPackets(source)
    expect(packets).toHaveLength(17)
    expect(source.progress.done).toBe(source.progress.total)
  })
})

describe.skipIf(!existsSync(join(SHARED, 'MANIFEST.tsv')))('shared corpus sweep', () => {
  const manifest = existsSync(join(SHARED, 'MANIFEST.tsv'))
    ? readFileSync(join(SHARED, 'MANIFEST.tsv'), 'utf8')
    : ''
  const counts = new Map<string, number>()
  for (const line of manifest.split('\n').slice(1)) {
    const f = line.split('\t')
    if (f.length > 6) counts.set(f[0] ?? '', Number(f[6]))
  }
  const files = [...counts.keys()].filter((f) => f.startsWith('formats/') || f.startsWith('malformed/'))

  // capinfos is the oracle when installed (one run for all files); MANIFEST.tsv carries its counts otherwise.
  // It exits 1 when a file is cut short, with its output still complete.
  const oracle = new Map<string, number>()
  const cutShort = new Set<string>()
  const run = spawnSync('capinfos', ['-c', '-M', '-T', '-r', ...files], { cwd: SHARED, encoding: 'utf8' })
  if (run.error === undefined) {
    for (const line of run.stdout.split('\n')) {
      const [file, n] = line.split('\t')
      if (file !== undefined && n !== undefined) oracle.set(file, Number(n))
    }
    for (const m of run.stderr.matchAll(/The file "([^"]+)" appears to have been cut short/g))
      cutShort.add(m[1] ?? '')
  }

  it('found the formats/ and malformed/ files', () => {
    expect(files.length).toBeGreaterThan(50)
  })

  for (const file of files) {
    it(`${file}: packet count matches ${oracle.has(file) ? 'capinfos' : 'MANIFEST'}`, async () => {
      const expected = oracle.get(file) ?? counts.get(file)
      const path = join(SHARED, file)
      const whole = await rows(path)
      expect(whole.rows).toHaveLength(expected ?? -1)
      if (cutShort.has(file)) expect(whole.errors).toHaveProperty('truncated_record', 1)
      // Same packets with a tiny chunk size (records straddle every boundary).
      expect(await rows(path, 61)).toEqual(whole)
    })
  }

  it('the whole corpus reads as one stream by directory expansion, skipping non-capture files', async () => {
    const source = await openCaptureFiles([SHARED])
    expect(source.files).toHaveLength(counts.size)
    let n = 0
    for await (const b of source.batches()) n += b.count
    expect(n).toBe([...counts.values()].reduce((a, b) => a + b, 0))
    expect(source.stats.packets).toBe(n)
    expect(source.progress.done).toBe(source.progress.total)
  })
})
