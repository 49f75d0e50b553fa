/**
 * The native UDP exporter socket (native/pcap/src/udp_socket.cc) when its send buffer stays full: it waits
 * for room at most 100 ms per burst, then drops the rest of the burst and counts it (src/ipfix/udp-socket.ts).
 *
 * Loopback never fills a UDP send buffer (it frees each datagram at once), so the datagrams leave through a
 * veth whose queue (tbf) drains at 64 kbit/s: the datagrams waiting there are charged to the socket, which
 * soon has no room. The far end has no address and the next hop a made-up MAC, so nothing answers (no ICMP
 * errors), IPv6 is off so the queue carries nothing else, and nothing leaves the namespaces. The kernel's own count of what the socket handed to the queue
 * (sent + waiting + dropped by the queue) must equal what the transport says it sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pcapAddonAvailable } from '../../src/capture/pcap-addon.js'
import { NetnsPair, netnsSkipReason, spawnNodeInNetns } from '../helpers/netns.js'

const skip = netnsSkipReason() ?? (pcapAddonAvailable() ? null : 'the native addon is not built')
const MESSAGES = 640
const SIZE = 1400

interface ChildStats {
  native: boolean
  messages: number
  octets: number
  errors: number
  dropped: number
}

interface QdiscStats {
  kind: string
  packets: number
  drops: number
  qlen: number
}

describe.skipIf(skip !== null)('native UDP socket with a full send buffer', () => {
  const ns = new NetnsPair()
  let dev = ''

  beforeAll(async () => {
    await ns.create()
    // No IPv6 on the link: its neighbour discovery and MLD packets would pass the queue too and be counted.
    await ns.exec(ns.a, 'sysctl', [
      '-qw',
      'net.ipv6.conf.all.disable_ipv6=1',
      'net.ipv6.conf.default.disable_ipv6=1',
    ])
    await ns.veth(0, '10.77.0.1/24', '')
    dev = ns.ifname('a', 0)
    await ns.exec(ns.a, 'ip', [
      'neigh',
      'add',
      '10.77.0.2',
      'lladdr',
      '02:00:00:00:00:99',
      'dev',
      dev,
      'nud',
      'permanent',
    ])
  }, 60_000)

  afterAll(async () => {
    await ns.destroy()
  })

  async function qdisc(): Promise<QdiscStats> {
    const out = JSON.parse(
      await ns.exec(ns.a, 'tc', ['-s', '-j', 'qdisc', 'show', 'dev', dev]),
    ) as QdiscStats[]
    const root = out[0]
    if (root === undefined) throw new Error('no qdisc')
    return root
  }

  async function send(kind: 'native' | 'dgram'): Promise<ChildStats> {
    const child = spawnNodeInNetns(ns.a, 'test/helpers/udp-burst-child.ts', [
      '10.77.0.2',
      '4739',
      String(MESSAGES),
      String(SIZE),
      kind,
    ])
    const r = await child.done
    expect(r.code, r.stderr).toBe(0)
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as ChildStats
  }

  it('drops and counts the rest of a burst once the queue holds the send buffer, and sends the rest', async () => {
    await ns.exec(ns.a, 'tc', [
      'qdisc',
      'replace',
      'dev',
      dev,
      'root',
      'tbf',
      'rate',
      '64kbit',
      'burst',
      '1600',
      'limit',
      '20000000',
    ])
    const s = await send('native')
    expect(s.native).toBe(true)
    expect(s.messages).toBe(MESSAGES)
    expect(s.errors).toBe(0)
    // 640 datagrams of 1400 octets at 64 kbit/s would take 112 s; the buffer holds about a hundred.
    expect(s.dropped).toBeGreaterThan(MESSAGES / 2)
    expect(s.dropped).toBeLessThan(MESSAGES)
    const q = await qdisc()
    expect(q.kind).toBe('tbf')
    expect(q.drops).toBe(0)
    expect(q.packets + q.qlen).toBe(MESSAGES - s.dropped)
  }, 60_000)

  it('drops nothing when the queue drains at once', async () => {
    await ns.exec(ns.a, 'tc', ['qdisc', 'replace', 'dev', dev, 'root', 'pfifo', 'limit', '100000'])
    const s = await send('native')
    expect(s.native).toBe(true)
    expect(s.errors).toBe(0)
    expect(s.dropped).toBe(0)
    const q = await qdisc()
    expect(q.kind).toBe('pfifo')
    expect(q.packets + q.qlen + q.drops).toBe(MESSAGES)
  }, 60_000)
})
