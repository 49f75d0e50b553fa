// The default observation domain: configured value first, then the source address, the primary address
// (the default route's interface) and the host name; two HA nodes get different values.
import { describe, expect, it } from 'vitest'
import { domainFromAddress, observationDomainFor, type HostFacts } from './observation-domain.js'

function host(name: string, ifs: Record<string, [string, string][]>, route?: string): HostFacts {
  return {
    hostname: () => name,
    defaultRouteInterface: () => route,
    interfaces: () =>
      Object.fromEntries(
        Object.entries(ifs).map(([n, addrs]) => [
          n,
          addrs.map(([family, address]) => ({
            address,
            family: family as 'IPv4' | 'IPv6',
            internal: n === 'lo',
            netmask: '',
            mac: '00:00:00:00:00:00',
            cidr: null,
            ...(family === 'IPv6' ? { scopeid: 0 } : {}),
          })),
        ]),
      ) as ReturnType<HostFacts['interfaces']>,
  }
}

describe('observationDomainFor', () => {
  const node = host(
    'probe-a',
    { lo: [['IPv4', '127.0.0.1']], eth0: [['IPv4', '10.0.0.1']], eth1: [['IPv4', '192.0.2.1']] },
    'eth1',
  )

  it('uses the configured value as is', () => {
    expect(observationDomainFor({ observationDomainId: 0, sourceAddress: '10.0.0.1' }, node)).toEqual({
      id: 0,
      from: 'configured',
    })
  })

  it('reads an IPv4 source address as its 32-bit number', () => {
    expect(observationDomainFor({ sourceAddress: '10.0.0.1' }, node)).toEqual({
      id: 167772161,
      from: 'source address 10.0.0.1',
    })
  })

  it('falls back to the default-route interface address, then to the host name', () => {
    expect(observationDomainFor({ sourceAddress: '' }, node)).toEqual({
      id: domainFromAddress('192.0.2.1'),
      from: 'host address 192.0.2.1',
    })
    const noRoute = host('probe-a', {
      lo: [['IPv4', '127.0.0.1']],
      eth1: [
        ['IPv6', 'fe80::1'],
        ['IPv6', '2001:db8::5'],
      ],
    })
    expect(observationDomainFor({ sourceAddress: '' }, noRoute).from).toBe('host address 2001:db8::5')
    const bare = host('probe-a', { lo: [['IPv4', '127.0.0.1']] })
    const other = host('probe-b', { lo: [['IPv4', '127.0.0.1']] })
    const a = observationDomainFor({ sourceAddress: '' }, bare)
    expect(a.from).toBe('host name probe-a')
    expect(a.id).toBe(observationDomainFor({ sourceAddress: '' }, bare).id)
    expect(a.id).not.toBe(observationDomainFor({ sourceAddress: '' }, other).id)
  })

  it('gives the two nodes of an HA pair different, nonzero values', () => {
    for (const [x, y] of [
      ['192.0.2.1', '192.0.2.2'],
      ['2001:db8::1', '2001:db8::2'],
      ['::ffff:10.0.0.1', '::ffff:10.0.0.2'],
    ] as const) {
      const a = observationDomainFor({ sourceAddress: x })
      const b = observationDomainFor({ sourceAddress: y })
      expect(a.id).not.toBe(b.id)
      expect(a.id).toBeGreaterThan(0)
      expect(a.id).toBeLessThanOrEqual(0xffffffff)
    }
    // The same IPv6 address written two ways gives the same value.
    expect(domainFromAddress('2001:db8:0:0::1')).toBe(domainFromAddress('2001:DB8::1'))
    expect(domainFromAddress('0.0.0.0')).toBe(1)
  })
})
