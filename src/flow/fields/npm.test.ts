// Unit tests of the `npm`, `tcpext` and `arp` field groups on crafted captures run through the probe:
// handshake RTT split, SRT on HTTP and DNS exchanges, jitter/delay (zero on a constant-rate stream, a known
// value on a jittered one), retransmission / out-of-order / keep-alive / window-update classification as
// Wireshark does it, SYN options, and ARP records.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  ETH,
  LINKTYPE,
  PROTO,
  TCP,
  arp,
  eth,
  hex,
  ipv4,
  pcapFile,
  tcp,
  udp,
} from '../../../test/helpers/packet-builder.js'
import { probeRecords, type JsonRecord } from '../../../test/helpers/probe-run.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-npm-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const T0 = 1_700_000_000_000_000
const C = '10.0.0.1'
const S = '10.0.0.2'

interface Pkt {
  t: number // µs after T0
  data: Uint8Array
}

/** A TCP packet client→server (`up`) or server→client. */
function tp(
  t: number,
  up: boolean,
  o: {
    seq: number
    ack?: number
    flags?: number
    len?: number
    window?: number
    options?: Uint8Array
    ttl?: number
  },
): Pkt {
  const seg = tcp({
    sport: up ? 40000 : 80,
    dport: up ? 80 : 40000,
    seq: o.seq,
    ack: o.ack ?? 0,
    flags: o.flags ?? TCP.ACK,
    window: o.window ?? 1000,
    ...(o.options !== undefined ? { options: o.options } : {}),
    payload: new Uint8Array(o.len ?? 0),
  })
  return { t, data: eth({}, ipv4({ src: up ? C : S, dst: up ? S : C, ttl: o.ttl ?? (up ? 64 : 60) }, seg)) }
}

async function run(name: string, pkts: Pkt[], fields = ['core', 'npm', 'tcpext']): Promise<JsonRecord[]> {
  const file = join(dir, `${name}.pcap`)
  writeFileSync(
    file,
    pcapFile(
      LINKTYPE.ETHERNET,
      pkts.map((p) => ({ data: p.data, tsUs: T0 + p.t })),
    ),
  )
  return (await probeRecords([file], { fields })).records
}

const SYN = TCP.SYN
const SA = TCP.SYN | TCP.ACK
const A = TCP.ACK
const PA = TCP.PSH | TCP.ACK

/** Handshake at t=0 (SYN), 1000 (SYN/ACK), 1300 (ACK): server part 1000 µs, client part 300 µs. */
function handshake(): Pkt[] {
  return [
    tp(0, true, {
      seq: 100,
      flags: SYN,
      window: 64240,
      options: hex('02 04 05 b4 04 02 01 03 03 07'),
      ttl: 64,
    }),
    tp(1000, false, {
      seq: 500,
      ack: 101,
      flags: SA,
      window: 65160,
      options: hex('02 04 05 78 01 03 03 02'),
    }),
    tp(1300, true, { seq: 101, ack: 501 }),
  ]
}

