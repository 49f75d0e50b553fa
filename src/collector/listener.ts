/**
 * Live listeners for the collector: UDP (RFC 7011 §10.3; NetFlow v9/v5 and sFlow on the same socket, the
 * version read from each datagram) and TCP (§10.4: messages framed by the IPFIX Length, all templates of a
 * connection withdrawn when it ends, §8.1). Addresses are `udp://HOST:PORT` / `tcp://HOST:PORT`, with IPv6 in
 * brackets; `[::]` listens on IPv6 and IPv4 (dual stack). Socket errors are counted, never thrown (standards
 * §5.2); a TCP connection that cannot be framed is closed (§9.1). Buffered TCP bytes are bounded by the framer
 * (one message, at most 65535 octets); connections are capped and idle ones closed (standards §5.3 #46).
 * `tls://HOST:PORT` is the TCP listener behind TLS (RFC 7011 §11: TLS 1.2+, certificate and key from PEM files;
 * with a client CA, exporters must present a certificate it signed, §11.3). Failed handshakes are counted.
 */
import { createSocket, type Socket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { createServer, type Server, type Socket as TcpSocket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { DecodeOutput, FlowCollector } from './decode-message.js'
import { sessionId, type SessionKey } from './session.js'
import { TcpFramer } from './tcp-framer.js'

export interface ListenAddress {
  readonly protocol: 'udp' | 'tcp' | 'tls'
  readonly host: string
  readonly port: number
}

/** Parses `udp://0.0.0.0:4739`, `tcp://[::1]:4739`, `tls://...`; throws an Error naming a malformed input. */
export function parseListen(url: string): ListenAddress {
  const m = /^(udp|tcp|tls):\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):(\d{1,5})$/.exec(url.trim())
  const port = Number(m?.[3])
  if (m === null || !(port >= 0 && port <= 65535))
    throw new Error(
      `bad listen address "${url}": expected udp://, tcp:// or tls://HOST:PORT ([v6] in brackets)`,
    )
  const host = (m[2] ?? '').replace(/^\[(.*)\]$/, '$1')
  return { protocol: m[1] as ListenAddress['protocol'], host, port }
}

/** IPv4-mapped IPv6 addresses (dual-stack sockets) as plain IPv4. */
function plain(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr
}

export type ListenerSink = (out: DecodeOutput) => void

export interface Listener {
  readonly address: ListenAddress
  /** The port actually bound (useful with port 0). */
  readonly port: number
  readonly counters: Record<string, number>
  close(): Promise<void>
}

export interface ListenOptions {
  /** TCP: connections kept at most; more are refused and counted (standards §5.3 #46). Default 1024. */
  maxConnections?: number
  /** TCP: a connection idle this long is closed (ms). Default 600 000. */
  idleTimeoutMs?: number
  /** Required for tls:// listeners. */
  tls?: TlsListenFiles
}

export interface TlsListenFiles {
  /** PEM certificate (chain) and private key of the collector. */
  certFile: string
  keyFile: string
  /** PEM CA file: when given, exporters must present a client certificate signed by it (mutual TLS). */
  clientCaFile?: string
}

function readPem(what: string, file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new Error(`TLS ${what} file "${file}": ${(err as Error).message}`)
  }
}

export async function listen(
  addr: ListenAddress,
  collector: FlowCollector,
  sink: ListenerSink,
  opts: ListenOptions = {},
): Promise<Listener> {
  return addr.protocol === 'udp' ? listenUdp(addr, collector, sink) : listenTcp(addr, collector, sink, opts)
}

/** Bytes asked for the UDP socket's receive buffer (SO_RCVBUF). */
const UDP_RECEIVE_BUFFER = 8 * 1024 * 1024

