// Live capture (native/pcap addon + LiveCaptureSource) on veth pairs between two network namespaces the test
// creates: ping, UDP and ARP made inside the namespaces, capture run inside one of them in a child process.
// Skipped, with the reason, when not root or when the addon is not built.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  NetnsPair,
  netnsSkipReason,
  run,
  spawnNodeInNetns,
  type NodeChild,
} from '../../test/helpers/netns.js'
import type { CaptureSummary } from '../../test/helpers/live-capture-child.js'
import { openLiveCapture } from './live-source.js'
import { ADDON_MISSING_MESSAGE, loadPcapAddon, pcapAddonAvailable } from './pcap-addon.js'

const CHILD = 'test/helpers/live-capture-child.ts'
const UDP_PORT = 5555
const addonSkip = pcapAddonAvailable() ? null : ADDON_MISSING_MESSAGE
const nsSkip = netnsSkipReason() ?? addonSkip
const hostSkip = process.getuid?.() !== 0 ? 'opening a capture needs root' : addonSkip
if (nsSkip !== null) console.warn(`live capture tests skipped: ${nsSkip}`)

describe.skipIf(nsSkip !== null)('live capture in network namespaces', () => {
  const pair = new NetnsPair()
  let a0 = ''
  let b0 = ''
  let b1 = ''
  let b0Vlan = ''
  let b0Index = 0
  let b1Index = 0
  let b0VlanIndex = 0
  /** Why VLAN sub-interfaces cannot be made here (a kernel without 8021q), or null. */
  let vlanSkip: string | null = null

  beforeAll(async () => {
    await pair.create()
    await pair.veth(0, '10.77.0.1/24', '10.77.0.2/24')
    await pair.veth(1, '10.77.1.1/24', '10.77.1.2/24')
    a0 = pair.ifname('a', 0)
    b0 = pair.ifname('b', 0)
    b1 = pair.ifname('b', 1)
    b0Index = await pair.ifIndex(pair.b, b0)
    b1Index = await pair.ifIndex(pair.b, b1)
    try {
      await pair.vlan(pair.a, a0, 100, '10.77.100.1/24')
      b0Vlan = await pair.vlan(pair.b, b0, 100, '10.77.100.2/24')
      b0VlanIndex = await pair.ifIndex(pair.b, b0Vlan)
    } catch (e) {
      vlanSkip = `no VLAN sub-interfaces on this kernel (${(e as Error).message.trim().split('\n').pop()})`
      console.warn(`VLAN capture test skipped: ${vlanSkip}`)
    }
  })
  afterAll(async () => {
    await pair.destroy()
  })

  /** Starts the capture child in namespace b and waits until it captures. */
  async function startCapture(
    job: Record<string, unknown>,
    prefix: readonly string[] = [],
  ): Promise<{ child: NodeChild; openError: string | null }> {
    const child = spawnNodeInNetns(
      pair.b,
      CHILD,
      [JSON.stringify({ mode: 'capture', udpPort: UDP_PORT, ...job })],
      prefix,
    )
    const line = await child.waitForLine((l) => l === 'READY' || l.startsWith('{"openError"'))
    if (line === 'READY') return { child, openError: null }
    await child.done
    return { child, openError: (JSON.parse(line) as { openError: string }).openError }
  }

  type Progress = Pick<CaptureSummary, 'packets' | 'icmpEchoRequest' | 'icmpEchoReply' | 'udpToPort' | 'arp'>

  /** Waits until the child's running counts satisfy `done` (packets still in flight are not lost), then stops it. */
  async function finish(child: NodeChild, done: (p: Progress) => boolean): Promise<CaptureSummary> {
    await child.waitForLine((l) => l.startsWith('P ') && done(JSON.parse(l.slice(2)) as Progress))
    child.send('stop')
    const { code, stdout, stderr } = await child.done
    expect(code, stderr).toBe(0)
    const last = stdout.trim().split('\n').pop() ?? ''
    return JSON.parse(last) as CaptureSummary
  }

  /** From namespace a: ARP (neighbours flushed first), `pings` echo requests and `udp` datagrams to b. */
  async function traffic(target: string, pings: number, udp: number): Promise<void> {
    await pair.exec(pair.a, 'ip', ['neigh', 'flush', 'all'])
    if (pings > 0) await pair.exec(pair.a, 'ping', ['-c', String(pings), '-i', '0.2', '-W', '2', target])
    if (udp > 0) {
      const code = `const s=require('dgram').createSocket('udp4');let n=${udp};const m=Buffer.alloc(64);
        (function go(){if(n--===0){s.close();return}s.send(m,${UDP_PORT},'${target}',go)})()`
      await pair.exec(pair.a, process.execPath, ['-e', code])
    }
  }

  it('captures ping, UDP and ARP in batches, stamped with the veth ifindex, the link type and sane times', async () => {
    const { child, openError } = await startCapture({ interfaces: [b0] })
    expect(openError).toBeNull()
    const t0 = Date.now() * 1000
    await traffic('10.77.0.2', 4, 200)
    const t1 = Date.now() * 1000
    const s = await finish(child, (p) => p.udpToPort >= 200 && p.icmpEchoReply >= 4)
    expect(s.icmpEchoRequest).toBe(4)
    expect(s.icmpEchoReply).toBe(4)
    expect(s.udpToPort).toBe(200)
    expect(s.arp).toBeGreaterThanOrEqual(2) // who-has from a and the reply from b
    expect(Object.keys(s.byIfIndex)).toEqual([String(b0Index)])
    expect(s.linkTypes).toEqual([1])
    expect(s.minTsUs).toBeGreaterThanOrEqual(t0 - 1_000_000)
    expect(s.maxTsUs).toBeLessThanOrEqual(t1 + 1_000_000)
    expect(s.truncated).toBe(0)
    // Batches, not a callback per packet: the 200 back-to-back datagrams share batches.
    expect(s.maxBatch).toBeGreaterThan(1)
    expect(s.batches).toBeLessThan(s.packets)
    expect(s.statsPackets).toBe(s.packets)
    const [st] = s.interfaceStats
    expect(st).toMatchObject({ name: b0, ifIndex: b0Index, linkType: 1, packets: s.packets, kernelDrops: 0 })
    expect(st!.bytes).toBe(s.statsBytes)
    expect(st!.received).toBeGreaterThanOrEqual(s.packets)
  })

  it('honours the BPF filter and the snaplen', async () => {
    const { child, openError } = await startCapture({
      interfaces: [b0],
      options: { filter: `udp and dst port ${UDP_PORT}`, snaplen: 64 },
    })
    expect(openError).toBeNull()
    await traffic('10.77.0.2', 2, 50)
    const s = await finish(child, (p) => p.udpToPort >= 50)
    expect(s.udpToPort).toBe(50)
    expect(s.packets).toBe(50)
    expect(s.icmpEchoRequest + s.icmpEchoReply + s.arp).toBe(0)
    // 14 + 20 + 8 + 64 bytes on the wire, 64 kept.
    expect(s.truncated).toBe(50)
    expect(s.statsBytes).toBe(50 * 64)
  })

  it('captures several interfaces at once, each batch tagged with its own ifindex', async () => {
    const { child, openError } = await startCapture({ interfaces: [b0, b1] })
    expect(openError).toBeNull()
    await traffic('10.77.0.2', 3, 0)
    await traffic('10.77.1.2', 2, 30)
    const s = await finish(child, (p) => p.udpToPort >= 30 && p.icmpEchoReply >= 5)
    expect(s.icmpEchoRequest).toBe(5)
    expect(s.icmpEchoReply).toBe(5)
    expect(s.udpToPort).toBe(30)
    expect(s.byIfIndex[String(b0Index)]).toBeGreaterThanOrEqual(6)
    expect(s.byIfIndex[String(b1Index)]).toBeGreaterThanOrEqual(34)
    expect(s.interfaceStats.map((i) => [i.name, i.ifIndex])).toEqual([
      [b0, b0Index],
      [b1, b1Index],
    ])
    const [st0, st1] = s.interfaceStats
    expect(st0!.packets).toBe(s.byIfIndex[String(b0Index)])
    expect(st1!.packets).toBe(s.byIfIndex[String(b1Index)])
  })

  it('captures a VLAN sub-interface and its parent at once', async (ctx) => {
    if (vlanSkip !== null) ctx.skip(vlanSkip)
    const { child, openError } = await startCapture({ interfaces: [b0, b0Vlan] })
    expect(openError).toBeNull()
    await traffic('10.77.0.2', 3, 0)
    await traffic('10.77.100.2', 3, 0)
    const s = await finish(child, (p) => p.icmpEchoReply >= 9)
    // Untagged pings seen on the veth; VLAN pings seen tagged on the veth and untagged on the VLAN device.
    expect(s.icmpEchoRequest).toBe(9)
    expect(s.icmpEchoReply).toBe(9)
    expect(s.vlanTagged).toBeGreaterThanOrEqual(12)
    expect(s.byIfIndex[String(b0Index)]).toBeGreaterThanOrEqual(12)
    expect(s.byIfIndex[String(b0VlanIndex)]).toBeGreaterThanOrEqual(6)
    expect(s.interfaceStats.map((i) => [i.name, i.ifIndex])).toEqual([
      [b0, b0Index],
      [b0Vlan, b0VlanIndex],
    ])
  })

  it('refuses an interface without an IP address, and one that does not exist, naming it', async () => {
    await pair.veth(2, '', '')
    const b2 = pair.ifname('b', 2)
    const r1 = await startCapture({ interfaces: [b0, b2] })
    expect(r1.openError).toBe(
      `interface "${b2}": no IP address (the probe monitors only interfaces with an address)`,
    )
    const r2 = await startCapture({ interfaces: ['nope0'] })
    expect(r2.openError).toBe('interface "nope0": no such interface')
    const r3 = await startCapture({ interfaces: ['nope0'], options: { requireAddress: false } })
    expect(r3.openError).toMatch(/^interface "nope0": no such interface/)
    const r4 = await startCapture({ interfaces: [b0] }, ['env', 'FLOWTEL_NO_PCAP_ADDON=1'])
    expect(r4.openError).toMatch(
      /^live capture needs the native pcap addon: install libpcap-dev and run npm rebuild \(/,
    )
  })

  it('ends the iteration and exits cleanly when closed during traffic', async () => {
    const { child, openError } = await startCapture({ interfaces: [b0], closeAfter: 20 })
    expect(openError).toBeNull()
    const ping = spawn('ip', ['netns', 'exec', pair.a, 'ping', '-c', '2000', '-i', '0.002', '10.77.0.2'], {
      stdio: 'ignore',
    })
    try {
      const { code, stdout, stderr } = await child.done
      expect(code, stderr).toBe(0)
      const s = JSON.parse(stdout.trim().split('\n').pop() ?? '') as CaptureSummary
      expect(s.endedByClose).toBe(true)
      expect(s.packets).toBeGreaterThanOrEqual(20)
    } finally {
      ping.kill('SIGKILL')
    }
  })

  it('drain() delivers every packet the kernel holds before ending (none lost at stop)', async () => {
    // A long kernel block timeout and batch deadline (1 s / 0.5 s): when the drain is asked for, the
    // datagrams still sit in the kernel's block and in the batch being filled; close() would lose them.
    const { child, openError } = await startCapture({
      interfaces: [b0],
      options: { filter: `udp and dst port ${UDP_PORT}`, flushMs: 1000 },
    })
    expect(openError).toBeNull()
    await traffic('10.77.0.2', 0, 50)
    child.send('drain')
    const { code, stdout, stderr } = await child.done
    expect(code, stderr).toBe(0)
    const s = JSON.parse(stdout.trim().split('\n').pop() ?? '') as CaptureSummary
    expect(s.error).toBeNull()
    expect(s.endedByClose).toBe(true)
    expect(s.udpToPort).toBe(50)
    const [st] = s.interfaceStats
    expect(st).toMatchObject({ packets: 50, received: 50, kernelDrops: 0 })
  })

  it('counts kernel drops when the consumer falls behind, and accounts for every packet', async () => {
    const { child, openError } = await startCapture({
      interfaces: [b0],
      waitForGo: true,
      options: {
        filter: `udp and dst port ${UDP_PORT}`,
        bufferBytes: 256 * 1024,
        slots: 2,
        batchBytes: 65536,
      },
    })
    expect(openError).toBeNull()
    // 4000 datagrams of ~1 kB (4 MB) while nothing is consumed: two 64 KiB batches and the small kernel ring fill.
    const code = `const s=require('dgram').createSocket('udp4');let n=4000;const m=Buffer.alloc(1000);
      (function go(){if(n--===0){s.close();return}s.send(m,${UDP_PORT},'10.77.0.2',go)})()`
    await pair.exec(pair.a, process.execPath, ['-e', code])
    child.send('go')
    // Wait until the count stops moving (every packet the kernel kept has been taken).
    let last = -1
    for (;;) {
      const line = await child.waitForLine((l) => l.startsWith('P '))
      void line
      await new Promise((r) => setTimeout(r, 500))
      child.send('count')
      const now = Number((await child.nextLine((l) => l.startsWith('C '))).slice(2))
      if (now === last) break
      last = now
    }
    child.send('stop')
    const { code: exit, stdout, stderr } = await child.done
    expect(exit, stderr).toBe(0)
    const s = JSON.parse(stdout.trim().split('\n').pop() ?? '') as CaptureSummary
    const [st] = s.interfaceStats
    expect(st!.kernelDrops).toBeGreaterThan(0)
    expect(s.udpToPort).toBeLessThan(4000)
    expect(s.udpToPort + st!.kernelDrops).toBe(4000)
    expect(st!.received).toBe(4000)
  })

  it('reports an interface that disappears during capture as an error naming it', async () => {
    await pair.veth(3, '10.77.3.1/24', '10.77.3.2/24')
    const b3 = pair.ifname('b', 3)
    const { child, openError } = await startCapture({ interfaces: [b3] })
    expect(openError).toBeNull()
    await pair.exec(pair.a, 'ping', ['-c', '1', '-W', '2', '10.77.3.2'])
    await child.waitForLine(
      (l) => l.startsWith('P ') && (JSON.parse(l.slice(2)) as Progress).icmpEchoReply >= 1,
    )
    await run('ip', ['-n', pair.b, 'link', 'del', b3])
    const { code, stdout, stderr } = await child.done
    expect(code, stderr).toBe(0)
    const s = JSON.parse(stdout.trim().split('\n').pop() ?? '') as CaptureSummary
    expect(s.error).toMatch(new RegExp(`^interface "${b3}": capture failed: `))
    expect(s.icmpEchoRequest).toBe(1)
  })

  const setprivSkip = existsSync('/usr/bin/setpriv') ? null : 'setpriv (util-linux) is not installed'
  it.skipIf(setprivSkip !== null)(
    'works as a non-root user with only CAP_NET_RAW and CAP_NET_ADMIN, and fails clearly without them',
    async () => {
      const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
      const caps = ['--inh-caps=+net_raw,+net_admin', '--ambient-caps=+net_raw,+net_admin']
      const withCaps = await startCapture({ interfaces: [b0] }, [...nobody, ...caps])
      expect(withCaps.openError).toBeNull()
      await traffic('10.77.0.2', 2, 0)
      const s = await finish(withCaps.child, (p) => p.icmpEchoReply >= 2)
      expect(s.icmpEchoRequest).toBe(2)
      const without = await startCapture({ interfaces: [b0] }, nobody)
      expect(without.openError).toMatch(
        new RegExp(
          `^interface "${b0}": permission denied \\(live capture needs CAP_NET_RAW and CAP_NET_ADMIN`,
        ),
      )
    },
  )
})

describe.skipIf(hostSkip !== null)('live capture errors and close (host loopback, no traffic sent)', () => {
  it('rejects a bad BPF filter with an error naming the interface and the expression', () => {
    expect(() => openLiveCapture(['lo'], { filter: 'tcp port ((', requireAddress: false })).toThrow(
      /^interface "lo": bad capture filter "tcp port \(\(": /,
    )
    expect(loadPcapAddon().checkFilter('tcp port ((')).toMatch(/syntax error/)
    expect(loadPcapAddon().checkFilter('tcp port 80')).toBeNull()
  })

  it('rejects an interface that does not exist', () => {
    expect(() => openLiveCapture(['nope0'])).toThrow('interface "nope0": no such interface')
    expect(() => openLiveCapture(['nope0'], { requireAddress: false })).toThrow(
      /^interface "nope0": no such interface/,
    )
  })

  it('rejects an interface name longer than the kernel allows', () => {
    expect(() => openLiveCapture(['x'.repeat(20)], { requireAddress: false })).toThrow(
      /^interface "x{20}": not a valid interface name$/,
    )
  })

  it('leaks no file descriptors over many open/iterate/close cycles', async () => {
    const fds = (): number => readdirSync('/proc/self/fd').length
    const cycle = async (): Promise<void> => {
      const source = openLiveCapture(['lo'], {
        requireAddress: false,
        bufferBytes: 1 << 20,
        filter: 'udp port 9',
      })
      const it = source.batches()[Symbol.asyncIterator]()
      const pending = it.next()
      await source.close()
      expect((await pending).done).toBe(true)
    }
    await cycle() // first use loads the addon and libpcap's lazily opened files
    const before = fds()
    for (let i = 0; i < 100; i++) await cycle()
    expect(fds()).toBe(before)
  })

  it('rejects bad options before opening anything', () => {
    expect(() => openLiveCapture([])).toThrow(/at least one interface/)
    expect(() => openLiveCapture(['lo'], { batchSize: 0 })).toThrow(RangeError)
    expect(() => openLiveCapture(['lo'], { slots: 1 })).toThrow(RangeError)
    expect(() => openLiveCapture(['lo', 'lo'], { requireAddress: false })).toThrow(/listed more than once/)
  })

  it('ends a waiting iteration when closed, and can be closed twice', async () => {
    const source = openLiveCapture(['lo'], { requireAddress: false, filter: 'udp port 9 and udp port 10' })
    const iteration = (async () => {
      let batches = 0
      for await (const _ of source.batches()) batches++
      return batches
    })()
    await new Promise((r) => setTimeout(r, 100))
    await source.close()
    await source.close()
    expect(await iteration).toBe(0)
    expect(source.isClosed).toBe(true)
    expect(source.interfaceStats()[0]).toMatchObject({ name: 'lo', ifIndex: 1, packets: 0 })
  })
})
