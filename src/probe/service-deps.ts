/**
 * The real collaborators of the live probe service (service.ts): settings schema (config/schema.ts),
 * interface rule and libpcap capture (capture/), export transports per protocol and transport (ipfix/),
 * observation domain derivation (config/observation-domain.ts), Validate by ICMP echo (probe/validate.ts)
 * and the debug capture of the export traffic (probe/debug-capture.ts). Tests replace them with fakes.
 */
import { checkMonitorable } from '../capture/interfaces.js'
import { openLiveCapture } from '../capture/live-source.js'
import { observationDomainFor } from '../config/observation-domain.js'
import { validateSettings } from '../config/schema.js'
import type { ProbeSettings } from '../config/settings.js'
import { TransportTap } from '../ipfix/transport-tap.js'
import { TcpTransport } from '../ipfix/transport-tcp.js'
import { TlsTransport } from '../ipfix/transport-tls.js'
import { UdpTransport } from '../ipfix/transport-udp.js'
import { NetflowTransport } from '../ipfix/transport-netflow.js'
import { parseCollectorAddress, type Transport } from '../ipfix/transport.js'
import { DebugCaptureRecorder } from './debug-capture.js'
import type { ExportRecorder, ServiceDeps } from './service.js'
import { validateCollector } from './validate.js'

/**
 * One transport for one collector address: IPFIX over UDP, TCP or TLS, or NetFlow v9/v5 over UDP (converted
 * from the exporter's IPFIX, transport-netflow.ts), from the source address when set. `wire` wraps the
 * transport that puts bytes on the wire (the debug capture's tap), so the pcap shows what the collector gets.
 */
export function createExportTransport(
  collector: string,
  s: ProbeSettings,
  wire: (t: Transport) => Transport = (t) => t,
): Transport {
  const { host, port } = parseCollectorAddress(collector)
  const local = s.sourceAddress !== '' ? { localAddress: s.sourceAddress } : {}
  if (s.exportProtocol !== 'ipfix') {
    if (s.transport !== 'udp') throw new Error(`${s.exportProtocol} goes over UDP only`)
    return new NetflowTransport(wire(new UdpTransport(host, port, local)), {
      version: s.exportProtocol === 'netflow-v9' ? 9 : 5,
      // The IPv6 header budget whatever the address (a name may resolve to IPv6).
      maxPacketSize: s.mtu - 48,
    })
  }
  switch (s.transport) {
    case 'udp':
      return wire(new UdpTransport(host, port, local))
    case 'tcp':
      return wire(new TcpTransport(host, port, local))
    case 'tls':
      return wire(
        new TlsTransport(host, port, {
          ...local,
          ...(s.tls.caFile !== undefined ? { caFile: s.tls.caFile } : {}),
          ...(s.tls.certFile !== undefined ? { certFile: s.tls.certFile } : {}),
          ...(s.tls.keyFile !== undefined ? { keyFile: s.tls.keyFile } : {}),
          ...(s.tls.serverName !== undefined ? { serverName: s.tls.serverName } : {}),
        }),
      )
  }
}

/** The debug capture as the service drives it: every transport is tapped. */
export function exportRecorder(): ExportRecorder {
  const r = new DebugCaptureRecorder()
  return {
    tap: (t) => new TransportTap(t, r),
    start: (opts) => r.start(opts),
    stop: () => r.stop(),
    state: () => r.state(),
    pcap: () => r.pcap(),
  }
}

export function systemServiceDeps(): ServiceDeps {
  const recorder = exportRecorder()
  return {
    validateSettings: (doc) => {
      const v = validateSettings(doc)
      return v.ok ? { ok: true, settings: v.settings } : { ok: false, errors: v.errors }
    },
    checkInterfaces: (names) => void checkMonitorable(names),
    openCapture: (name, c) =>
      Promise.resolve(
        openLiveCapture([name], {
          promiscuous: c.promiscuous,
          snaplen: c.snaplen,
          bufferBytes: c.bufferBytes,
          filter: c.filter,
        }),
      ),
    createTransport: (collector, s) => createExportTransport(collector, s, (t) => recorder.tap(t)),
    observationDomain: (s) => observationDomainFor(s).id,
    ping: (address) => validateCollector(address),
    recorder,
  }
}
