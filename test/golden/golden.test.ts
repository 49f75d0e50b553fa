// Golden round trip: the probe with default options over small real captures (test/fixtures/pcap, see the
// SOURCES.md there for provenance and licences), each record decoded back from IPFIX to JSON, compared with
// test/golden/<name>.jsonl (a header line, then one record per line sorted by start time and text).
// Regenerate with `UPDATE_GOLDEN=1 npx vitest run test/golden` and review the diff before committing.
import { existsSync, readdirSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { probeRecords, type JsonRecord } from '../helpers/probe-run.js'
import { REPO_ROOT } from '../helpers/shared.js'

const FIXTURES = join(REPO_ROOT, 'test/fixtures/pcap')
const GOLDEN = join(REPO_ROOT, 'test/golden')
const UPDATE = process.env.UPDATE_GOLDEN === '1'
export const GOLDEN_HEADER = { generated: 'UPDATE_GOLDEN=1 npx vitest run test/golden to regenerate' }

/** Capture (relative to test/fixtures/pcap) and what it covers. */
const CASES: readonly (readonly [file: string, covers: string])[] = [
  ['interop/arkime-http-simple-get.pcap', 'plain TCP/HTTP, SYN to FIN'],
  ['interop/ipfixprobe-dns.pcap', 'DNS over UDP'],
  ['interop/arkime-v6.pcap', 'IPv6: DNS, SSH, ICMPv6, RIPng'],
  ['formats/arkime-bigendian.pcap', 'ICMP echo, big-endian pcap'],
  ['vlan/zeek-q-in-q.pcap', 'VLAN and QinQ (802.1ad) tags'],
  ['vlan/zeek-mpls-in-vlan.pcap', 'MPLS inside a VLAN'],
  ['vlan/zeek-pppoe.pcap', 'PPPoE session, IPv6 and ICMPv6'],
  ['tunnels/tcpdump-vxlan.pcap', 'VXLAN (inner flows, VNI)'],
  ['tunnels/tcpdump-various_gre.pcap', 'GRE variants'],
  ['ipv4/zeek-dns-edns-ecs.pcap', 'IPv4 fragments (large DNS answers)'],
  ['ipv6/zeek-ipv6-http-atomic-frag.pcap', 'IPv6 extension headers and atomic fragments'],
  ['formats/tcpdump-tcp-handshake-nano.pcap', 'nanosecond pcap, Linux SLL'],
  ['formats/zeek-pcapng-multi-interface.pcapng', 'pcapng with two interfaces (ns and µs)'],
]

const nameOf = (file: string): string => basename(file).replace(/\.(pcap|pcapng)$/, '')

function startOf(r: JsonRecord): string {
  return typeof r.flowStartMilliseconds === 'string' ? r.flowStartMilliseconds : ''
}

/** The golden text: header line, then records sorted by start time, then by their JSON text. */
export function goldenText(records: readonly JsonRecord[]): string {
  const lines = records
    .map((r) => ({ start: startOf(r), text: JSON.stringify(r) }))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.text < b.text ? -1 : a.text > b.text ? 1 : 0))
    .map((x) => x.text)
  return [JSON.stringify(GOLDEN_HEADER), ...lines].join('\n') + '\n'
}

describe('golden JSON records', () => {
  it.each(CASES)('%s (%s)', async (file) => {
    const { records } = await probeRecords([join(FIXTURES, file)])
    expect(records.length).toBeGreaterThan(0)
    const text = goldenText(records)
    const path = join(GOLDEN, `${nameOf(file)}.jsonl`)
    if (UPDATE) {
      await writeFile(path, text)
      return
    }
    expect(existsSync(path), `${path} is missing: run UPDATE_GOLDEN=1 npx vitest run test/golden`).toBe(true)
    const want = (await readFile(path, 'utf8')).split('\n')
    // Line by line, so a failure shows which records changed.
    expect(text.split('\n')).toEqual(want)
  })

  it('has no stale golden files', () => {
    const expected = new Set(CASES.map(([f]) => `${nameOf(f)}.jsonl`))
    const present = readdirSync(GOLDEN).filter((n) => n.endsWith('.jsonl'))
    expect(present.filter((n) => !expected.has(n))).toEqual([])
  })

  it('is deterministic: two runs give the same text', async () => {
    const file = join(FIXTURES, 'interop/arkime-v6.pcap')
    const a = await probeRecords([file])
    const b = await probeRecords([file])
    expect(goldenText(b.records)).toBe(goldenText(a.records))
  })
})
