// NetFlow v9 / v5 export (transport-netflow.ts) end to end: the probe over the repo's interop captures
// exports IPFIX in process (the reference records) and NetFlow over loopback UDP to our own collector
// (collector/netflow-v9.ts, netflow-v5.ts). Every biflow must come back as its forward flow plus, when it
// has packets, its reverse flow, with addresses, ports, protocol, packets, bytes and millisecond times intact;
// headers must carry sequence numbers without gaps and the uptime base of the first packet.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { FlowCollector, type CollectedRecord } from '../collector/decode-message.js'
import { listen } from '../collector/listener.js'
import { runProbe, DEFAULT_PROBE_OPTIONS, type ProbeSummary } from '../probe/probe.js'
import { IpfixDecoder, recordToJson } from './decoder.js'
import { putIpv6, splitRecord } from './netflow-flows.js'
import { MemoryTransport } from './testing.js'
import { NetflowTransport } from './transport-netflow.js'
import { REPO_ROOT } from '../../test/helpers/shared.js'

const captures = path.join(REPO_ROOT, 'test/fixtures/pcap/interop')

type Row = Record<string, unknown>

/** The unidirectional flows a biflow record must become, as comparable strings. */
function expectedFlows(r: Row): string[] {
  const src = (r['sourceIPv4Address'] ?? r['sourceIPv6Address']) as string
  const dst = (r['destinationIPv4Address'] ?? r['destinationIPv6Address']) as string
  const times = `${String(r['flowStartMilliseconds'])}..${String(r['flowEndMilliseconds'])}`
  const proto = Number(r['protocolIdentifier'])
  const sp = Number(r['sourceTransportPort'] ?? 0)
  const dp = Number(r['destinationTransportPort'] ?? 0)
  const out: string[] = []
  if (Number(r['packetDeltaCount']) > 0)
    out.push(key(src, sp, dst, dp, proto, r['packetDeltaCount'], r['octetDeltaCount'], times))
  if (Number(r['reversePacketDeltaCount'] ?? 0) > 0)
    out.push(key(dst, dp, src, sp, proto, r['reversePacketDeltaCount'], r['reverseOctetDeltaCount'], times))
  return out
}

function key(
  s: string,
  sp: number,
  d: string,
  dp: number,
  p: number,
  pk: unknown,
  by: unknown,
  t: string,
): string {
  return `${p} ${s}:${sp} > ${d}:${dp} ${Number(pk)}p ${Number(by)}B ${t}`
}

function collectedFlow(r: Row, v5: boolean): string {
  const src = (r['sourceIPv4Address'] ?? r['sourceIPv6Address']) as string
  const dst = (r['destinationIPv4Address'] ?? r['destinationIPv6Address']) as string
  const proto = Number(r['protocolIdentifier'])
  // v5 carries ICMP type/code in the destination port (and the source port as 0), as Cisco exporters do.
  const dp = v5 && proto === 1 ? 0 : Number(r['destinationTransportPort'])
  const times = `${String(r['flowStartMilliseconds'])}..${String(r['flowEndMilliseconds'])}`
  return key(
    src,
    Number(r['sourceTransportPort']),
    dst,
    dp,
    proto,
    r['packetDeltaCount'],
    r['octetDeltaCount'],
    times,
  )
}

const until = async (cond: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for datagrams')
    await new Promise((r) => setTimeout(r, 10))
  }
}

interface RoundTrip {
  summary: ProbeSummary
  ipfix: Row[]
  collected: CollectedRecord[]
  datagrams: Buffer[]
  col: FlowCollector
}

