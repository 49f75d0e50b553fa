// Interface list and the seed rule (an interface is monitorable only with an IP address): pure checks of
// checkMonitorable, the host's loopback, and a namespace with veths (with and without an address) and, where
// the kernel has 8021q, VLAN sub-interfaces, listed by a child process inside that namespace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NetnsPair, netnsSkipReason, spawnNodeInNetns } from '../../test/helpers/netns.js'
import { pcapAddonAvailable } from './pcap-addon.js'
import {
  checkMonitorable,
  listInterfaces,
  NO_ADDRESS_REASON,
  NotMonitorableError,
  parseVlanConfig,
  type NetInterface,
} from './interfaces.js'

function itf(name: string, addresses: [string, 'IPv4' | 'IPv6'][], ifIndex = 7): NetInterface {
  const list = addresses.map(([address, family]) => ({
    address,
    family,
    cidr: null,
    linkLocal: family === 'IPv6' && address.startsWith('fe80'),
  }))
  const counted = list.some((a) => !a.linkLocal)
  return {
    name,
    ifIndex,
    up: true,
    operState: 'up',
    loopback: false,
    addresses: list,
    vlan: null,
    monitorable: counted,
    reason: counted ? null : NO_ADDRESS_REASON,
  }
}

describe('VLAN sub-interfaces without the 8021q module at hand', () => {
  // /proc/net/vlan/config as Linux 6.x writes it (net/8021q/vlanproc.c).
  const config = [
    'VLAN Dev name    | VLAN ID',
    'Name-Type: VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD',
    'eth0.100       | 100  | eth0',
    'vlan200        | 200  | eth0',
    'broken line',
    'bad | x | eth1',
    '',
  ].join('\n')

  it('reads the sub-interfaces, their VLAN id and parent', () => {
    expect([...parseVlanConfig(config)]).toEqual([
      ['eth0.100', { id: 100, parent: 'eth0' }],
      ['vlan200', { id: 200, parent: 'eth0' }],
    ])
  })

  it('applies the address rule to a sub-interface as to any interface', () => {
    const vlans = parseVlanConfig(config)
    const v100 = { ...itf('eth0.100', [['10.0.100.1', 'IPv4']], 8), vlan: vlans.get('eth0.100') ?? null }
    const v200 = { ...itf('vlan200', [], 9), vlan: vlans.get('vlan200') ?? null }
    expect(checkMonitorable(['eth0.100'], [v100, v200]).map((i) => i.ifIndex)).toEqual([8])
    expect(() => checkMonitorable(['vlan200'], [v100, v200])).toThrow(
      `interface "vlan200": ${NO_ADDRESS_REASON}`,
    )
  })
})

