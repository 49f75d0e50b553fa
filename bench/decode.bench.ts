/**
 * Decoder throughput: reads every packet of a capture into memory once (src/capture/file-source.ts), then decodes
 * all of them N times with PacketDecoder and prints packets/s. Reported, not gating CI.
 *
 * Usage: node --import tsx bench/decode.bench.ts FILE [ROUNDS=20]
 */
import { openCaptureFiles } from '../src/capture/file-source.js'
import { Anomalies } from '../src/decode/anomalies.js'
import { DecodeResult, PacketInfo } from '../src/decode/packet.js'
import { PacketDecoder } from '../src/decode/packet-decoder.js'

const file = process.argv[2]
const rounds = Number(process.argv[3] ?? 20)
if (file === undefined || !(rounds > 0)) {
  process.stderr.write('usage: node --import tsx bench/decode.bench.ts FILE [ROUNDS]\n')
  process.exit(2)
}

// Copy the packets into one contiguous buffer so the timed loop measures the decoder only.
const chunks: Uint8Array[] = []
const meta: number[] = [] // offset, caplen, origlen, linkType, tsUs per packet
let size = 0
const src = await openCaptureFiles([file])
for await (const b of src.batches()) {
  for (let i = 0; i < b.count; i++) {
    const off = b.offset[i]!
    const cap = b.caplen[i]!
    chunks.push(b.buf.slice(off, off + cap))
    meta.push(size, cap, b.origlen[i]!, b.linkType[i]!, b.tsUs[i]!)
    size += cap
  }
}
await src.close()
const buf = new Uint8Array(size)
let o = 0
for (const c of chunks) {
  buf.set(c, o)
  o += c.length
}
const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
const n = meta.length / 5
const m = Float64Array.from(meta)

const decoder = new PacketDecoder(new Anomalies())
const info = new PacketInfo()
let ip = 0
function round(): void {
  for (let i = 0; i < n; i++) {
    const k = i * 5
    const r = decoder.decode(buf, view, m[k]!, m[k + 1]!, m[k + 2]!, m[k + 3]!, m[k + 4]!, info)
    if (r === DecodeResult.Ip) ip++
  }
}

for (let w = 0; w * n < 500_000 || w < 3; w++) round() // warm-up: let the JIT settle on small captures too
ip = 0
const t0 = process.hrtime.bigint()
for (let r = 0; r < rounds; r++) round()
const secs = Number(process.hrtime.bigint() - t0) / 1e9
const pps = (n * rounds) / secs
process.stdout.write(
  `${file}: ${n} packets (${size} bytes) x ${rounds} rounds in ${secs.toFixed(3)} s: ` +
    `${(pps / 1e6).toFixed(2)} M packets/s, ${((size * rounds) / secs / 1e9).toFixed(2)} GB/s captured bytes, ` +
    `${ip / rounds} IP per round\n`,
)