async function roundTrip(
  file: string,
  protocol: 'netflow-v9' | 'netflow-v5',
  mtu = 1500,
): Promise<RoundTrip> {
  const col = new FlowCollector()
  const collected: CollectedRecord[] = []
  const datagrams: Buffer[] = []
  const l = await listen({ protocol: 'udp', host: '127.0.0.1', port: 0 }, col, (o) =>
    collected.push(...o.records),
  )
  // A second NetFlow destination, a plain UDP socket, keeps the raw datagrams (headers, sizes).
  const raw = await import('node:dgram').then((d) => d.createSocket('udp4'))
  await new Promise<void>((r) => raw.bind(0, '127.0.0.1', r))
  raw.on('message', (m) => datagrams.push(m))
  const mem = new MemoryTransport()
  try {
    const summary = await runProbe({
      ...DEFAULT_PROBE_OPTIONS,
      mtu,
      observationDomainId: 77,
      reads: [path.join(captures, file)],
      destinations: [
        { kind: 'udp', host: '127.0.0.1', port: l.port, protocol },
        { kind: 'udp', host: '127.0.0.1', port: raw.address().port, protocol },
      ],
      extraTransports: [mem],
    })
    const sent = Object.values(summary.netflow ?? {})[0]?.packets ?? -1
    await until(() => datagrams.length >= sent && (l.counters['datagrams'] ?? 0) >= sent)
    const dec = new IpfixDecoder({ transport: 'file' })
    const ipfix = mem.messages.flatMap((m) =>
      dec
        .decode(m)
        .records.filter((r) => !r.isOptions)
        .map((r) => recordToJson(r)),
    )
    return { summary, ipfix, collected, datagrams, col }
  } finally {
    raw.close()
    await l.close()
  }
}

describe.skipIf(!existsSync(captures))('NetFlow v9 export round trip through our collector', () => {
  it.each(['ipfixprobe-smtp.pcap', 'arkime-http-simple-get.pcap', 'ipfixprobe-dns.pcap', 'arkime-v6.pcap'])(
    '%s: every biflow comes back as forward + reverse flows',
    async (file) => {
      const t = await roundTrip(file, 'netflow-v9')
      const want = t.ipfix.flatMap(expectedFlows).sort()
      const got = t.collected.filter((r) => !r.isOptions).map((r) => collectedFlow(recordToJson(r), false))
      expect(got.sort()).toEqual(want)
      expect(want.length).toBeGreaterThan(t.ipfix.length) // some biflows were split in two
      expect(t.collected.every((r) => r.version === 9 && r.odid === 77)).toBe(true)
      // Package sequence counts packets (template packets too), from 0 with no gap.
      expect(t.datagrams.map((d) => d.readUInt32BE(12))).toEqual(t.datagrams.map((_, i) => i))
      expect(t.datagrams.every((d) => d.readUInt16BE(0) === 9 && d.length <= 1472)).toBe(true)
      const counters = t.col.allCounters()
      expect(counters['no_template'] ?? 0).toBe(0)
      const report = Object.values(t.summary.netflow ?? {})[0]
      expect(report?.anomalies).toEqual({})
      // The exporter statistics are re-stated for the v9 stream in options records (scope System).
      const stats = t.collected.filter((r) => r.isOptions).map((r) => recordToJson(r))
      expect(stats.length).toBeGreaterThan(0)
      expect(stats.at(-1)?.['exportedFlowRecordTotalCount']).toBe(want.length)
      expect(report?.flows).toBe(want.length)
    },
  )

  it('sysUpTime counts from the first packet of the capture (whole second), FIRST_SWITCHED follows', async () => {
    const t = await roundTrip('ipfixprobe-smtp.pcap', 'netflow-v9')
    const starts = t.ipfix.map((r) => Date.parse(String(r['flowStartMilliseconds'])))
    const firstPacket = Math.min(...starts)
    const boot = Math.floor(firstPacket / 1000) * 1000
    for (const d of t.datagrams) expect(d.readUInt32BE(8) * 1000 - d.readUInt32BE(4)).toBe(boot)
    const first = t.collected
      .filter((r) => !r.isOptions)
      .map((r) => Number(recordToJson(r)['flowStartSysUpTime']))
    expect(Math.min(...first)).toBe(firstPacket - boot)
  })

  it('a small MTU gives more, smaller packets and still every flow', async () => {
    const big = await roundTrip('arkime-v6.pcap', 'netflow-v9')
    const small = await roundTrip('arkime-v6.pcap', 'netflow-v9', 576)
    expect(small.datagrams.every((d) => d.length <= 576 - 28)).toBe(true)
    expect(small.datagrams.length).toBeGreaterThan(big.datagrams.length)
    expect(small.collected.length).toBe(big.collected.length)
  })
})

