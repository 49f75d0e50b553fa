// `flowtel collect --read ... --store duckdb:PATH` then `flowtel query` on that file: top-N, filters, formats,
// time arguments and a filter error with its position.
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { exportBundledCaptures } from '../../../test/helpers/probe-run.js'
import { collectCommand } from './collect.js'
import { parseTime, queryCommand } from './query.js'

const HUAWEI = '/work/shared/exports/ipfix/netgauze__106-IPFIXv10-HUAWEI-vrf_name/traffic-00.pcap'
const dir = mkdtempSync(join(tmpdir(), 'flowtel-query-'))
const db = join(dir, 'flows.duckdb')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function run(args: string[]): Promise<string> {
  let out = ''
  const w = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s)
    return true
  })
  const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
  try {
    await queryCommand().parseAsync(args, { from: 'user' })
  } finally {
    w.mockRestore()
    e.mockRestore()
  }
  return out
}

beforeAll(async () => {
  const ipfix = join(dir, 'flows.ipfix')
  await exportBundledCaptures(ipfix)
  const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
  try {
    await collectCommand().parseAsync(['--read', ipfix, '--store', `duckdb:${db}`, '--no-summary'], {
      from: 'user',
    })
  } finally {
    e.mockRestore()
  }
})

describe('flowtel query', () => {
  it('ranks the top talkers from the store', async () => {
    const out = await run(['--store', `duckdb:${db}`, '--top', 'srcip,dstport', '--by', 'bytes', '-n', '3'])
    const lines = out.trim().split('\n')
    expect(lines[0]).toMatch(/^src_addr\s+dst_port\s+flows\s+packets\s+bytes$/)
    expect(lines).toHaveLength(4)
    const bytes = lines.slice(1).map((l) => Number(l.trim().split(/\s+/).at(-1)))
    expect([...bytes].sort((a, b) => b - a)).toEqual(bytes)
  })

  it('filters and writes JSON lines and CSV', async () => {
    const json = await run([
      '--store',
      `duckdb:${db}`,
      '-f',
      'proto udp and port 53',
      '--format',
      'json',
      '-n',
      '100',
    ])
    const rows = json
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(rows.length).toBeGreaterThan(0)
    for (const r of rows) {
      expect(r.proto).toBe(17)
      expect([r.src_port, r.dst_port]).toContain(53)
      expect(r.time_start).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/)
    }
    const csv = await run([
      '--store',
      `duckdb:${db}`,
      '-f',
      'proto udp and port 53',
      '--format',
      'csv',
      '-n',
      '100',
    ])
    expect(csv.split('\n')[0]).toBe(
      'time_start,time_end,src_addr,src_port,dst_addr,dst_port,proto,packets,rev_packets,bytes,rev_bytes',
    )
    expect(csv.trim().split('\n')).toHaveLength(rows.length + 1)
  })

  it('reports a bad filter with its position', async () => {
    await expect(run(['--store', `duckdb:${db}`, '-f', 'src ip 1.2.3.4; drop table flows'])).rejects.toThrow(
      /unexpected character ";" at position 15/,
    )
  })

  it('refuses a --top that names no field instead of listing flows', async () => {
    for (const top of [',,,', '', ' , '])
      await expect(run(['--store', `duckdb:${db}`, '--top', top])).rejects.toThrow(
        `--top ${JSON.stringify(top)} names no field`,
      )
  })

  it('refuses a store that does not exist', async () => {
    await expect(run(['--store', `duckdb:${join(dir, 'none.duckdb')}`])).rejects.toThrow(/no flow store at/)
  })

  it.skipIf(!existsSync(HUAWEI))('shows names joined from options data, and lists the options', async () => {
    const vrfDb = join(dir, 'vrf.duckdb')
    const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      await collectCommand().parseAsync(['--read', HUAWEI, '--store', `duckdb:${vrfDb}`, '--no-summary'], {
        from: 'user',
      })
    } finally {
      e.mockRestore()
    }
    // The default listing adds the joined columns that have a value: here the VRF names, no app or interface.
    const table = (await run(['--store', `duckdb:${vrfDb}`])).trim().split('\n')
    expect(table[0]).toMatch(/ bytes\s+rev_bytes\s+vrf_name\s+out_vrf_name$/)
    expect(table).toHaveLength(4)
    const csv = await run([
      '--store',
      `duckdb:${vrfDb}`,
      '-f',
      'vrf A4',
      '--columns',
      'proto,vrf_name,out_vrf_name',
      '--format',
      'csv',
    ])
    expect(csv).toBe('proto,vrf_name,out_vrf_name\n4,,A4\n4,,A4\n6,A4,\n')
    const opts = (await run(['--store', `duckdb:${vrfDb}`, '--options', 'vrf', '--format', 'json']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(opts).toMatchObject([{ exporter: '2001:db8:54::1', kind: 'vrf', key: '1', name: 'A4', rate: 0 }])
    expect(String(opts[0]?.received)).toMatch(/^\d{4}-\d\d-\d\dT/)
    // Without options data the listing is the plain summary (see the CSV header test above).
    expect((await run(['--store', `duckdb:${db}`, '-n', '1'])).split('\n')[0]).toMatch(/rev_bytes$/)
  })

  it('parses time arguments', () => {
    expect(parseTime('2024-01-02', 'x')).toBe(BigInt(Date.UTC(2024, 0, 2)) * 1000n)
    expect(parseTime('2024/01/02.03:04:05', 'x')).toBe(BigInt(Date.UTC(2024, 0, 2, 3, 4, 5)) * 1000n)
    expect(parseTime('1700000000', 'x')).toBe(1_700_000_000_000_000n)
    expect(parseTime('2h', 'x', 10_000_000)).toBe(BigInt(10_000_000 - 7_200_000) * 1000n)
    expect(() => parseTime('yesterday', '--since')).toThrow(/--since: expected/)
    // Before 1970 (a long duration, an old date, a duration past any number) is named, not a store error.
    for (const t of ['9999999h', '1900-01-01', '9'.repeat(400) + 'd'])
      expect(() => parseTime(t, '--since', 10_000_000)).toThrow(`--since: "${t}" is before 1970`)
    expect(parseTime('1970-01-01', 'x')).toBe(0n)
  })

  it('takes ISO 8601 shapes only, so a bare number or a loose date is refused instead of guessed', () => {
    // Date.parse alone read "5" and "-5" as May 2001, and "May 5" as 2001-05-05 (local time).
    for (const t of ['5', '-5', '12345', '05/01/2001', 'May 5', '2024-1-2', '2024-01-02T3:04'])
      expect(() => parseTime(t, '--since')).toThrow(`--since: expected an ISO time`)
    expect(parseTime('2024', 'x')).toBe(BigInt(Date.UTC(2024, 0, 1)) * 1000n)
    expect(parseTime('2024-01-02T03:04', 'x')).toBe(BigInt(Date.UTC(2024, 0, 2, 3, 4)) * 1000n)
    // A space for the T, as people type it; still UTC without a zone.
    expect(parseTime('2024-01-02 03:04:05', 'x')).toBe(BigInt(Date.UTC(2024, 0, 2, 3, 4, 5)) * 1000n)
    expect(parseTime('2024-01-02T03:04:05.250+02:00', 'x')).toBe(
      BigInt(Date.UTC(2024, 0, 2, 1, 4, 5, 250)) * 1000n,
    )
  })
})
