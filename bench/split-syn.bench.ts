// Splits a classic pcap (Ethernet, as bench/out/bench.pcap) into its pure-SYN packets (TCP flags exactly SYN:
// connection attempts, a port scan's probes) and everything else, each part keeping the packets' order and
// bytes. bench.pcap's flows are 93% one-SYN flows of a replicated port scan, so the whole file's figures hide
// what the L7 groups cost where there is L7 traffic: run the probe A/B (npm run bench:ab with
// BENCH_AB_CAPTURE) on each part. Plain pcap only (libpcap's µs or ns format, either byte order).
//
// npm run bench:split-syn -- [input.pcap] [outdir]   (defaults: bench/out/bench.pcap, bench/out)
//   writes <outdir>/<name>.syn.pcap and <outdir>/<name>.nosyn.pcap
import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2).filter((a) => a !== '--')
const input = args[0] ?? path.join(repo, 'bench/out/bench.pcap')
const outDir = args[1] ?? path.join(repo, 'bench/out')
const base = path.basename(input).replace(/\.pcap$/, '')

const SYN_ONLY = 0x02
const CHUNK = 8 << 20

/** True for an Ethernet frame carrying IPv4 or IPv6 (no extension headers) TCP with flags exactly SYN. */
export function isPureSyn(p: Uint8Array): boolean {
  if (p.byteLength < 14) return false
  const type = (p[12]! << 8) | p[13]!
  if (type === 0x0800) {
    if (p.byteLength < 34 || p[23] !== 6) return false
    const l4 = 14 + (p[14]! & 0x0f) * 4
    return p.byteLength > l4 + 13 && p[l4 + 13] === SYN_ONLY
  }
  if (type === 0x86dd) return p.byteLength > 54 + 13 && p[20] === 6 && p[54 + 13] === SYN_ONLY
  return false
}

function main(): void {
  const fd = openSync(input, 'r')
  const header = Buffer.alloc(24)
  if (readSync(fd, header, 0, 24, 0) !== 24) throw new Error(`${input}: shorter than a pcap header`)
  const magic = header.readUInt32LE(0)
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d
  const big = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1
  if (!little && !big) throw new Error(`${input}: not a classic pcap file (pcapng is not supported)`)
  if ((little ? header.readUInt32LE(20) : header.readUInt32BE(20)) !== 1)
    throw new Error(`${input}: link type is not Ethernet`)
  const syn = openSync(path.join(outDir, `${base}.syn.pcap`), 'w')
  const rest = openSync(path.join(outDir, `${base}.nosyn.pcap`), 'w')
  writeSync(syn, header)
  writeSync(rest, header)
  let buf = Buffer.alloc(CHUNK)
  let have = 0
  let pos = 24
  const counts = [0, 0]
  for (;;) {
    const n = readSync(fd, buf, have, buf.byteLength - have, pos)
    pos += n
    have += n
    let off = 0
    while (have - off >= 16) {
      const incl = little ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8)
      if (incl > 262144) throw new Error(`${input}: record at ${pos - have + off} claims ${incl} bytes`)
      if (have - off < 16 + incl) break
      const record = buf.subarray(off, off + 16 + incl)
      const s = isPureSyn(record.subarray(16)) ? 1 : 0
      writeSync(s === 1 ? syn : rest, record)
      counts[s]! += 1
      off += 16 + incl
    }
    buf.copy(buf, 0, off, have)
    have -= off
    if (n === 0) break
    if (have === buf.byteLength) buf = Buffer.concat([buf, Buffer.alloc(CHUNK)])
  }
  if (have > 0) process.stderr.write(`${input}: ${have} bytes of a truncated last record left out\n`)
  for (const f of [fd, syn, rest]) closeSync(f)
  console.log(
    `${base}.syn.pcap: ${counts[1]} packets; ${base}.nosyn.pcap: ${counts[0]} packets (in ${outDir})`,
  )
}

main()
