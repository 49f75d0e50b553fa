// Corpus sweep: decodes every capture in ../shared/pcaps (the development corpus, see its README and MANIFEST.tsv)
// with PacketDecoder and checks that nothing throws and every packet gets exactly one classification. The
// comparison with tshark's IP counts is end to end, through exported flows, in test/corpus/accounting.test.ts.
// The corpus is not part of the repository: the sweep is skipped when it is absent.
import { existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { openCaptureFiles } from '../capture/file-source.js'
import { Anomalies } from './anomalies.js'
import { DecodeResult, PacketInfo } from './packet.js'
import { PacketDecoder } from './packet-decoder.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const CORPUS = path.resolve(repoRoot, '../shared/pcaps')

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

const files = existsSync(CORPUS) ? listCaptures(CORPUS) : []
const rel = (f: string): string => path.relative(CORPUS, f)

describe.skipIf(files.length === 0)('pcap corpus sweep', () => {
  const results = new Map<string, SweepResult>()

  beforeAll(async () => {
    for (const f of files) results.set(rel(f), await sweep(f))
  }, 600_000)

  it('decodes every capture without throwing', () => {
    expect(results.size).toBe(files.length)
    let packets = 0
    for (const r of results.values()) {
      packets += r.packets
      expect(r.ip + r.nonIp + r.malformed + r.unsupported).toBe(r.packets)
    }
    expect(packets).toBeGreaterThan(0)
  })
})