describe('npm: handshake RTT and SRT', () => {
  it('splits the handshake and measures SRT on HTTP-like exchanges', async () => {
    const pkts = [
      ...handshake(),
      // request 1: two segments, ends at 2100; response at 7100 → SRT 5000
      tp(2000, true, { seq: 101, ack: 501, flags: A, len: 100 }),
      tp(2100, true, { seq: 201, ack: 501, flags: PA, len: 50 }),
      tp(7100, false, { seq: 501, ack: 251, flags: PA, len: 400 }),
      tp(7200, true, { seq: 251, ack: 901 }),
      // request 2 at 10000, response at 13000 → SRT 3000
      tp(10000, true, { seq: 251, ack: 901, flags: PA, len: 80 }),
      tp(13000, false, { seq: 901, ack: 331, flags: PA, len: 200 }),
      tp(13500, true, { seq: 331, ack: 1101 }),
    ]
    const [r] = await run('http', pkts)
    expect(r).toBeDefined()
    expect(r!['npnRoundTripTime']).toBe(1300)
    expect(r!['flowtelTcpRttServer']).toBe(1000)
    expect(r!['flowtelTcpRttClient']).toBe(300)
    expect(r!['npmServerResponseTime']).toBe(4000)
    expect(r!['flowtelSrtMin']).toBe(3000)
    expect(r!['flowtelSrtMax']).toBe(5000)
    expect(r!['flowtelSrtCount']).toBe(2)
    // Continuous RTT: data 2000→ack 7100 (first segment is the sample; its ACK arrives with the response).
    expect(r!['flowtelTcpRttServerCount']).toBe(2)
    expect(r!['flowtelTcpRttServerMin']).toBe(3000)
    expect(r!['flowtelTcpRttServerMax']).toBe(5100)
    // Responder data 7100 acked at 7200, 13000 acked at 13500.
    expect(r!['flowtelTcpRttClientCount']).toBe(2)
    expect(r!['flowtelTcpRttClientMin']).toBe(100)
    expect(r!['flowtelTcpRttClientMax']).toBe(500)
    expect(r!['npmTcpRetransmission']).toBe(0)
    expect(r!['npmTcpOutOfOrder']).toBe(0)
  })

  it('measures DNS over UDP query to response, matching the ID', async () => {
    const q = (id: number): Uint8Array => hex(`${id.toString(16).padStart(4, '0')} 0100 0001 0000 0000 0000`)
    const resp = (id: number): Uint8Array =>
      hex(`${id.toString(16).padStart(4, '0')} 8180 0001 0001 0000 0000`)
    const pkt = (t: number, up: boolean, payload: Uint8Array): Pkt => ({
      t,
      data: eth(
        {},
        ipv4(
          { src: up ? C : S, dst: up ? S : C, proto: PROTO.UDP },
          udp({ sport: up ? 5353 : 53, dport: up ? 53 : 5353, payload }),
        ),
      ),
    })
    const recs = await run('dns', [
      pkt(0, true, q(0x1234)),
      pkt(100, true, q(0x1235)), // a second query while the first is outstanding is not tracked
      pkt(2500, false, resp(0x1235)), // not the outstanding ID
      pkt(3000, false, resp(0x1234)), // → 3000
      pkt(10000, true, q(0x2000)),
      pkt(11000, false, resp(0x2000)), // → 1000
    ])
    const r = recs.find((x) => x['protocolIdentifier'] === 17)
    expect(r!['flowtelSrtCount']).toBe(2)
    expect(r!['flowtelSrtMin']).toBe(1000)
    expect(r!['flowtelSrtMax']).toBe(3000)
    expect(r!['npmServerResponseTime']).toBe(2000)
    expect(r!['npnRoundTripTime']).toBe(0)
  })
})

describe('npm: jitter and delay', () => {
  const stream = (times: number[]): Pkt[] =>
    times.map((t) => ({
      t,
      data: eth(
        {},
        ipv4(
          { src: C, dst: S, proto: PROTO.UDP },
          udp({ sport: 5004, dport: 5004, payload: new Uint8Array(160) }),
        ),
      ),
    }))

  it('is zero on a constant-rate stream', async () => {
    const [r] = await run('cbr', stream(Array.from({ length: 50 }, (_, i) => i * 20000)))
    expect(r!['npmJitterAvg']).toBe(0)
    expect(r!['npmJitterMax']).toBe(0)
    expect(r!['npmJitterDev']).toBe(0)
    expect(r!['npmDelayAvg']).toBe(20000)
    expect(r!['npmDelayMin']).toBe(20000)
    expect(r!['npmDelayMax']).toBe(20000)
    expect(r!['npmDelayDev']).toBe(0)
  })

  it('has the RFC 3550 value on an alternating 10/30 ms stream', async () => {
    // Inter-arrival times alternate 10 ms and 30 ms: |D| = 20 ms every time after the first, so after
    // n = packets - 2 samples J = 20000 · (1 - (15/16)^n) (RFC 3550 §6.4.1 with J0 = 0).
    const times: number[] = [0]
    for (let i = 1; i < 40; i++) times.push(times[i - 1]! + (i % 2 === 1 ? 10000 : 30000))
    const [r] = await run('jitter', stream(times))
    const n = times.length - 2
    expect(r!['npmJitterAvg']).toBe(Math.round(20000 * (1 - (15 / 16) ** n)))
    expect(r!['npmJitterMin']).toBe(20000)
    expect(r!['npmJitterMax']).toBe(20000)
    expect(r!['npmJitterDev']).toBe(0)
    expect(r!['npmDelayMin']).toBe(10000)
    expect(r!['npmDelayMax']).toBe(30000)
    // 39 gaps: 20 of 10 ms and 19 of 30 ms.
    expect(r!['npmDelayAvg']).toBe(Math.round((20 * 10000 + 19 * 30000) / 39))
    expect(r!['flowtelReverseJitterAvg']).toBe(0)
  })
})

