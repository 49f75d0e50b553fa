/**
 * Live listeners for the collector: UDP (RFC 7011 §10.3; NetFlow v9/v5 and sFlow on the same socket, the
 * version read from each datagram) and TCP (§10.4: messages framed by the IPFIX Length, all templates of a
 * connection withdrawn when it ends, §8.1). Addresses are `udp://HOST:PORT` / `tcp://HOST:PORT`, with IPv6 in
 * brackets; `[::]` listens on IPv6 and IPv4 (dual stack). Socket errors are counted, never thrown (standards
 * §5.2); a TCP connection that cannot be framed is closed (§9.1). Buffered TCP bytes are bounded by the framer
 * (one message, at most 65535 octets); connections are capped and idle ones closed (standards §5.3 #46).
 * UDP datagrams come through udp-receiver.ts: the native addon's recvmmsg thread in batches when it is built,
 * else Node's dgram; the kernel's receive-buffer drops are counted either way (issue #6: no silent loss).
 * `tls://HOST:PORT` is the TCP listener behind TLS (RFC 7011 §11: TLS 1.2+, certificate and key from PEM files;
 * with a client CA, exporters must present a certificate it signed, §11.3). Failed handshakes are counted.
 * A message whose output the sink throws on is counted (sink_errors), never lost with its batch or fatal.
 */
import { readFileSync } from 'node:fs'
import { createServer, type Server, type Socket as TcpSocket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { DecodeOutput, FlowCollector } from './decode-message.js'
import { sessionId, type SessionKey } from './session.js'
import { TcpFramer } from './tcp-framer.js'
import { openUdpReceiver, type UdpReceiverKind, type UdpReceiverOptions } from './udp-receiver.js'

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

/**
 * The sink behind a guard: a message whose output the sink cannot take is counted (`sink_errors`), so it
 * cannot abort the other datagrams of a native batch or end the process from a socket event.
 */
function guarded(sink: ListenerSink, count: (name: string) => void): ListenerSink {
  return (out) => {
    try {
      sink(out)
    } catch {
      count('sink_errors')
    }
  }
}

export interface Listener {
  readonly address: ListenAddress
  /** The port actually bound (useful with port 0). */
  readonly port: number
  /**
   * Counters: datagrams, socket_errors, receive_buffer_drops (UDP: the kernel's drops of the socket, receive
   * buffer full), connections and the TCP limits' refusals and idle closes, TLS handshake errors.
   */
  readonly counters: Record<string, number>
  /** UDP: the receive path in use (udp-receiver.ts). */
  readonly udpReceiver?: UdpReceiverKind
  close(): Promise<void>
}

export interface ListenOptions {
  /** TCP: connections kept at most; more are refused and counted (standards §5.3 #46). Default 1024. */
  maxConnections?: number
  /** TCP: a connection idle this long is closed (ms). Default 600 000. */
  idleTimeoutMs?: number
  /** Required for tls:// listeners. */
  tls?: TlsListenFiles
  /** UDP: the receive buffer asked for (SO_RCVBUF, bytes). Default 8 MiB (capped at net.core.rmem_max). */
  udpReceiveBufferBytes?: number
  /** UDP: 'auto' (default: the addon's recvmmsg thread when built, else Node's dgram), 'native' or 'dgram'. */
  udpReceiver?: UdpReceiverKind | 'auto'
  /** UDP, native receiver: batch time bound and queue sizes (udp-receiver.ts; tests use small ones). */
  udpTuning?: Pick<UdpReceiverOptions, 'flushMs' | 'slots' | 'slotDatagrams' | 'slotBytes'>
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
  return addr.protocol === 'udp'
    ? listenUdp(addr, collector, sink, opts)
    : listenTcp(addr, collector, sink, opts)
}

/** Bytes asked for the UDP socket's receive buffer (SO_RCVBUF) by default. */
const UDP_RECEIVE_BUFFER = 8 * 1024 * 1024

async function listenUdp(
  addr: ListenAddress,
  col: FlowCollector,
  unguarded: ListenerSink,
  opts: ListenOptions,
): Promise<Listener> {
  // Receive-buffer drops are shown even while there are none: counted, never silent (issue #6).
  const counters: Record<string, number> = { datagrams: 0, receive_buffer_drops: 0 }
  const count = (n: string): void => {
    counters[n] = (counters[n] ?? 0) + 1
  }
  const sink = guarded(unguarded, count)
  // The key of the last datagram's exporter, used again while the same exporter sends (the collector
  // finds its session by the key object without building the session id).
  let last: SessionKey | undefined
  let collectorAddress = ''
  let collectorPort = 0
  const onDatagram = (bytes: Uint8Array, address: string, port: number): void => {
    count('datagrams')
    const exporterAddress = plain(address)
    let key = last
    if (key === undefined || key.exporterPort !== port || key.exporterAddress !== exporterAddress)
      last = key = { exporterAddress, exporterPort: port, collectorAddress, collectorPort, protocol: 'udp' }
    sink(col.decode(bytes, key))
  }
  // A large receive buffer rides out bursts (template rounds, the application catalogue, many exporters
  // at once) while the receiving thread is busy; the kernel caps it at net.core.rmem_max. What it cannot
  // hold the kernel drops; those drops are counted (receive_buffer_drops), never silent.
  const receiver = await openUdpReceiver(
    {
      host: addr.host,
      port: addr.port,
      recvBufferBytes: opts.udpReceiveBufferBytes ?? UDP_RECEIVE_BUFFER,
      ...(opts.udpReceiver !== undefined ? { kind: opts.udpReceiver } : {}),
      ...opts.udpTuning,
      onError: (e, fatal) => {
        count('socket_errors')
        // The socket can no longer be read (the native receiver's thread ended): say so, not only count it.
        if (fatal) process.emitWarning(`collector listener stopped receiving: ${e.message}`)
      },
      onDrops: (total) => {
        counters['receive_buffer_drops'] = total
      },
    },
    onDatagram,
  )
  collectorAddress = plain(receiver.address)
  collectorPort = receiver.port
  return {
    address: addr,
    port: receiver.port,
    counters,
    udpReceiver: receiver.kind,
    close: () => receiver.close(),
  }
}

async function listenTcp(
  addr: ListenAddress,
  col: FlowCollector,
  unguarded: ListenerSink,
  opts: ListenOptions,
): Promise<Listener> {
  const maxConnections = opts.maxConnections ?? 1024
  const idleMs = opts.idleTimeoutMs ?? 600_000
  const counters: Record<string, number> = {}
  const count = (n: string): void => {
    counters[n] = (counters[n] ?? 0) + 1
  }
  const sink = guarded(unguarded, count)
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
