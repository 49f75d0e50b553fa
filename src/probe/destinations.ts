/**
 * Export destinations as the operator names them (`--collector host:port`, `--transport`, `--json FILE|-`)
 * and the transports that serve them.
 */
import { parseCollectorAddress, type Transport } from '../ipfix/transport.js'
import { UdpTransport } from '../ipfix/transport-udp.js'
import { TcpTransport } from '../ipfix/transport-tcp.js'
import { JsonTransport } from '../ipfix/transport-json.js'
import { FileTransport } from '../ipfix/transport-file.js'

export type Destination =
  | { kind: 'udp' | 'tcp'; host: string; port: number }
  | { kind: 'json'; path: string; host: '' }
  | { kind: 'ipfix-file'; path: string; host: '' }

export type TransportKind = 'udp' | 'tcp'

/** Parse `--collector` values with one transport kind; throws naming the bad value. */
export function collectorDestinations(addresses: readonly string[], kind: TransportKind): Destination[] {
  return addresses.map((a) => ({ kind, ...parseCollectorAddress(a) }))
}

export function createTransports(destinations: readonly Destination[]): Transport[] {
  return destinations.map((d) => {
    switch (d.kind) {
      case 'udp':
        return new UdpTransport(d.host, d.port)
      case 'tcp':
        return new TcpTransport(d.host, d.port)
      case 'json':
        return new JsonTransport(d.path)
      case 'ipfix-file':
        return new FileTransport(d.path)
    }
  })
}