describe('checkMonitorable', () => {
  const available = [
    itf('eth0', [['192.0.2.1', 'IPv4']], 2),
    itf('eth1', [['2001:db8::1', 'IPv6']], 3),
    itf('veth9', [], 4),
    itf('eth2', [['fe80::1', 'IPv6']], 5),
  ]

  it('accepts interfaces with an IPv4 or a global IPv6 address', () => {
    expect(checkMonitorable(['eth0', 'eth1'], available).map((i) => i.ifIndex)).toEqual([2, 3])
  })

  it('names an interface without an address, one with only a link-local address, and one that does not exist', () => {
    expect(() => checkMonitorable(['veth9'], available)).toThrow(
      'interface "veth9": no IP address (the probe monitors only interfaces with an address)',
    )
    expect(() => checkMonitorable(['eth2'], available)).toThrow(`interface "eth2": ${NO_ADDRESS_REASON}`)
    expect(() => checkMonitorable(['nope0'], available)).toThrow('interface "nope0": no such interface')
  })

  it('reports every problem at once, and a name listed twice', () => {
    let err: unknown
    try {
      checkMonitorable(['eth0', 'veth9', 'nope0', 'eth0'], available)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(NotMonitorableError)
    expect((err as NotMonitorableError).problems.map((p) => p.name)).toEqual(['veth9', 'nope0', 'eth0'])
    expect((err as Error).message).toBe(
      `interface "veth9": ${NO_ADDRESS_REASON}; interface "nope0": no such interface; ` +
        'interface "eth0": listed more than once',
    )
  })
})

describe('listInterfaces on this host', () => {
  it('lists the loopback with index 1 and its address', () => {
    const lo = listInterfaces().find((i) => i.name === 'lo')
    expect(lo).toBeDefined()
    expect(lo!.ifIndex).toBe(1)
    expect(lo!.loopback).toBe(true)
    expect(lo!.addresses.map((a) => a.address)).toContain('127.0.0.1')
    expect(lo!.monitorable).toBe(true)
  })
})

const nsSkip = netnsSkipReason()

describe.skipIf(nsSkip !== null)('listInterfaces and checkMonitorable inside a network namespace', () => {
  const pair = new NetnsPair()
  let vlanSupported = true
  interface Listing {
    interfaces: NetInterface[]
    checkError: string | null
    checked: string[]
  }

  beforeAll(async () => {
    await pair.create()
    await pair.veth(0, '10.78.0.1/24', '10.78.0.2/24')
    await pair.veth(1, '', '') // up, no address (only the kernel's IPv6 link-local)
    await pair.veth(2, '', '2001:db8:78::2/64', false) // down, with an address
    try {
      await pair.vlan(pair.b, pair.ifname('b', 0), 100, '10.78.100.2/24')
      await pair.vlan(pair.b, pair.ifname('b', 0), 200, '')
    } catch {
      vlanSupported = false
      console.warn('VLAN sub-interface listing skipped: this kernel has no 8021q')
    }
  })
  afterAll(async () => {
    await pair.destroy()
  })

  async function list(check: string[], prefix: readonly string[] = []): Promise<Listing> {
    const child = spawnNodeInNetns(
      pair.b,
      'test/helpers/live-capture-child.ts',
      [JSON.stringify({ mode: 'list', check })],
      prefix,
    )
    const { code, stdout, stderr } = await child.done
    expect(code, stderr).toBe(0)
    return JSON.parse(stdout) as Listing
  }

  it('lists every interface of the namespace with the kernel ifindex, addresses and state', async () => {
    const b0 = pair.ifname('b', 0)
    const b1 = pair.ifname('b', 1)
    const b2 = pair.ifname('b', 2)
    const { interfaces, checkError, checked } = await list([b0, b2])
    expect(checkError).toBeNull()
    expect(checked).toEqual([b0, b2])
    const byName = new Map(interfaces.map((i) => [i.name, i]))
    expect(byName.has('lo')).toBe(true)
    for (const name of [b0, b1, b2]) expect(byName.get(name)?.ifIndex).toBe(await pair.ifIndex(pair.b, name))
    expect(byName.get(b0)).toMatchObject({ up: true, monitorable: true, reason: null, loopback: false })
    expect(byName.get(b0)!.addresses).toContainEqual({
      address: '10.78.0.2',
      family: 'IPv4',
      cidr: '10.78.0.2/24',
      linkLocal: false,
    })
    expect(byName.get(b1)).toMatchObject({ up: true, monitorable: false, reason: NO_ADDRESS_REASON })
    expect(byName.get(b1)!.addresses.every((a) => a.linkLocal)).toBe(true)
    // A down interface's address is read through the addon's getifaddrs (os.networkInterfaces() hides it).
    expect(byName.get(b2)).toMatchObject({ up: false, monitorable: pcapAddonAvailable() })
  })

  it('without the pcap addon, lists the same up interfaces from /proc, /sys and os.networkInterfaces()', async () => {
    const withAddon = await list([])
    const without = await list([], ['env', 'FLOWTEL_NO_PCAP_ADDON=1'])
    const b2 = pair.ifname('b', 2)
    const key = (l: Listing): unknown =>
      l.interfaces
        .filter((i) => i.up === true)
        .map((i) => [i.name, i.ifIndex, i.monitorable, i.addresses.map((a) => a.address).sort()])
    expect(key(without)).toEqual(key(withAddon))
    // os.networkInterfaces() leaves out interfaces that are down, so their addresses are unknown there.
    expect(without.interfaces.find((i) => i.name === b2)).toMatchObject({ up: false, monitorable: false })
  })

  it('refuses the interface without an address and a missing one, naming them', async () => {
    const b1 = pair.ifname('b', 1)
    const { checkError } = await list([pair.ifname('b', 0), b1, 'nope0'])
    expect(checkError).toBe(`interface "${b1}": ${NO_ADDRESS_REASON}; interface "nope0": no such interface`)
  })

  it('treats VLAN sub-interfaces as interfaces of their own under the same rule', async (ctx) => {
    if (!vlanSupported) ctx.skip('this kernel has no 8021q (VLAN) support')
    const b0 = pair.ifname('b', 0)
    const v100 = `${b0}.100`
    const v200 = `${b0}.200`
    const { interfaces, checkError } = await list([v100, v200])
    const byName = new Map(interfaces.map((i) => [i.name, i]))
    expect(byName.get(v100)).toMatchObject({ monitorable: true, vlan: { id: 100, parent: b0 } })
    expect(byName.get(v200)).toMatchObject({ monitorable: false, vlan: { id: 200, parent: b0 } })
    expect(checkError).toBe(`interface "${v200}": ${NO_ADDRESS_REASON}`)
  })
})
