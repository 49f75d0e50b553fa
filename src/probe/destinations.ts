/**
 * Export destinations as the operator names them (`--collector host:port`, `--transport`,
 * `--export-protocol`, `--tls-*`, `--json FILE|-`) and the transports that serve them.
 */
import type { ExportProtocol } from '../config/settings.js'
import { parseCollectorAddress, type Transport } from '../ipfix/transport.js'
import { UdpTransport } from '../ipfix/transport-udp.js'
import { TcpTransport } from '../ipfix/transport-tcp.js'
import { TlsTransport, type TlsFiles } from '../ipfix/transport-tls.js'
import { NetflowTransport } from '../ipfix/transport-netflow.js'
import { JsonTransport } from '../ipfix/transport-json.js'
import { FileTransport } from '../ipfix/transport-file.js'

export type Destination =
  | { kind: 'udp'; host: string; port: number; protocol?: ExportProtocol }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'tls'; host: string; port: number; tls: TlsFiles }
  | { kind: 'json'; path: string; host: '' }
  | { kind: 'ipfix-file'; path: string; host: '' }

export type TransportKind = 'udp' | 'tcp' | 'tls'

export interface CollectorExport {
  /** Default 'ipfix'. NetFlow v9/v5 go over UDP only (their headers have no length to frame a stream). */
  protocol?: ExportProtocol
  /** CA, client certificate/key and server name for `tls`. */
  tls?: TlsFiles
}

/** Parse `--collector` values with one transport kind; throws naming the bad value or combination. */
export function collectorDestinations(
  addresses: readonly string[],
  kind: TransportKind,
  more: CollectorExport = {},
): Destination[] {
  const protocol = more.protocol ?? 'ipfix'
  if (protocol !== 'ipfix' && kind !== 'udp')
    throw new Error(
      `export protocol ${protocol} goes over UDP only (no framing for ${kind}); use --transport udp`,
    )
  const tlsGiven = more.tls !== undefined && Object.values(more.tls).some((v) => v !== undefined)
  if (tlsGiven && kind !== 'tls')
    throw new Error('--tls-ca/--tls-cert/--tls-key/--tls-server-name need --transport tls')
  return addresses.map((a) => {
    const { host, port } = parseCollectorAddress(a)
    if (kind === 'tls') return { kind, host, port, tls: more.tls ?? {} }
    if (kind === 'tcp') return { kind, host, port }
    return protocol === 'ipfix' ? { kind, host, port } : { kind, host, port, protocol }
  })
}

/** What NetFlow conversion needs from the probe: its template refresh, MTU and start time. */
export interface TransportContext {
  /** The producer waits on Transport.whenWritable between batches (the offline probe). */
  producerWaits?: boolean
  mtu: number
  templateRefreshSeconds: number
  templateRefreshMessages: number
  /** Unix ms the exporter started on its clock (see NetflowTransportOptions.startTimeMs). */
  startTimeMs?: () => number | undefined
}

export function createTransports(destinations: readonly Destination[], ctx?: TransportContext): Transport[] {
  return destinations.map((d) => {
    switch (d.kind) {
      case 'udp': {
        const udp = new UdpTransport(d.host, d.port)
        if (d.protocol === undefined || d.protocol === 'ipfix') return udp
        // The IPv6 budget unless the host is an IPv4 literal (a name may resolve to IPv6).
        const ipHeaders = /^\d+\.\d+\.\d+\.\d+$/.test(d.host) ? 28 : 48
        return new NetflowTransport(udp, {
          version: d.protocol === 'netflow-v9' ? 9 : 5,
          maxPacketSize: (ctx?.mtu ?? 1500) - ipHeaders,
          templateRefreshSeconds: ctx?.templateRefreshSeconds ?? 600,
          templateRefreshPackets: ctx?.templateRefreshMessages ?? 0,
          ...(ctx?.startTimeMs !== undefined ? { startTimeMs: ctx.startTimeMs } : {}),
        })
      }
      case 'tcp':
        return new TcpTransport(d.host, d.port)
      case 'tls':
        return new TlsTransport(d.host, d.port, d.tls)
      case 'json':
        // A producer that waits for the output to drain between batches keeps every line of a burst (a
        // batch can expire many flows at once): memory is then bounded by the flow cache, not by a cap.
        return new JsonTransport(d.path, ctx?.producerWaits === true ? { maxBufferBytes: Infinity } : {})
      case 'ipfix-file':
        return new FileTransport(d.path)
    }
  })
}
