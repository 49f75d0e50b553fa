// The offline probe's export clock before the first packet (export-setup.ts): the messages sent before any
// packet is metered (templates, RFC 5610 and RFC 6759 options records, the first statistics) carry the
// first packet's time as Export Time (RFC 7011 §3.1), not 0 (1970), with one thread and with workers; the
// statistics' observation times are never 0 either.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { IpfixDecoder } from '../ipfix/decoder.js'
import { MemoryTransport } from '../ipfix/testing.js'
import { REPO_ROOT } from '../../test/helpers/shared.js'
import { DEFAULT_PROBE_OPTIONS, runProbe } from './probe.js'
import { runProbeWorkers } from './workers/probe-workers.js'

const CAPTURE = join(REPO_ROOT, 'test/fixtures/pcap/interop/ipfixprobe-dns.pcap')
/** The capture's first and last packet (ms since the epoch; tshark -T fields -e frame.time_epoch). */
const FIRST_PACKET_MS = 1460049092478
const LAST_PACKET_MS = 1460049092878

async function exportTimes(workers: number): Promise<{ exportTimes: number[]; observationMs: number[] }> {
  const wire = new MemoryTransport('wire', true)
  const opts = {
    ...DEFAULT_PROBE_OPTIONS,
    reads: [CAPTURE],
    destinations: [],
    // The catalogue's options records fill several messages before the first packet is metered.
    fields: ['default', 'app'],
    extraTransports: [wire],
  }
  if (workers === 0) await runProbe(opts)
  else await runProbeWorkers({ ...opts, workers })
  const decoder = new IpfixDecoder({ transport: 'udp' })
  const out = { exportTimes: [] as number[], observationMs: [] as number[] }
  for (const m of wire.messages) {
    const d = decoder.decode(m)
    out.exportTimes.push(d.exportTime)
    for (const r of d.records)
      for (const f of r.fields)
        if (f.name === 'observationTimeMilliseconds') out.observationMs.push(Number(f.value))
  }
  return out
}

describe('offline export time', () => {
  for (const workers of [0, 2])
    it(`is the capture's time from the first message on, never 0 (${workers === 0 ? 'one thread' : '2 workers'})`, async () => {
      const t = await exportTimes(workers)
      expect(t.exportTimes.length).toBeGreaterThan(3)
      // Export Time is in whole seconds: the capture lasts less than one.
      expect(new Set(t.exportTimes)).toEqual(new Set([Math.floor(FIRST_PACKET_MS / 1000)]))
      // Nothing was ignored nor dropped: the statistics cover the exporter's start (first packet) to now.
      expect(t.observationMs.length).toBeGreaterThan(0)
      for (const ms of t.observationMs) {
        expect(ms).toBeGreaterThanOrEqual(FIRST_PACKET_MS)
        expect(ms).toBeLessThanOrEqual(LAST_PACKET_MS)
      }
    })
})
