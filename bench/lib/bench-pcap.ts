// Benchmark capture: builds it with ../shared/bench/make-bench-pcap.sh when missing, and counts its packets
// and wire bytes (cached next to the file) so every tool's throughput is computed from the same figures.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'

export interface CaptureInfo {
  readonly file: string
  readonly packets: number
  /** Sum of the records' original lengths (bytes on the wire, without preamble/FCS). */
  readonly wireBytes: number
  readonly fileBytes: number
  /** Last minus first timestamp, seconds. */
  readonly spanS: number
}

/**
 * Makes sure `out` exists, building it deterministically from `inputDir` with `replicas` replicas
 * (same inputs and tool versions give a byte-identical file). Progress goes to stderr.
 */
export async function ensureBenchPcap(
  script: string,
  inputDir: string,
  out: string,
  replicas: number,
): Promise<void> {
  if (existsSync(out)) return
  if (!existsSync(script)) throw new Error(`benchmark capture script not found: ${script}`)
  await mkdir(path.dirname(out), { recursive: true })
  const tmp = `${out}.partial`
  process.stderr.write(`building ${out} (${replicas} replicas) with ${script} ...\n`)
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('bash', [script, inputDir, tmp, String(replicas)], {
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    child.once('error', reject)
    child.once('close', resolve)
  })
  if (code !== 0) throw new Error(`make-bench-pcap.sh exited with ${code}`)
  await rename(tmp, out)
}

/** Packet count, wire bytes and time span of a classic pcap (either byte order, µs or ns), cached. */
export async function captureInfo(file: string): Promise<CaptureInfo> {
  const st = await stat(file)
  const cacheFile = `${file}.info.json`
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as CaptureInfo & {
      size: number
      mtimeMs: number
    }
    if (cached.size === st.size && cached.mtimeMs === st.mtimeMs) {
      return {
        file,
        packets: cached.packets,
        wireBytes: cached.wireBytes,
        fileBytes: cached.fileBytes,
        spanS: cached.spanS,
      }
    }
  } catch {
    // No cache yet.
  }
  const info = await walkPcap(file)
  await writeFile(cacheFile, JSON.stringify({ ...info, size: st.size, mtimeMs: st.mtimeMs }))
  return info
}

async function walkPcap(file: string): Promise<CaptureInfo> {
  const fh = await open(file, 'r')
  try {
    const head = Buffer.alloc(24)
    await fh.read(head, 0, 24, 0)
    const magic = head.readUInt32LE(0)
    let le: boolean
    let nano: boolean
    if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) {
      le = true
      nano = magic === 0xa1b23c4d
    } else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) {
      le = false
      nano = magic === 0x4d3cb2a1
    } else {
      throw new Error(`${file}: not a classic pcap (magic 0x${magic.toString(16)})`)
    }
    const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o))
    const chunk = Buffer.alloc(8 * 1024 * 1024)
    let filePos = 24
    let have = 0
    let packets = 0
    let wireBytes = 0
    let first = -1
    let last = 0
    // `chunk[0..have)` holds unread bytes starting at a record header.
    while (true) {
      const { bytesRead } = await fh.read(chunk, have, chunk.length - have, filePos)
      filePos += bytesRead
      have += bytesRead
      let off = 0
      while (off + 16 <= have) {
        const incl = u32(chunk, off + 8)
        if (off + 16 + incl > have) break
        const ts = u32(chunk, off) + u32(chunk, off + 4) / (nano ? 1e9 : 1e6)
        if (first < 0) first = ts
        last = ts
        wireBytes += u32(chunk, off + 12)
        packets++
        off += 16 + incl
      }
      if (bytesRead === 0) break
      chunk.copy(chunk, 0, off, have)
      have -= off
    }
    const st = await fh.stat()
    return { file, packets, wireBytes, fileBytes: st.size, spanS: first < 0 ? 0 : last - first }
  } finally {
    await fh.close()
  }
}