describe('npm: retransmission and out-of-order (Wireshark tcp.analysis rules)', () => {
  it('classifies retransmissions, fast retransmissions and out-of-order segments per direction', async () => {
    const pkts = [
      ...handshake(), // initial RTT 1300 µs is the out-of-order threshold
      tp(2000, true, { seq: 101, ack: 501, len: 100 }),
      tp(2010, true, { seq: 201, ack: 501, len: 100 }),
      tp(2020, true, { seq: 301, ack: 501, len: 100 }),
      // a hole filled 100 µs later: out-of-order (100 bytes)
      tp(2120, true, { seq: 151, ack: 501, len: 50 }),
      tp(3000, false, { seq: 501, ack: 401 }),
      // 1 s later the same data again: retransmission (100 bytes)
      tp(1_003_000, true, { seq: 301, ack: 501, len: 100 }),
      // three duplicate ACKs for 401 then a fast retransmission of 401
      tp(1_004_000, true, { seq: 401, ack: 501, len: 100 }),
      tp(1_005_000, true, { seq: 501, ack: 501, len: 100 }),
      tp(1_006_000, false, { seq: 501, ack: 401 }),
      tp(1_006_100, false, { seq: 501, ack: 401 }),
      tp(1_006_200, false, { seq: 501, ack: 401 }),
      tp(1_006_300, true, { seq: 401, ack: 501, len: 100 }),
      // server data retransmitted after 2 s
      tp(1_010_000, false, { seq: 501, ack: 601, len: 10 }),
      tp(3_010_000, false, { seq: 501, ack: 601, len: 10 }),
    ]
    const [r] = await run('retrans', pkts)
    expect(r!['flowtelOutOfOrderPackets']).toBe(1)
    expect(r!['flowtelOutOfOrderOctets']).toBe(50)
    expect(r!['flowtelRetransPackets']).toBe(2)
    expect(r!['flowtelRetransOctets']).toBe(200)
    expect(r!['flowtelReverseRetransPackets']).toBe(1)
    expect(r!['flowtelReverseRetransOctets']).toBe(10)
    expect(r!['npmTcpRetransmission']).toBe(3)
    expect(r!['npmTcpOutOfOrder']).toBe(1)
  })

  it('does not count keep-alives, zero-window probes or window updates', async () => {
    const pkts = [
      ...handshake(),
      tp(2000, true, { seq: 101, ack: 501, len: 100 }),
      tp(3000, false, { seq: 501, ack: 201, window: 0 }), // zero window
      tp(1_000_000, true, { seq: 201, ack: 501, len: 1 }), // zero-window probe
      tp(1_000_100, false, { seq: 501, ack: 201, window: 0 }),
      tp(2_000_000, false, { seq: 501, ack: 201, window: 5000 }), // window update
      tp(3_000_000, true, { seq: 201, ack: 501, len: 100 }), // the real data
      tp(3_001_000, false, { seq: 501, ack: 301 }),
      tp(60_000_000, true, { seq: 300, ack: 501, len: 0 }), // keep-alive (seq = nextseq - 1)
      tp(60_001_000, false, { seq: 501, ack: 301 }), // keep-alive ACK
      tp(70_000_000, true, { seq: 300, ack: 501, len: 1 }), // keep-alive with one garbage byte
    ]
    const [r] = await run('keepalive', pkts)
    expect(r!['npmTcpRetransmission']).toBe(0)
    expect(r!['npmTcpOutOfOrder']).toBe(0)
  })
})

