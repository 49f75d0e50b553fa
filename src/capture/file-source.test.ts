// Tests for the chunked capture-file source: record boundaries across chunks, buffer growth, several
// files as one stream, directory expansion, format detection by magic, progress and lifecycle.
import { execFileSync } from 'node:child_process'
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  buildPcap,
  buildPcapng,
  formatErrorsOf,
  readAllPackets,
  readCaptureBytes,
  type BuilderPacket,
  type PcapngPacket,
  type ReadPacket,
} from '../../test/helpers/pcap-builder.js'
import type { PacketBatch } from './batch.js'
import { detectCaptureFormat, openCaptureFiles } from './file-source.js'

const T0 = 1_600_000_000_000_000

function packets(n: number, sizes: readonly number[] = [60, 1, 0, 1514, 7, 33]): BuilderPacket[] {
  return Array.from({ length: n }, (_, i) => ({
    data: Uint8Array.from({ length: sizes[i % sizes.length] ?? 0 }, (_, j) => (i + j * 3) & 0xff),
    tsUs: T0 + i * 10_007,
  }))
}

function signature(p: ReadPacket): string {
  return `${p.tsUs} ${p.caplen} ${p.origlen} ${p.linkType} ${p.ifIndex} ${Buffer.from(p.data).toString('hex')}`
}

let dir = ''
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flowtel-file-source-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function put(name: string, bytes: Uint8Array | string): Promise<string> {
  const path = join(dir, name)
  await mkdir(join(path, '..'), { recursive: true })
  await writeFile(path, bytes)
  return path
}

