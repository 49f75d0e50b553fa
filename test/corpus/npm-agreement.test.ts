// Agreement of the `npm` group with Wireshark and Arkime over ../shared/pcaps (skipped without the corpus or
// tshark). Per 5-tuple and direction: retransmissions (tcp.analysis.retransmission || fast_retransmission)
// and out-of-order segments (tcp.analysis.out_of_order) counted by tshark 4.0 against flowtelRetransPackets /
// flowtelOutOfOrderPackets (and their reverse); handshake RTT against tcp.analysis.initial_rtt (within 1 µs)
// and against Arkime's initRTT (half the handshake in whole ms, its session JSON). Prints the rates; the
// thresholds and every kind of disagreement are explained in docs/elements.md (npm group).
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { probeRecords, type JsonRecord } from '../helpers/probe-run.js'
import { HAVE_SHARED_PCAPS, listCaptures, SHARED_PCAPS } from '../helpers/shared.js'

const hasTshark = spawnSync('tshark', ['--version']).error === undefined
// NPM_AGREEMENT_DIRS=mixed,tunnels,... sweeps other folders (mixed/ alone takes several minutes).
const DIRS = (
  process.env['NPM_AGREEMENT_DIRS'] ?? 'tcp-metrics,http,tls,mysql,postgres,smb,email,ipv6,vlan'
).split(',')

interface Counts {
  retrans: number
  ooo: number
}

/** Direction key: "src sport > dst dport" (addresses as tshark and our JSON print them). */
const dkey = (src: string, sport: number, dst: string, dport: number): string =>
  `${src} ${sport} > ${dst} ${dport}`
const canon = (a: string, ap: number, b: string, bp: number): string =>
  `${a} ${ap}` < `${b} ${bp}` ? `${a} ${ap} ${b} ${bp}` : `${b} ${bp} ${a} ${ap}`

function tshark(file: string): { dirs: Map<string, Counts>; rtt: Map<string, number> } {
  const out = execFileSync(
    'tshark',
    [
      '-r',
      file,
      '-Y',
      'tcp',
      '-T',
      'fields',
      '-E',
      'occurrence=l',
      '-E',
      'separator=\t',
      '-e',
      'ip.src',
      '-e',
      'ipv6.src',
      '-e',
      'ip.dst',
      '-e',
      'ipv6.dst',
      '-e',
      'tcp.srcport',
      '-e',
      'tcp.dstport',
      '-e',
      'tcp.analysis.retransmission',
      '-e',
      'tcp.analysis.fast_retransmission',
      '-e',
      'tcp.analysis.out_of_order',
      '-e',
      'tcp.analysis.initial_rtt',
      '-e',
      'tcp.stream',
      '-e',
      'frame.protocols',
    ],
    { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] },
  )
  const dirs = new Map<string, Counts>()
  const rtt = new Map<string, number>()
  const streamSeen = new Set<string>()
  for (const line of out.split('\n')) {
    if (line === '') continue
    const [s4, s6, d4, d6, sp, dp, re, fast, ooo, irtt, stream, protos] = line.split('\t')
    // The innermost IP header keys our flows: IPv6 when ipv6 comes after the last ip in the chain (6in4).
    const chain = `:${protos ?? ''}:`
    const inner6 = chain.lastIndexOf(':ipv6:') > chain.lastIndexOf(':ip:')
    const src = (inner6 ? s6 : s4) ?? ''
    const dst = (inner6 ? d6 : d4) ?? ''
    if (src === '' || sp === undefined || sp === '' || dp === undefined) continue
    const k = dkey(src, Number(sp), dst, Number(dp))
    let c = dirs.get(k)
    if (c === undefined) dirs.set(k, (c = { retrans: 0, ooo: 0 }))
    if (re === '1' || fast === '1') c.retrans++
    if (ooo === '1') c.ooo++
    if (irtt !== undefined && irtt !== '' && stream !== undefined && !streamSeen.has(stream)) {
      streamSeen.add(stream)
      const ck = canon(src, Number(sp), dst, Number(dp))
      if (!rtt.has(ck)) rtt.set(ck, Math.round(Number(irtt) * 1e6))
    }
  }
  return { dirs, rtt }
}

function str(r: JsonRecord, a: string, b: string): string {
  const v = r[a] ?? r[b]
  return typeof v === 'string' ? v : ''
}
function num(r: JsonRecord, f: string): number {
  const v = r[f]
  return typeof v === 'number' ? v : 0
}

function ours(records: readonly JsonRecord[]): { dirs: Map<string, Counts>; rtt: Map<string, number> } {
  const dirs = new Map<string, Counts>()
  const rtt = new Map<string, number>()
  const add = (k: string, retrans: number, ooo: number): void => {
    const c = dirs.get(k) ?? { retrans: 0, ooo: 0 }
    c.retrans += retrans
    c.ooo += ooo
    dirs.set(k, c)
  }
  for (const r of records) {
    if (r['protocolIdentifier'] !== 6) continue
    const s = str(r, 'sourceIPv4Address', 'sourceIPv6Address')
    const d = str(r, 'destinationIPv4Address', 'destinationIPv6Address')
    const sp = num(r, 'sourceTransportPort')
    const dp = num(r, 'destinationTransportPort')
    add(dkey(s, sp, d, dp), num(r, 'flowtelRetransPackets'), num(r, 'flowtelOutOfOrderPackets'))
    add(dkey(d, dp, s, sp), num(r, 'flowtelReverseRetransPackets'), num(r, 'flowtelReverseOutOfOrderPackets'))
    const t = num(r, 'npnRoundTripTime')
    const ck = canon(s, sp, d, dp)
    if (t > 0 && !rtt.has(ck)) rtt.set(ck, t)
  }
  return { dirs, rtt }
}

