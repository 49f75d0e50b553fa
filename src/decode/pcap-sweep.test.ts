// Corpus sweep: decodes every capture in ../shared/pcaps (the development corpus, see its README and MANIFEST.tsv)
// with PacketDecoder. Checks that nothing throws, and that outside malformed/ and formats/ the number of packets
// classified as IP equals tshark's count of frames matching `ip or ipv6` (reassembly off). tshark counts are cached
// in node_modules/.cache/flowtel (keyed by path, size, mtime) because tshark starts slowly; FLOWTEL_SKIP_TSHARK=1
// skips that comparison. The corpus is not part of the repository: the sweep is skipped when it is absent.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { openCaptureFiles } from '../capture/file-source.js'
import { Anomalies } from './anomalies.js'
import { DecodeResult, PacketInfo } from './packet.js'
import { PacketDecoder } from './packet-decoder.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const CORPUS = path.resolve(repoRoot, '../shared/pcaps')
const CACHE = path.join(repoRoot, 'node_modules/.cache/flowtel/tshark-ip-counts.json')
const run = promisify(execFile)

/**
 * Files where our IP count and tshark's differ for a reason we accept, pinned to the exact counts
 * (ours, tshark's) so any change shows up. See the reasons.
 */
const KNOWN_DIFFERENCES: Record<string, { ours: number; tshark: number; reason: string }> = {
  'arp/tcpdump-arcnet-rfc1051-arp-icmp-http.pcap': {
    ours: 0,
    tshark: 22,
    reason:
      'link type 129 (Linux ARCNET) is not supported: every packet is UnsupportedLinkType, counted by the caller',
  },
}

function listCaptures(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name)
    const st = statSync(p)
    if (st.isDirectory()) {
      if (!name.endsWith('.zeek')) out.push(...listCaptures(p))
    } else if (/\.(pcap|pcapng|cap)$/.test(name)) out.push(p)
  }
  return out
}

interface SweepResult {
  packets: number
  ip: number
  nonIp: number
  malformed: number
  unsupported: number
  anomalies: Record<string, number>
}

async function sweep(file: string): Promise<SweepResult> {
  const anomalies = new Anomalies()
  const decoder = new PacketDecoder(anomalies)
  const info = new PacketInfo()
  const res: SweepResult = { packets: 0, ip: 0, nonIp: 0, malformed: 0, unsupported: 0, anomalies: {} }
  const src = await openCaptureFiles([file])
  try {
    for await (const b of src.batches()) {
      for (let i = 0; i < b.count; i++) {
        const r = decoder.decode(
          b.buf,
          b.view,
          b.offset[i]!,
          b.caplen[i]!,
          b.origlen[i]!,
          b.linkType[i]!,
          b.tsUs[i]!,
          info,
        )
        res.packets++
        if (r === DecodeResult.Ip) res.ip++
        else if (r === DecodeResult.NonIp) res.nonIp++
        else if (r === DecodeResult.Malformed) res.malformed++
        else res.unsupported++
      }
    }
  } finally {
    await src.close()
  }
  res.anomalies = anomalies.toObject()
  return res
}

type CountCache = Record<string, { key: string; ip: number }>

async function tsharkIpCount(file: string): Promise<number> {
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
      '-Y',
      'ip or ipv6',
      '-T',
      'fields',
      '-e',
      'frame.number',
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  )
  return stdout.split('\n').filter((l) => l.trim() !== '').length
}

function hasTshark(): boolean {
  if (process.env.FLOWTEL_SKIP_TSHARK === '1') return false
  try {
    return (process.env.PATH ?? '').split(path.delimiter).some((d) => existsSync(path.join(d, 'tshark')))
  } catch {
    return false
  }
}

const files = existsSync(CORPUS) ? listCaptures(CORPUS) : []
const rel = (f: string): string => path.relative(CORPUS, f)
const compared = files.filter((f) => !/^(malformed|formats)\//.test(rel(f)))

describe.skipIf(files.length === 0)('pcap corpus sweep', () => {
  const results = new Map<string, SweepResult>()

  beforeAll(async () => {
    for (const f of files) results.set(rel(f), await sweep(f))
  }, 600_000)

  it('decodes every capture without throwing', () => {
    expect(results.size).toBe(files.length)
    let packets = 0
    for (const r of results.values()) packets += r.packets
    expect(packets).toBeGreaterThan(0)
  })

  describe.skipIf(!hasTshark())('IP packet count equals tshark `ip or ipv6`', () => {
    const tshark = new Map<string, number>()

    beforeAll(async () => {
      let cache: CountCache = {}
      try {
        cache = JSON.parse(readFileSync(CACHE, 'utf8')) as CountCache
      } catch {
        cache = {}
      }
      const todo: string[] = []
      for (const f of compared) {
        const st = statSync(f)
        const key = `${st.size}:${st.mtimeMs}`
        const c = cache[rel(f)]
        if (c !== undefined && c.key === key) tshark.set(rel(f), c.ip)
        else todo.push(f)
      }
      const workers = Array.from({ length: 4 }, async () => {
        for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
          const st = statSync(f)
          const ip = await tsharkIpCount(f)
          tshark.set(rel(f), ip)
          cache[rel(f)] = { key: `${st.size}:${st.mtimeMs}`, ip }
        }
      })
      await Promise.all(workers)
      mkdirSync(path.dirname(CACHE), { recursive: true })
      writeFileSync(CACHE, JSON.stringify(cache, null, 1))
    }, 900_000)

    it('matches on every capture outside malformed/ and formats/', () => {
      const mismatches: string[] = []
      for (const f of compared) {
        const name = rel(f)
        const ours = results.get(name)
        const theirs = tshark.get(name)
        if (ours === undefined || theirs === undefined) {
          mismatches.push(`${name}: missing result`)
          continue
        }
        const known = KNOWN_DIFFERENCES[name]
        if (known !== undefined) {
          if (known.ours !== ours.ip || known.tshark !== theirs)
            mismatches.push(
              `${name}: ours ${ours.ip}, tshark ${theirs} (pinned ${known.ours}/${known.tshark})`,
            )
        } else if (ours.ip !== theirs) {
          mismatches.push(
            `${name}: ours ${ours.ip}, tshark ${theirs} (packets ${ours.packets}, non-IP ${ours.nonIp}, malformed ${ours.malformed}, unsupported ${ours.unsupported}) ${JSON.stringify(ours.anomalies)}`,
          )
        }
      }
      expect(mismatches).toEqual([])
    })
  })
})