describe('file source', () => {
  describe('record boundaries across chunks', () => {
    const pk = packets(23)
    const pcap = buildPcap(pk, { nanosecond: true })
    const ngPackets: PcapngPacket[] = pk.map((p, i) => ({
      ...p,
      interfaceId: i % 2,
      block: i % 7 === 3 ? 'opb' : 'epb',
    }))
    const pcapng = buildPcapng([
      { interfaces: [{}, { tsresol: 9 }], packets: ngPackets.slice(0, 11) },
      { bigEndian: true, interfaces: [{}, { tsresol: 9 }], packets: ngPackets.slice(11) },
    ])

    for (const [name, bytes] of [
      ['pcap', pcap],
      ['pcapng', pcapng],
    ] as const) {
      it(`${name}: every chunk size from 1 to 200 bytes and several batch sizes give the same packets`, async () => {
        const reference = await readCaptureBytes(bytes)
        expect(reference.packets.map((p) => p.data)).toEqual(pk.map((p) => p.data))
        expect(reference.packets.map((p) => p.tsUs)).toEqual(pk.map((p) => p.tsUs))
        const expected = reference.packets.map(signature)
        const path = await put(`boundaries.${name}`, bytes)
        for (let chunkSize = 1; chunkSize <= 200; chunkSize++) {
          const batchSize = 1 + (chunkSize % 5)
          const source = await openCaptureFiles([path], { chunkSize, batchSize })
          const got = await readAllPackets(source)
          // Compared as strings: deep equality of Uint8Arrays is slow in expect().
          expect(got.map(signature), `chunkSize ${chunkSize}`).toEqual(expected)
          expect(formatErrorsOf(source.stats)).toEqual({})
        }
      })
    }

    it('grows the buffer for records larger than a chunk', async () => {
      const big = [{ data: new Uint8Array(100_000).fill(7), tsUs: T0 }, ...packets(3)]
      const r = await readCaptureBytes(buildPcap(big), { chunkSize: 1000 })
      expect(r.packets.map((p) => p.caplen)).toEqual(big.map((p) => p.data.length))
      expect(r.packets[0]?.data.every((b) => b === 7)).toBe(true)
    })
  })

  it('hands out the chunk buffer itself (zero copy) and reuses the batch object', async () => {
    const path = await put('zero-copy.pcap', buildPcap(packets(50)))
    const source = await openCaptureFiles([path], { batchSize: 8, chunkSize: 1 << 16 })
    const seen = new Set<PacketBatch>()
    const bufs = new Set<Uint8Array>()
    let n = 0
    for await (const b of source.batches()) {
      seen.add(b)
      bufs.add(b.buf)
      expect(b.count).toBeLessThanOrEqual(8)
      expect(b.view.byteLength).toBe(b.buf.byteLength)
      n += b.count
    }
    expect(n).toBe(50)
    expect(seen.size).toBe(1)
    expect(bufs.size).toBe(1)
    expect([...bufs][0]?.byteLength).toBe(1 << 16)
  })

  it('defaults to batches of 4096 packets', async () => {
    const path = await put('many.pcap', buildPcap(packets(10000, [20])))
    const source = await openCaptureFiles([path])
    const counts: number[] = []
    for await (const b of source.batches()) counts.push(b.count)
    expect(counts).toEqual([4096, 4096, 1808])
  })

  it('reads several files in order as one stream, with progress and stats', async () => {
    const a = await put('multi/a.pcapng', buildPcapng({ packets: packets(3) }))
    const b = await put('multi/b.pcap', buildPcap(packets(2), { bigEndian: true }))
    const c = await put('multi/c.pcap', buildPcap(packets(4).slice(2)))
    const source = await openCaptureFiles([c, a, b], { chunkSize: 64 })
    expect(source.files).toEqual([c, a, b])
    const total = source.progress.total
    expect(total).toBeGreaterThan(0)
    const progress: number[] = []
    const got: number[] = []
    for await (const batch of source.batches()) {
      progress.push(source.progress.done)
      for (let i = 0; i < batch.count; i++) got.push(batch.caplen[i] ?? -1)
    }
    expect(got).toEqual([0, 1514, 60, 1, 0, 60, 1])
    expect(source.progress.done).toBe(total)
    expect(progress).toEqual([...progress].sort((x, y) => x - y))
    expect(source.stats.packets).toBe(7)
    expect(source.stats.bytes).toBe(got.reduce((s, n) => s + n, 0))
  })

  it('expands directories recursively, sorted by name, detecting captures by magic', async () => {
    const root = join(dir, 'tree')
    await put('tree/b.pcap', buildPcap(packets(1)))
    await put('tree/a/z.data', buildPcapng({ packets: packets(2) })) // no capture extension: still read
    await put('tree/a/y.pcap', 'not a capture at all, despite the name\n')
    await put('tree/a/empty.pcap', new Uint8Array(0))
    await put('tree/a/tiny', new Uint8Array([0xd4, 0xc3]))
    await put('tree/c/d/e.cap', buildPcap(packets(3), { nanosecond: true }))
    await put('tree/README.md', '# notes\n')
    await put('tree/B.pcap', buildPcap(packets(1))) // upper case sorts before lower case
    await symlink(root, join(root, 'c', 'loop')) // a symlink loop must not recurse forever
    const source = await openCaptureFiles([root])
    expect(source.files.map((f) => f.slice(root.length + 1))).toEqual([
      'B.pcap',
      'a/z.data',
      'b.pcap',
      'c/d/e.cap',
    ])
    const got = await readAllPackets(source)
    expect(got).toHaveLength(7)
    expect(formatErrorsOf(source.stats)).toEqual({})
  })

  it('rejects an explicitly named file that is not a capture, with its path', async () => {
    const path = await put('notes.txt', 'hello, this is text\n')
    await expect(openCaptureFiles([path])).rejects.toThrow(new Error(`${path}: not a pcap or pcapng file`))
  })

  it('rejects a pipe or a device, with its path (not a bare ESPIPE)', async () => {
    // Found by the probe fuzz campaign: `-r /dev/stdin` or `-r <(zcat x.pcap.gz)` failed with
    // "ESPIPE: invalid seek, read" and no path.
    const fifo = join(dir, 'capture.fifo')
    execFileSync('mkfifo', [fifo])
    for (const path of [fifo, '/dev/null'])
      await expect(openCaptureFiles([path])).rejects.toThrow(
        new Error(`${path}: not a regular file (a pipe or device cannot be read as a capture)`),
      )
  })

  it('rejects an unreadable path', async () => {
    await expect(openCaptureFiles([join(dir, 'missing.pcap')])).rejects.toThrow(/ENOENT/)
  })

  it('counts an explicitly named empty or too-short file instead of throwing', async () => {
    const empty = await put('empty.pcap', new Uint8Array(0))
    const short = await put('short.pcap', new Uint8Array([0xa1, 0xb2]))
    const good = await put('good.pcap', buildPcap(packets(2)))
    const source = await openCaptureFiles([empty, short, good])
    expect(await readAllPackets(source)).toHaveLength(2)
    expect(formatErrorsOf(source.stats)).toEqual({ empty_file: 1, truncated_file_header: 1 })
  })

  it('goes on with the next file after a malformed one', async () => {
    const whole = buildPcap(packets(4))
    const cut = await put('cut.pcap', whole.subarray(0, whole.length - 3))
    const good = await put('after-cut.pcap', buildPcap(packets(2)))
    const source = await openCaptureFiles([cut, good], { chunkSize: 100 })
    expect(await readAllPackets(source)).toHaveLength(5)
    expect(formatErrorsOf(source.stats)).toEqual({ truncated_record: 1 })
    expect(source.progress.done).toBe(source.progress.total)
  })

  it('stops cleanly when the consumer breaks early or closes', async () => {
    const path = await put('early.pcap', buildPcap(packets(100)))
    const source = await openCaptureFiles([path, path], { batchSize: 10 })
    let n = 0
    for await (const b of source.batches()) {
      n += b.count
      break
    }
    expect(n).toBe(10)
    await source.close()

    const other = await openCaptureFiles([path, path], { batchSize: 10 })
    const it = other.batches()[Symbol.asyncIterator]()
    expect((await it.next()).done).toBe(false)
    await other.close()
    expect((await it.next()).done).toBe(true)
  })

  it('iterates once', async () => {
    const path = await put('once.pcap', buildPcap(packets(1)))
    const source = await openCaptureFiles([path])
    await readAllPackets(source)
    await expect(source.batches()[Symbol.asyncIterator]().next()).rejects.toThrow(/once/)
  })

  it('validates options', async () => {
    const path = await put('opts.pcap', buildPcap(packets(1)))
    await expect(openCaptureFiles([path], { batchSize: 0 })).rejects.toThrow(RangeError)
    await expect(openCaptureFiles([path], { chunkSize: 1.5 })).rejects.toThrow(RangeError)
  })

  it('detects formats by magic number', () => {
    expect(detectCaptureFormat(buildPcap([]))).toBe('pcap')
    expect(detectCaptureFormat(buildPcap([], { bigEndian: true, nanosecond: true }))).toBe('pcap')
    expect(detectCaptureFormat(buildPcapng({ bigEndian: true }))).toBe('pcapng')
    expect(detectCaptureFormat(new TextEncoder().encode('\n\r\r\nnot pcapng at all'))).toBe(null)
    expect(detectCaptureFormat(new Uint8Array([0xa1, 0xb2, 0xc3]))).toBe(null)
  })
})