describe.skipIf(!existsSync(captures))('NetFlow v5 export round trip through our collector', () => {
  it.each(['ipfixprobe-smtp.pcap', 'arkime-http-simple-get.pcap', 'ipfixprobe-dns.pcap'])(
    '%s: every IPv4 biflow comes back as forward + reverse flows',
    async (file) => {
      const t = await roundTrip(file, 'netflow-v5')
      const want = t.ipfix.flatMap(expectedFlows).sort()
      const got = t.collected.map((r) => collectedFlow(recordToJson(r), true))
      expect(got.sort()).toEqual(want)
      // flow_sequence = flows sent before the datagram; at most 30 records each.
      let flows = 0
      for (const d of t.datagrams) {
        expect(d.readUInt16BE(0)).toBe(5)
        expect(d.readUInt32BE(16)).toBe(flows)
        expect(d.readUInt16BE(2)).toBeLessThanOrEqual(30)
        expect(d.readUInt8(21)).toBe(77) // engine id = observation domain (low 8 bits)
        flows += d.readUInt16BE(2)
      }
      expect(flows).toBe(want.length)
    },
  )

  it('IPv6 flows are not exportable in v5: counted in the summary, nothing sent', async () => {
    const t = await roundTrip('arkime-v6.pcap', 'netflow-v5')
    const r = Object.values(t.summary.netflow ?? {})[0]
    const want = t.ipfix.flatMap(expectedFlows).length
    expect(r?.notExportable['ipv6_flows']).toBe(want)
    expect(r?.flows).toBe(0)
    expect(t.collected).toHaveLength(0)
  })

  it('v5 clamps what does not fit and counts it', async () => {
    const { V5Writer } = await import('./netflow-v5-writer.js')
    const w = new V5Writer(1472)
    const out: Buffer[] = []
    const values = new Map<number, unknown>([
      [8, '10.0.0.1'],
      [12, '10.0.0.2'],
      [4, 6],
      [2, 2n ** 33n],
      [1, 5n],
      [10, 70000],
    ]) as Map<number, import('./decoder.js').FieldValue>
    const clock = { unixSecs: 100, sysUptime: 5000, uptimeOf: (ms: number) => ms - 95_000 }
    w.write([{ values, startMs: 96_000, endMs: 99_000, reverse: false }], clock, 3, (p) => out.push(p))
    expect(out).toHaveLength(1)
    const d = out[0]!
    expect(d.readUInt32BE(24 + 16)).toBe(0xffffffff) // dPkts saturated
    expect(d.readUInt16BE(24 + 12)).toBe(70000 & 0xffff) // input ifindex truncated to 16 bits
    expect(d.readUInt32BE(24 + 24)).toBe(1000) // First
    expect(w.counters).toEqual({ saturated_packets: 1, truncated_input_interface: 1 })
  })
})

describe('NetFlow uptime base', () => {
  it('moves back for an earlier flow within 2^31 ms; counts flows it cannot express', async () => {
    const { IpfixExporter } = await import('./exporter.js')
    const { Template } = await import('./template.js')
    const tpl = Template.fromNames(256, [
      ['sourceIPv4Address'],
      ['destinationIPv4Address'],
      ['packetDeltaCount'],
      ['octetDeltaCount'],
      ['flowStartMilliseconds'],
      ['flowEndMilliseconds'],
    ])
    const sent: Buffer[] = []
    const inner = new MemoryTransport()
    inner.send = (m) => void sent.push(Buffer.concat(m))
    const T = 1_700_000_000_000
    let now = T / 1000
    const nf = new NetflowTransport(inner, { version: 9, maxPacketSize: 1472, startTimeMs: () => T })
    const e = new IpfixExporter(
      {
        observationDomainId: 1,
        maxMessageSize: 1472,
        templateRefreshSeconds: 600,
        templateRefreshMessages: 0,
        statsIntervalSeconds: 0,
        now: () => now,
      },
      [nf],
    )
    e.addTemplate(tpl)
    const add = (i: number, start: number): void => {
      const w = e.beginRecord(tpl, tpl.fixedLength)
      w.ipv4(0x0a000000 + i)
      w.ipv4(0x0a0000ff)
      w.u64(1)
      w.u64(100)
      w.dateTimeMs(start)
      w.dateTimeMs(start + 500)
      e.endRecord()
      e.flush()
    }
    now = T / 1000 + 10
    add(1, T + 2_000)
    add(2, T - 3_600_250) // an hour before the first packet: the base moves back
    now = T / 1000 + 20
    add(3, T - 60 * 86_400_000) // 60 days before: not expressible
    await e.close()
    const col = new FlowCollector()
    const KEY = {
      exporterAddress: '::1',
      exporterPort: 1,
      collectorAddress: '::1',
      collectorPort: 2,
      protocol: 'udp' as const,
    }
    const got = sent.flatMap((p) => col.decode(p, KEY).records.map((r) => recordToJson(r)))
    const startOf = (ip: string): unknown =>
      got.find((r) => r['sourceIPv4Address'] === ip)?.['flowStartMilliseconds']
    expect(startOf('10.0.0.1')).toBe(new Date(T + 2_000).toISOString())
    expect(startOf('10.0.0.2')).toBe(new Date(T - 3_600_250).toISOString())
    expect(got).toHaveLength(3)
    expect(nf.report().anomalies).toEqual({ flows_before_start: 1 })
  })
})

