// Offline reading of flow exports from a capture (offline-reader.ts). IPFIX over TCP (RFC 7011 §10.4.3
// framing): a connection's stream state goes at its FIN or RST, and the streams kept are bounded (least recently
// seen evicted, counted), so a capture of many connections does not hold state for every one it ever saw.
// UDP export datagrams cut into IP fragments (RFC 791, RFC 8200 §4.5) are reassembled and decoded whole; a
// real MikroTik IPFIX export (test/fixtures/exports/SOURCES.md) is fragmented here.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  LINKTYPE,
  PROTO,
  TCP,
  eth,
  fragmentExt,
  ipv4,
  ipv6,
  pcapFile,
  tcp,
  udp,
} from '../../test/helpers/packet-builder.js'
import { recordToJson } from '../ipfix/decoder.js'
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

async function readCapture(
  frames: Uint8Array[],
): Promise<{ reader: OfflineReader; outs: DecodeOutput[]; collector: FlowCollector }> {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.pcap`)
  writeFileSync(
    path,
    pcapFile(
      LINKTYPE.ETHERNET,
      frames.map((data) => ({ data })),
    ),
  )
  const outs: DecodeOutput[] = []
  const collector = new FlowCollector()
  const reader = new OfflineReader(collector, (o) => outs.push(o))
  await reader.read([path])
  return { reader, outs, collector }
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

  it('ends the transport session with its templates at a FIN, an RST or a new SYN of the 4-tuple', async () => {
    // Template 256 (destinationTransportPort), then one data record; a second connection on the same 4-tuple
    // sends the data record again: it has no template there (RFC 7011 §8), so it waits (no_template).
    const template = hex('000a 001c 6553f100 00000000 00000001  0002 000c 0100 0001 000b 0002')
    const data = hex('000a 0016 6553f100 00000000 00000001  0100 0006 0050')
    const first = new Uint8Array([...template, ...data])
    const rst = eth(
      {},
      ipv4({ src: '192.0.2.2', dst: '192.0.2.1' }, tcp({ sport: 4739, dport: 5000, flags: TCP.RST })),
    )
    const ends: Record<string, Uint8Array[]> = {
      fin: [segment(5000, first.length, TCP.FIN | TCP.ACK)],
      rst: [rst],
      // No FIN or RST captured: the SYN of the next connection ends the first one.
      syn: [segment(5000, -1, TCP.SYN)],
    }
    for (const [end, frames] of Object.entries(ends)) {
      const { reader, outs, collector } = await readCapture([
        segment(5000, 0, TCP.PSH | TCP.ACK, first),
        segment(5000, first.length, TCP.PSH | TCP.ACK, template.subarray(0, 10)), // left half-read
        ...frames,
        segment(5000, 0, TCP.PSH | TCP.ACK, data),
      ])
      expect(
        outs.map((o) => o.records.length),
        end,
      ).toEqual([0, 1, 0])
      expect(collector.counters['no_template'], end).toBe(1)
      expect(collector.templates.size, end).toBe(0)
      expect(reader.stats.skipped, end).toEqual({ tcp_partial_message_at_close: 1 })
    }
  })
})

const FIXTURES = new URL('../../test/fixtures/exports/', import.meta.url)
/** MikroTik RouterOS IPFIX: templates 258/259 (148 octets), then 28 records of template 258 (1448 octets). */
const TEMPLATES = new Uint8Array(readFileSync(new URL('logstash-mikrotik-tpl.dat', FIXTURES)))
const DATA = new Uint8Array(readFileSync(new URL('logstash-mikrotik-data258.dat', FIXTURES)))

/** A UDP export datagram from 192.0.2.1:2055 to 192.0.2.2:4739 as IPv4 fragments of `size` octets (8·n). */
function fragments4(payload: Uint8Array, size: number, id: number): Uint8Array[] {
  const dgram = udp({ sport: 2055, dport: 4739, payload })
  const out: Uint8Array[] = []
  for (let at = 0; at < dgram.length; at += size) {
    const more = at + size < dgram.length
    const ip = { src: '192.0.2.1', dst: '192.0.2.2', proto: PROTO.UDP, id, mf: more, fragOffset: at }
    out.push(eth({}, ipv4(ip, dgram.subarray(at, at + size))))
  }
  return out
}

/** The same as IPv6 fragments (Fragment header, RFC 8200 §4.5), 2001:db8::1 to 2001:db8::2. */
function fragments6(payload: Uint8Array, size: number, id: number): Uint8Array[] {
  const dgram = udp({ sport: 2055, dport: 4739, payload })
  const out: Uint8Array[] = []
  for (let at = 0; at < dgram.length; at += size) {
    const ext = [fragmentExt({ offset: at, more: at + size < dgram.length, id })]
    out.push(eth({}, ipv6({ proto: PROTO.UDP, ext }, dgram.subarray(at, at + size))))
  }
  return out
}

const records = (outs: DecodeOutput[]): Record<string, unknown>[] =>
  outs.flatMap((o) => o.records.map((r) => recordToJson(r)))

describe('OfflineReader IP fragments of export datagrams', () => {
  it('reassembles a fragmented template datagram and data datagram and decodes them whole', async () => {
    const tpl = fragments4(TEMPLATES, 80, 1)
    const data = fragments4(DATA, 512, 2)
    expect([tpl.length, data.length]).toEqual([2, 3])
    const { reader, outs } = await readCapture([...tpl, ...data])
    const recs = records(outs)
    expect(recs).toHaveLength(28)
    // The upstream golden's first event (logstash netflow_spec.rb, "IPFIX Mikrotik RouterOS 6.39.2").
    expect(recs[0]).toMatchObject({
      sourceIPv4Address: '10.10.8.197',
      destinationTransportPort: 123,
      octetDeltaCount: 152,
    })
    expect(reader.stats).toMatchObject({ fragments: 5, reassembled: 2, datagrams: 2, skipped: {} })
  })

  it('takes fragments in any order, interleaved with another datagram, over IPv4 and IPv6', async () => {
    const tpl = fragments4(TEMPLATES, 80, 1)
    const data = fragments4(DATA, 512, 2).reverse() // the last fragment first, the first one last
    const frames = [data[0]!, tpl[1]!, data[1]!, tpl[0]!, data[2]!]
    const { reader, outs } = await readCapture(frames)
    expect(records(outs)).toHaveLength(28)
    expect(reader.stats).toMatchObject({ fragments: 5, reassembled: 2, skipped: {} })

    const v6 = await readCapture([...fragments6(TEMPLATES, 96, 7), ...fragments6(DATA, 600, 8).reverse()])
    expect(records(v6.outs)).toHaveLength(28)
    expect(v6.outs[0]!.records).toHaveLength(0) // the template message
    expect(v6.reader.stats).toMatchObject({ fragments: 2 + 3, reassembled: 2, skipped: {} })
  })

  it('counts a datagram whose fragment is missing and decodes the datagrams around it', async () => {
    const tpl = fragments4(TEMPLATES, 80, 1)
    const lost = fragments4(DATA, 512, 2)
    const again = fragments4(DATA, 512, 3)
    // Datagram 2 lacks its middle fragment; datagram 3 (a repeat of the data) comes whole, in fragments.
    const { reader, outs } = await readCapture([...tpl, lost[0]!, lost[2]!, ...again])
    expect(records(outs)).toHaveLength(28)
    expect(reader.stats.reassembled).toBe(2)
    expect(reader.stats.skipped).toEqual({ ip_reassembly_timeout: 1 })
  })
})
