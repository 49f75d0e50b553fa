// Property tests: corrupted pcap/pcapng files (random byte overwrites, truncation, random bytes after a
// valid header) never make the readers throw, hang or hand out a packet outside its buffer.
import fc from 'fast-check'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  buildPcap,
  buildPcapng,
  concatBytes,
  pcapHeader,
  pcapngShb,
} from '../../test/helpers/pcap-builder.js'
import { openCaptureFiles } from './file-source.js'

let dir = ''
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flowtel-capture-fuzz-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const packets = Array.from({ length: 12 }, (_, i) => ({
  data: Uint8Array.from({ length: 20 + i * 9 }, (_, j) => (i ^ j) & 0xff),
  tsUs: 1_650_000_000_000_000 + i * 777,
  interfaceId: i % 3,
}))
const seeds = [
  buildPcap(packets),
  buildPcap(packets, { bigEndian: true, nanosecond: true }),
  buildPcapng([
    { interfaces: [{}, { tsresol: 9 }, { tsresol: 0x80 | 24, snaplen: 64 }], packets: packets.slice(0, 6) },
    { bigEndian: true, interfaces: [{}, {}, {}], packets: packets.slice(6) },
  ]),
]

let run = 0
async function check(bytes: Uint8Array, chunkSize: number): Promise<void> {
  const path = join(dir, `f${run++}`)
  await writeFile(path, bytes)
  let source
  try {
    source = await openCaptureFiles([path], { chunkSize, batchSize: 5, maxRecordSize: 1 << 16 })
  } catch (e) {
    // Only "not a capture" is allowed, and only when the magic number itself was damaged.
    expect(String(e)).toMatch(/not a pcap or pcapng file/)
    return
  }
  let n = 0
  for await (const b of source.batches()) {
    for (let i = 0; i < b.count; i++) {
      const off = b.offset[i] ?? -1
      const cap = b.caplen[i] ?? -1
      expect(off).toBeGreaterThanOrEqual(0)
      expect(cap).toBeGreaterThanOrEqual(0)
      expect(off + cap).toBeLessThanOrEqual(b.buf.byteLength)
      expect(Number.isFinite(b.tsUs[i])).toBe(true)
    }
    n += b.count
  }
  expect(source.stats.packets).toBe(n)
  expect(source.progress.done).toBe(source.progress.total)
  expect(n).toBeLessThanOrEqual(bytes.length / 12)
}

describe('corrupted captures', () => {
  it('random byte overwrites and truncation', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(),
        fc.integer({ min: 1, max: 300 }),
        async (seed, edits, cutAt, chunkSize) => {
          const bytes = seed.slice(0, seed.length - (cutAt % 40))
          for (const [at, value] of edits) bytes[at % bytes.length] = value
          await check(bytes, chunkSize)
        },
      ),
      { seed: 20240611, numRuns: 300 },
    )
  })

  it('random bytes after a valid header', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          pcapHeader(),
          pcapHeader({ bigEndian: true }),
          pcapngShb(),
          pcapngShb({ bigEndian: true }),
        ),
        fc.uint8Array({ maxLength: 2048 }),
        fc.integer({ min: 1, max: 512 }),
        async (head, tail, chunkSize) => {
          await check(concatBytes(head, tail), chunkSize)
        },
      ),
      { seed: 7, numRuns: 300 },
    )
  })
})