describe('tcpext: SYN facts and options', () => {
  it('reads TTL, size, windows, MSS, window scale, SACK and the options bitmap', async () => {
    const [r] = await run('tcpext', [...handshake(), tp(2000, true, { seq: 101, ack: 501, len: 10 })])
    expect(r!['tcpSynTtl']).toBe(64)
    expect(r!['tcpSynSize']).toBe(20 + 20 + 12) // IP + TCP + 10 option octets padded to 12
    expect(r!['flowtelTcpSynAckTtl']).toBe(60)
    expect(r!['flowtelTcpInitialWindow']).toBe(64240)
    expect(r!['flowtelReverseTcpInitialWindow']).toBe(65160)
    expect(r!['flowtelTcpMss']).toBe(1460)
    expect(r!['flowtelReverseTcpMss']).toBe(1400)
    expect(r!['flowtelTcpWindowScale']).toBe(7)
    expect(r!['flowtelReverseTcpWindowScale']).toBe(2)
    expect(r!['flowtelTcpSackPermitted']).toBe(true)
    expect(r!['flowtelReverseTcpSackPermitted']).toBe(false)
    // Kinds seen: SYN 2, 4, 1, 3 (and 0 from padding is end-of-list, not recorded); SYN/ACK 2, 1, 3.
    expect(r!['tcpOptions']).toBe((1 << 1) | (1 << 2) | (1 << 3) | (1 << 4))
    expect(r!['reverseTcpOptions']).toBe((1 << 1) | (1 << 2) | (1 << 3))
  })

  it('stops at a bad option length without reading past the header', async () => {
    const [r] = await run('badopt', [
      tp(0, true, { seq: 1, flags: SYN, options: hex('02 04 05 b4 08 ff 00 00') }),
      tp(100, false, { seq: 9, ack: 2, flags: SA, options: hex('03 01') }),
    ])
    expect(r!['flowtelTcpMss']).toBe(1460)
    expect(r!['tcpOptions']).toBe((1 << 2) | (1 << 8))
    expect(r!['flowtelReverseTcpWindowScale']).toBe(255)
    expect(r!['flowtelReverseTcpMss']).toBe(0)
  })
})

describe('arp: one record per ARP packet', () => {
  it('writes opcode, hardware type and sender/target MAC and IP; off by default', async () => {
    const req = eth(
      { src: '02:00:00:00:00:01', dst: 'ff:ff:ff:ff:ff:ff', type: ETH.ARP },
      arp({ senderIp: '10.0.0.1', targetIp: '10.0.0.9' }),
    )
    const reply = eth(
      { src: '02:00:00:00:00:09', dst: '02:00:00:00:00:01', type: ETH.ARP },
      arp({ senderIp: '10.0.0.9', targetIp: '10.0.0.1' }),
    )
    reply[14 + 7] = 2 // opcode reply
    const pkts = [
      { t: 0, data: req },
      { t: 500, data: reply },
      { t: 600, data: req.slice(0, 14 + 6) }, // truncated: no record
    ]
    const recs = await run('arp', pkts, ['core', 'arp'])
    const arps = recs.filter((x) => 'arpOp' in x)
    expect(arps).toHaveLength(2)
    expect(arps[0]).toMatchObject({
      arpHrd: 1,
      arpOp: 1,
      sourceMacAddress: '02:00:00:00:00:01',
      destinationMacAddress: 'ff:ff:ff:ff:ff:ff',
      flowtelArpSenderMac: '02:00:00:00:00:01',
      flowtelArpSenderIPv4: '10.0.0.1',
      flowtelArpTargetIPv4: '10.0.0.9',
    })
    expect(arps[1]).toMatchObject({
      arpOp: 2,
      flowtelArpSenderIPv4: '10.0.0.9',
      flowtelArpTargetIPv4: '10.0.0.1',
    })
    const off = await run('arp-off', pkts, ['core'])
    expect(off.filter((x) => 'arpOp' in x)).toHaveLength(0)
  })
})