async function listenUdp(addr: ListenAddress, col: FlowCollector, sink: ListenerSink): Promise<Listener> {
  const v6 = addr.host.includes(':')
  // A large receive buffer rides out bursts (template rounds, the application catalogue, many exporters
  // at once) while the event loop is busy storing; the kernel caps it at net.core.rmem_max.
  const sock: Socket = createSocket({
    type: v6 ? 'udp6' : 'udp4',
    ipv6Only: false,
    reuseAddr: false,
    recvBufferSize: UDP_RECEIVE_BUFFER,
  })
  const counters: Record<string, number> = {}
  const count = (n: string): void => {
    counters[n] = (counters[n] ?? 0) + 1
  }
  sock.on('error', () => count('socket_errors'))
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject)
    sock.bind(addr.port, addr.host, () => {
      sock.off('error', reject)
      resolve()
    })
  })
  const local = sock.address()
  const collectorAddress = plain(local.address)
  // The key of the last datagram's exporter, used again while the same exporter sends (the collector
  // finds its session by the key object without building the session id).
  let last: SessionKey | undefined
  sock.on('message', (msg, rinfo) => {
    count('datagrams')
    const exporterAddress = plain(rinfo.address)
    let key = last
    if (key === undefined || key.exporterPort !== rinfo.port || key.exporterAddress !== exporterAddress)
      last = key = {
        exporterAddress,
        exporterPort: rinfo.port,
        collectorAddress,
        collectorPort: local.port,
        protocol: 'udp',
      }
    sink(col.decode(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), key))
  })
  return {
    address: addr,
    port: local.port,
    counters,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  }
}

async function listenTcp(
  addr: ListenAddress,
  col: FlowCollector,
  sink: ListenerSink,
  opts: ListenOptions,
): Promise<Listener> {
  const maxConnections = opts.maxConnections ?? 1024
  const idleMs = opts.idleTimeoutMs ?? 600_000
  const counters: Record<string, number> = {}
  const count = (n: string): void => {
    counters[n] = (counters[n] ?? 0) + 1
  }
  const conns = new Set<TcpSocket>()
  const onConnection = (c: TcpSocket): void => {
    if (conns.size >= maxConnections) {
      count('tcp_connections_refused')
      c.on('error', () => count('socket_errors'))
      c.destroy()
      return
    }
    conns.add(c)
    count('connections')
    c.setTimeout(idleMs, () => {
      count('tcp_idle_closed')
      c.destroy()
    })
    const key: SessionKey = {
      exporterAddress: plain(c.remoteAddress ?? ''),
      exporterPort: c.remotePort ?? 0,
      collectorAddress: plain(c.localAddress ?? ''),
      collectorPort: c.localPort ?? 0,
      protocol: 'tcp',
    }
    const framer = new TcpFramer()
    c.on('data', (chunk: Buffer) => {
      for (const m of framer.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)))
        sink(col.decode(m, key))
      if (framer.fault !== undefined) {
        count(framer.fault)
        c.destroy()
      }
    })
    c.on('error', () => count('socket_errors'))
    c.on('close', () => {
      conns.delete(c)
      if (framer.buffered > 0) count('tcp_partial_message_at_close')
      col.endSession(sessionId(key)) // the end of a TCP session withdraws its templates (§8.1)
    })
  }
  let server: Server
  if (addr.protocol === 'tls') {
    const t = opts.tls
    if (t === undefined) throw new Error(`listen ${addr.protocol}://: a TLS certificate and key are required`)
    const clientCa = t.clientCaFile
    const mutual = clientCa !== undefined
    server = createTlsServer(
      {
        minVersion: 'TLSv1.2',
        cert: readPem('certificate', t.certFile),
        key: readPem('key', t.keyFile),
        ...(mutual ? { ca: readPem('client CA', clientCa) } : {}),
        requestCert: mutual,
        rejectUnauthorized: mutual,
        handshakeTimeout: 10_000,
      },
      onConnection,
    )
    server.on('tlsClientError', () => count('tls_handshake_errors'))
    // Connections still in their handshake are capped too (the cap above counts established ones).
    server.maxConnections = maxConnections
    server.on('drop', () => count('tcp_connections_refused'))
  } else server = createServer(onConnection)
  server.on('error', () => count('socket_errors'))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: addr.port, host: addr.host, ipv6Only: false }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const a = server.address()
  return {
    address: addr,
    port: typeof a === 'object' && a !== null ? a.port : addr.port,
    counters,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.destroy()
        server.close(() => resolve())
      }),
  }
}
