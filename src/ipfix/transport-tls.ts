/**
 * IPFIX over TLS over TCP (RFC 7011 §10.4 framing, §11.1-§11.3 security): the exporter is the TLS client and
 * connects to the collector (default port 4740). TLS 1.2 or newer (RFC 7011 §11.1 asks for ≥ 1.1 and RFC 8996
 * deprecates 1.1). The collector's certificate is always verified, against the CA file when given or the
 * system CAs otherwise, and its name against `serverName` (default: the collector host; an IP address is
 * matched against the certificate's IP SANs). A client certificate and key make it mutual TLS (§11.3).
 *
 * Queueing, session boundaries (templates resent and Sequence Number reset on every new connection) and the
 * reconnect backoff are TcpTransport's; a connection only counts as up after the handshake, so nothing is
 * ever written in cleartext and nothing is sent to a collector that failed verification.
 */
import { readFileSync } from 'node:fs'
import type net from 'node:net'
import { isIP } from 'node:net'
import tls from 'node:tls'
import { TcpTransport, type TcpTransportOptions } from './transport-tcp.js'

export interface TlsFiles {
  /** PEM file of the CA(s) that sign the collector's certificate; system CAs when absent. */
  caFile?: string
  /** Client certificate and key (PEM) for mutual TLS; both or neither. */
  certFile?: string
  keyFile?: string
  /** Name checked against the collector's certificate (and sent as SNI); default the collector host. */
  serverName?: string
}

export type TlsTransportOptions = TcpTransportOptions & TlsFiles

/** Reads a PEM file, with an error that names the option and the file. */
function readPem(what: string, file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new Error(`TLS ${what} file "${file}": ${(err as Error).message}`)
  }
}

export class TlsTransport extends TcpTransport {
  private readonly secure: tls.ConnectionOptions

  constructor(host: string, port: number, opts: TlsTransportOptions = {}) {
    super(host, port, opts)
    if ((opts.certFile === undefined) !== (opts.keyFile === undefined))
      throw new Error('TLS: give both a client certificate and its key, or neither')
    const name = opts.serverName ?? host
    this.secure = {
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
      ...(opts.caFile !== undefined ? { ca: readPem('CA', opts.caFile) } : {}),
      ...(opts.certFile !== undefined ? { cert: readPem('certificate', opts.certFile) } : {}),
      ...(opts.keyFile !== undefined ? { key: readPem('key', opts.keyFile) } : {}),
      // SNI carries names only (RFC 6066 §3); an IP address is still checked against the IP SANs.
      ...(isIP(name) === 0 ? { servername: name } : {}),
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
    }
  }

  protected override scheme(): string {
    return 'tls'
  }

  protected override openSocket(ready: () => void): net.Socket {
    const s = tls.connect({ host: this.host, port: this.port, ...this.local(), ...this.secure })
    // 'secureConnect' comes only after the certificate chain and name were verified (rejectUnauthorized).
    s.once('secureConnect', ready)
    return s
  }
}