describe.skipIf(!HAVE_SHARED_PCAPS || !hasTshark)('npm agreement with Wireshark and Arkime', () => {
  it('retransmissions, out-of-order and handshake RTT per flow and direction', async () => {
    let dirsTotal = 0
    let dirsAgree = 0
    let dirsFlagged = 0
    let dirsFlaggedAgree = 0
    let rttTotal = 0
    let rttAgree = 0
    let arkTotal = 0
    let arkAgree = 0
    const disagreements: string[] = []
    for (const dir of DIRS) {
      const base = join(SHARED_PCAPS, dir)
      if (!existsSync(base)) continue
      for (const rel of listCaptures(base)) {
        const file = join(base, rel)
        const theirs = tshark(file)
        if (theirs.dirs.size === 0) continue
        const { records } = await probeRecords([file], { fields: ['core', 'npm'] })
        const mine = ours(records)
        for (const [k, t] of theirs.dirs) {
          const m = mine.dirs.get(k) ?? { retrans: 0, ooo: 0 }
          const same = m.retrans === t.retrans && m.ooo === t.ooo
          dirsTotal++
          if (same) dirsAgree++
          if (t.retrans + t.ooo + m.retrans + m.ooo > 0) {
            dirsFlagged++
            if (same) dirsFlaggedAgree++
          }
          if (!same)
            disagreements.push(
              `${dir}/${rel} ${k}: retrans ours ${m.retrans} tshark ${t.retrans}, ooo ours ${m.ooo} tshark ${t.ooo}`,
            )
        }
        for (const [k, t] of theirs.rtt) {
          rttTotal++
          const m = mine.rtt.get(k)
          if (m !== undefined && Math.abs(m - t) <= 1) rttAgree++
          else disagreements.push(`${dir}/${rel} ${k}: initial RTT ours ${m ?? '-'} µs tshark ${t} µs`)
        }
        const ark = `${file}.arkime.json`
        if (existsSync(ark)) {
          const doc = JSON.parse(readFileSync(ark, 'utf8')) as {
            sessions3?: { body?: Record<string, unknown> }[]
          }
          for (const s of doc.sessions3 ?? []) {
            const b = s.body ?? {}
            const init = b['initRTT']
            const src = b['source'] as { ip?: string; port?: number } | undefined
            const dst = b['destination'] as { ip?: string; port?: number } | undefined
            if (typeof init !== 'number' || src?.ip === undefined || dst?.ip === undefined) continue
            const m = mine.rtt.get(canon(src.ip, src.port ?? 0, dst.ip, dst.port ?? 0))
            arkTotal++
            // Arkime: initRTT = (ackTime - synTime) / 2 in whole milliseconds.
            if (m !== undefined && Math.abs(Math.floor(m / 2000) - init) <= 1) arkAgree++
            else
              disagreements.push(
                `${dir}/${rel} ${src.ip}:${src.port} Arkime initRTT ${init} ms, ours ${m ?? '-'} µs`,
              )
          }
        }
      }
    }
    const pct = (a: number, n: number): string => (n === 0 ? 'n/a' : `${((100 * a) / n).toFixed(1)}%`)
    console.log(
      [
        `npm agreement: directions ${dirsAgree}/${dirsTotal} (${pct(dirsAgree, dirsTotal)}),`,
        `directions with any retrans/ooo ${dirsFlaggedAgree}/${dirsFlagged} (${pct(dirsFlaggedAgree, dirsFlagged)}),`,
        `initial RTT ${rttAgree}/${rttTotal} (${pct(rttAgree, rttTotal)}),`,
        `Arkime initRTT ${arkAgree}/${arkTotal} (${pct(arkAgree, arkTotal)})`,
      ].join(' '),
    )
    for (const d of disagreements.slice(0, 60)) console.log(`  ${d}`)
    if (disagreements.length > 60) console.log(`  ... ${disagreements.length - 60} more`)
    expect(dirsTotal).toBeGreaterThan(0)
    expect(dirsAgree / dirsTotal).toBeGreaterThanOrEqual(0.99)
    expect(dirsFlagged === 0 ? 1 : dirsFlaggedAgree / dirsFlagged).toBeGreaterThanOrEqual(0.85)
    expect(rttTotal === 0 ? 1 : rttAgree / rttTotal).toBeGreaterThanOrEqual(0.95)
    expect(arkTotal === 0 ? 1 : arkAgree / arkTotal).toBeGreaterThanOrEqual(0.9)
  }, 900_000) // one tshark and one probe run per capture: about 2 minutes on a loaded 2-core machine
})