describe('NetFlow conversion details', () => {
  it('encodes IPv6 text forms to 16 octets', () => {
    const b = Buffer.alloc(16)
    const hexOf = (t: string): string => {
      putIpv6(b, 0, t)
      return b.toString('hex')
    }
    expect(hexOf('2001:db8::1')).toBe('20010db8000000000000000000000001')
    expect(hexOf('::')).toBe('0'.repeat(32))
    expect(hexOf('::ffff:192.0.2.1')).toBe('00000000000000000000ffffc0000201')
    expect(hexOf('fe80::1:2:3:4')).toBe('fe800000000000000001000200030004')
    expect(hexOf('1:2:3:4:5:6:7:8')).toBe('00010002000300040005000600070008')
  })

  it('splits a biflow: reverse swaps the key, takes reverse counters, skips a reverse without packets', () => {
    const f = (pen: number, id: number, name: string, value: import('./decoder.js').FieldValue) => ({
      pen,
      id,
      name,
      type: 'unsigned64' as const,
      value,
    })
    const base = [
      f(0, 8, 'sourceIPv4Address', '10.0.0.1'),
      f(0, 12, 'destinationIPv4Address', '10.0.0.2'),
      f(0, 7, 'sourceTransportPort', 1234),
      f(0, 11, 'destinationTransportPort', 80),
      f(0, 4, 'protocolIdentifier', 6),
      f(0, 2, 'packetDeltaCount', 3n),
      f(0, 1, 'octetDeltaCount', 300n),
      f(0, 152, 'flowStartMilliseconds', 1000n),
      f(0, 153, 'flowEndMilliseconds', 2000n),
      f(0, 136, 'flowEndReason', 3),
      f(0, 10, 'ingressInterface', 4),
    ]
    const rec = (extra: ReturnType<typeof f>[]) => ({
      odid: 1,
      templateId: 256,
      isOptions: false,
      scopeCount: 0,
      fields: [...base, ...extra],
    })
    const dropped: string[] = []
    const both = splitRecord(
      rec([f(29305, 2, 'reversePacketDeltaCount', 2n), f(29305, 1, 'reverseOctetDeltaCount', 120n)]),
      (n) => dropped.push(n),
    )
    expect(both.flows).toHaveLength(2)
    const [fw, rv] = both.flows
    expect(Object.fromEntries(rv!.values)).toEqual({
      8: '10.0.0.2',
      12: '10.0.0.1',
      7: 80,
      11: 1234,
      4: 6,
      2: 2n,
      1: 120n,
      10: 4,
    })
    expect(fw!.values.get(2)).toBe(3n)
    expect(rv!.startMs).toBe(1000)
    expect(rv!.endMs).toBe(2000)
    expect(dropped).toEqual(['flowEndReason'])
    const one = splitRecord(rec([f(29305, 2, 'reversePacketDeltaCount', 0n)]), () => {})
    expect(one.flows.map((x) => x.reverse)).toEqual([false])
    expect(splitRecord({ ...rec([]), fields: base.slice(2) }, () => {}).skipped).toBe('no_ip_addresses')
  })
})
