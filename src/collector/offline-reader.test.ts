// Offline reading of IPFIX over TCP from a capture (offline-reader.ts, RFC 7011 §10.4.3 framing): a
// connection's stream state goes at its FIN or RST, and the streams kept are bounded (least recently seen
// evicted, counted), so a capture of many connections does not hold state for every one it ever saw.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { LINKTYPE, TCP, eth, ipv4, pcapFile, tcp } from '../../test/helpers/packet-builder.js'
import { hex } from '../ipfix/testing.js'
import { FlowCollector, type DecodeOutput } from './decode-message.js'
import { MAX_TCP_STREAMS, OfflineReader } from './offline-reader.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-offline-reader-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** An IPFIX message (version 10, 20 octets: header and a 4-octet set header of an unknown set). */
const MESSAGE = hex('000a 0014 6553f100 00000000 00000001 0004 0004')

/** One exporter → collector segment of connection `port` (seq from 1000, so `at` octets into the stream). */
function segment(
  port: number,
  at: number,
  flags: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  return eth(
    {},
    ipv4(
      { src: '192.0.2.1', dst: '192.0.2.2' },
      tcp({ sport: port, dport: 4739, seq: 1000 + at, flags, payload: new Uint8Array(payload) }),
    ),
  )
}

async function readCapture(frames: Uint8Array[]): Promise<{ reader: OfflineReader; outs: DecodeOutput[] }> {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.pcap`)
  writeFileSync(
    path,
    pcapFile(
      LINKTYPE.ETHERNET,
      frames.map((data) => ({ data })),
    ),
  )
  const outs: DecodeOutput[] = []
  const reader = new OfflineReader(new FlowCollector(), (o) => outs.push(o))
  await reader.read([path])
  return { reader, outs }
}

describe('OfflineReader TCP streams', () => {
  it('drops a stream at its FIN (a FIN with data is framed first) and at an RST from either side', async () => {
    const frames: Uint8Array[] = []
    for (let port = 10_000; port < 10_300; port++) {
      // A whole message, then half of the next: the framer holds an incomplete message.
      frames.push(segment(port, 0, TCP.PSH | TCP.ACK, MESSAGE))
      frames.push(segment(port, 20, TCP.PSH | TCP.ACK, MESSAGE.subarray(0, 10)))
      if (port % 3 === 0) frames.push(segment(port, 30, TCP.FIN | TCP.ACK))
      else if (port % 3 === 1) frames.push(segment(port, 30, TCP.FIN | TCP.ACK, MESSAGE.subarray(10)))
      else
        frames.push(
          eth(
            {},
            ipv4({ src: '192.0.2.2', dst: '192.0.2.1' }, tcp({ sport: 4739, dport: port, flags: TCP.RST })),
          ),
        )
    }
    const { reader } = await readCapture(frames)
    expect(reader.stats.tcpMessages).toBe(300 + 100) // the FIN segments with data completed 100 messages
    expect(reader.tcpStreams).toBe(0)
  })

  it('keeps at most MAX_TCP_STREAMS streams of connections that never end, evicting the oldest', async () => {
    const n = MAX_TCP_STREAMS + 500
    const frames: Uint8Array[] = []
    for (let i = 0; i < n; i++) frames.push(segment(1024 + i, 0, TCP.PSH | TCP.ACK, MESSAGE.subarray(0, 10)))
    // The first connection again: it was evicted, so this continuation starts a new stream mid-message.
    frames.push(segment(1024, 10, TCP.PSH | TCP.ACK, MESSAGE.subarray(10)))
    const { reader } = await readCapture(frames)
    expect(reader.tcpStreams).toBe(MAX_TCP_STREAMS)
    expect(reader.stats.skipped['tcp_stream_evicted']).toBe(501)
    expect(reader.stats.tcpMessages).toBe(0)
  })
})
