// Export destinations from the CLI's words: transport, export protocol and TLS files, with the combinations
// that cannot work refused with a message that says why.
import { describe, expect, it } from 'vitest'
import { NetflowTransport } from '../ipfix/transport-netflow.js'
import { TlsTransport } from '../ipfix/transport-tls.js'
import { UdpTransport } from '../ipfix/transport-udp.js'
import { collectorDestinations, createTransports } from './destinations.js'

describe('collector destinations', () => {
  it('builds UDP, NetFlow-over-UDP and TLS transports', () => {
    const [udp, v9, v5] = createTransports([
      ...collectorDestinations(['127.0.0.1:4739'], 'udp'),
      ...collectorDestinations(['127.0.0.1:2055'], 'udp', { protocol: 'netflow-v9' }),
      ...collectorDestinations(['[::1]:2055'], 'udp', { protocol: 'netflow-v5' }),
    ])
    expect(udp).toBeInstanceOf(UdpTransport)
    expect(v9).toBeInstanceOf(NetflowTransport)
    expect(v9?.name).toBe('netflow-v9+udp://127.0.0.1:2055')
    expect(v5?.name).toBe('netflow-v5+udp://[::1]:2055')
    const [tls] = createTransports(collectorDestinations(['collector.example:4740'], 'tls', { tls: {} }))
    expect(tls).toBeInstanceOf(TlsTransport)
    expect(tls?.name).toBe('tls://collector.example:4740')
  })

  it('refuses NetFlow over TCP/TLS and TLS files without --transport tls', () => {
    expect(() => collectorDestinations(['h:1'], 'tcp', { protocol: 'netflow-v9' })).toThrow(/UDP only/)
    expect(() => collectorDestinations(['h:1'], 'tls', { protocol: 'netflow-v5' })).toThrow(/UDP only/)
    expect(() => collectorDestinations(['h:1'], 'udp', { tls: { caFile: 'ca.pem' } })).toThrow(
      /--transport tls/,
    )
    expect(collectorDestinations(['h:1'], 'udp', { tls: {} })).toHaveLength(1)
  })
})
