// Corpus sweep (runs when ../shared/pcaps is present, as in CI): for every capture outside malformed/ and
// formats/ (but the NFLOG captures there), the packets and IP-level bytes in the exported flows equal what
// tshark counts for IP packets, tunnels counted once (the innermost IP header of a decapsulated tunnel
// carries the bytes). Every capture in malformed/ and formats/ finishes without a crash or hang.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { probeRecords, total } from '../helpers/probe-run.js'
import { HAVE_SHARED_PCAPS, listCaptures, SHARED_PCAPS } from '../helpers/shared.js'

const run = promisify(execFile)
const HAVE_TSHARK = existsSync('/usr/bin/tshark')

/** Layers after which the next IP header is the packet Flowtel keys on (the tunnels it removes). */
const TUNNEL_LAYERS = new Set(['vxlan', 'geneve', 'gre', 'erspan', 'gtp', 'teredo'])
/** Layers after which IP headers are quoted inside an error message, not a packet of their own. */
const STOP_LAYERS = new Set(['icmp', 'icmpv6'])

interface Counts {
  packets: number
  bytes: number
}

/**
 * tshark's view: one line per frame with its protocol stack and every ip.len / ipv6.plen. The flow layer
 * is the first IP header, or the one right after a tunnel Flowtel removes (IP-in-IP, 6in4, VXLAN, ...).
 */
export async function tsharkIpCounts(file: string): Promise<Counts> {
  const { stdout } = await run(
    'tshark',
    [
      '-n',
      '-r',
      file,
      '-o',
      'ip.defragment:FALSE',
      '-o',
      'ipv6.defragment:FALSE',
      // Flowtel also removes VXLAN on the Linux kernel's default port.
      '-d',
      'udp.port==8472,vxlan',
      // ... and Teredo on any port, found by content (src/decode/teredo.ts): Wireshark's heuristic.
      '--enable-heuristic',
      'teredo_udp',
      '-T',
      'fields',
      '-E',
      'occurrence=a',
      '-E',
      'aggregator=,',
      '-e',
      'frame.protocols',
      '-e',
      'ip.len',
      '-e',
      'ipv6.plen',
      '-e',
      'ipv6.opt.jumbo',
    ],
    { maxBuffer: 512 * 1024 * 1024 },
  )
  let packets = 0
  let bytes = 0
  for (const line of stdout.split('\n')) {
    if (line === '') continue
    const [protos = '', ipLens = '', ip6Lens = '', jumbos = ''] = line.split('\t')
    const v4 = ipLens === '' ? [] : ipLens.split(',').map(Number)
    const v6 = ip6Lens === '' ? [] : ip6Lens.split(',').map(Number)
    const jumbo = jumbos === '' ? [] : jumbos.split(',').map(Number)
    let i4 = 0
    let i6 = 0
    let iJumbo = 0
    let chosen: number | undefined
    let allowed = true
    let prevWasIp = false
    for (const layer of protos.split(':')) {
      if (layer === 'ip' || layer === 'ipv6') {
        let len = layer === 'ip' ? v4[i4++] : (v6[i6++] ?? NaN) + 40
        // RFC 2675: payload length 0 with a Jumbo Payload option (BIG TCP) carries the length there.
        if (layer === 'ipv6' && len === 40 && jumbo[iJumbo] !== undefined) len = jumbo[iJumbo++]! + 40
        if (allowed || prevWasIp) chosen = len
        allowed = false
        prevWasIp = true
        continue
      }
      // IPv6 extension headers (ipv6.routing, ipv6.hopopts, ...) sit between two IP headers of a tunnel.
      if (layer.startsWith('ipv6.')) continue
      prevWasIp = false
      if (STOP_LAYERS.has(layer)) break
      if (TUNNEL_LAYERS.has(layer) && chosen !== undefined) allowed = true
    }
    if (chosen !== undefined && Number.isFinite(chosen)) {
      packets++
      bytes += chosen
    }
  }
  return { packets, bytes }
}

async function flowtelCounts(file: string): Promise<Counts> {
  const { records } = await probeRecords([file])
  return {
    packets: total(records, 'packetDeltaCount') + total(records, 'reversePacketDeltaCount'),
    bytes: total(records, 'octetDeltaCount') + total(records, 'reverseOctetDeltaCount'),
  }
}

const all = HAVE_SHARED_PCAPS ? listCaptures(SHARED_PCAPS) : []
// ACCOUNTING_ONLY=substring narrows the sweep while investigating one capture.
const only = process.env.ACCOUNTING_ONLY
// formats/ captures whose link type the decoder supports are accounted too (NFLOG: src/decode/nflog.ts).
const DECODED_FORMATS = /^formats\/.*nflog/
const accounted = all.filter(
  (f) =>
    !f.startsWith('malformed/') &&
    (!f.startsWith('formats/') || DECODED_FORMATS.test(f)) &&
    (only === undefined || f.includes(only)),
)
const edge = all.filter((f) => f.startsWith('malformed/') || f.startsWith('formats/'))

describe.skipIf(!HAVE_SHARED_PCAPS || !HAVE_TSHARK)('accounting against tshark over ../shared/pcaps', () => {
  it(`exports exactly the IP packets and bytes tshark counts, for ${accounted.length} captures`, async () => {
    const mismatches: string[] = []
    let packets = 0
    const queue = [...accounted]
    const worker = async (): Promise<void> => {
      for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
        const path = join(SHARED_PCAPS, f)
        const [want, got] = await Promise.all([tsharkIpCounts(path), flowtelCounts(path)])
        packets += want.packets
        if (want.packets !== got.packets || want.bytes !== got.bytes) {
          mismatches.push(
            `${f}: tshark ${want.packets} pkts / ${want.bytes} B, flowtel ${got.packets} pkts / ${got.bytes} B`,
          )
        }
      }
    }
    await Promise.all([worker(), worker()])
    console.log(
      `accounting: ${accounted.length} captures, ${packets} IP packets, ${mismatches.length} mismatches`,
    )
    expect(mismatches).toEqual([])
  }, 1_200_000)
})

describe.skipIf(!HAVE_SHARED_PCAPS)('malformed and odd-format captures', () => {
  it(`finish without a crash or hang, with problems counted (${edge.length} captures)`, async () => {
    const lines: string[] = []
    let counted = 0
    for (const f of edge) {
      const { summary } = await probeRecords([join(SHARED_PCAPS, f)])
      const problems =
        Object.values(summary.anomalies).reduce((a, b) => a + b, 0) +
        Object.values(summary.formatErrors).reduce((a, b) => a + b, 0) +
        summary.unsupportedLinkTypePackets
      if (problems > 0) counted++
      lines.push(`${f}: ${summary.packets} packets, ${summary.flows} flows, ${problems} counted problems`)
      expect(
        summary.ipPackets +
          summary.nonIpPackets +
          summary.malformedPackets +
          summary.unsupportedLinkTypePackets,
      ).toBe(summary.packets)
    }
    console.log(lines.join('\n'))
    // Most of these files exist to exercise a malformation, an odd link type or a format corner.
    expect(counted).toBeGreaterThan(edge.length / 2)
  }, 600_000)
})
