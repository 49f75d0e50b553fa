/**
 * IPFIX over UDP (RFC 7011 §10.3): one datagram per message, an IPv4 or IPv6 socket by the resolved
 * address family. The host may be a name: it is resolved at open and again periodically (asynchronously,
 * keeping the old address if resolution fails). Templates are refreshed by the exporter (§8.4).
 *
 * Datagrams are sent without a completion callback: with one, Node schedules a nextTick per datagram,
 * which doubled the JavaScript cost of a send. Errors still reach the socket's 'error' event (an ICMP
 * port unreachable on the connected socket arrives there), and close() waits for the send queue.
 */
import dgram from 'node:dgram'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { SocketEndpoints } from './transport-tap.js'
import { chunksLength, type Transport, type TransportStats } from './transport.js'

export interface UdpTransportOptions {
  /** Re-resolve a host name this often (ms); 0 = never. Default 60 000. */
  resolveIntervalMs?: number
  /** Resolver, replaceable in tests. Default: dns.lookup (getaddrinfo, honours /etc/hosts). */
  resolve?: (host: string) => Promise<{ address: string; family: number }>
  /** Local address the datagrams leave from (HA pairs: each node its own); default chosen by the OS. */
  localAddress?: string
}

/** close() waits at most this long for queued datagrams, polling every DRAIN_POLL_MS. */
const CLOSE_DRAIN_MS = 5000
const DRAIN_POLL_MS = 2

const defaultResolve = async (host: string): Promise<{ address: string; family: number }> => {
  const r = await lookup(host)
  return { address: r.address, family: r.family }
}

export class UdpTransport implements Transport {
  readonly name: string
  readonly periodicTemplates = true
  readonly stats: TransportStats = { messages: 0, octets: 0, errors: 0, dropped: 0 }
  /** Resolver failures (the previous address is kept). */
  resolveErrors = 0
  private socket: dgram.Socket | undefined
  private address = ''
  private timer: NodeJS.Timeout | undefined
  private readonly resolve: (host: string) => Promise<{ address: string; family: number }>

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: UdpTransportOptions = {},
  ) {
    this.name = `udp://${host.includes(':') ? `[${host}]` : host}:${port}`
    this.resolve = opts.resolve ?? defaultResolve
  }

  /** The address datagrams currently go to. */
  get remoteAddress(): string {
    return this.address
  }

  /** Local and remote address/port of the connected socket (for the debug capture), undefined before open. */
  socketEndpoints(): SocketEndpoints | undefined {
    const s = this.socket
    if (s === undefined) return undefined
    try {
      const local = s.address()
      const remote = s.remoteAddress()
      return {
        protocol: 'udp',
        local: { address: local.address, port: local.port },
        remote: { address: remote.address, port: remote.port },
      }
    } catch {
      return undefined // closed meanwhile
    }
  }

  async open(): Promise<void> {
    const fam = isIP(this.host)
    if (fam !== 0) await this.setAddress(this.host, fam)
    else {
      const r = await this.resolve(this.host)
      await this.setAddress(r.address, r.family)
      const every = this.opts.resolveIntervalMs ?? 60_000
      if (every > 0) {
        this.timer = setInterval(() => void this.reResolve(), every)
        this.timer.unref()
      }
    }
  }

  private async reResolve(): Promise<void> {
    try {
      const r = await this.resolve(this.host)
      if (r.address !== this.address) await this.setAddress(r.address, r.family)
    } catch {
      this.resolveErrors++
    }
  }

  /**
   * Switch to a new destination. The socket is connected (send() then skips the per-datagram address
   * lookup and route selection); it replaces the old one only once connected, so no datagram is lost.
   */
  private async setAddress(address: string, family: number): Promise<void> {
    const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4')
    s.on('error', () => {
      this.stats.errors++
    })
    const local = this.opts.localAddress
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error): void => {
        s.close()
        const from = local !== undefined ? ` from ${local}` : ''
        reject(new Error(`${this.name}: cannot use ${address}${from}: ${err.message}`))
      }
      s.once('error', failed)
      const connect = (): void =>
        s.connect(this.port, address, () => {
          s.off('error', failed)
          resolve()
        })
      if (local !== undefined && local !== '') s.bind({ address: local, port: 0 }, connect)
      else connect()
    })
    s.unref()
    const old = this.socket
    this.socket = s
    this.address = address
    if (old !== undefined) old.close()
  }

  send(message: Uint8Array[]): void {
    const s = this.socket
    if (s === undefined) {
      this.stats.dropped++
      return
    }
    const n = chunksLength(message)
    this.stats.messages++
    this.stats.octets += n
    try {
      s.send(message.length === 1 ? message[0]! : message)
    } catch {
      this.stats.errors++
    }
  }

  /**
   * A datagram the kernel takes at once is copied into a socket buffer during the call; one it cannot take
   * (a full send buffer, or older datagrams waiting) is queued with a reference to `message`, and the
   * socket's send queue is then not empty.
   */
  sendReused(message: Uint8Array): boolean {
    this.send([message])
    const s = this.socket
    return s !== undefined && s.getSendQueueCount() > 0
  }

  onNewSession(_cb: () => void): void {
    // A UDP exporter has one session for its lifetime; the exporter refreshes templates periodically.
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    const s = this.socket
    this.socket = undefined
    if (s === undefined) return
    // Let queued datagrams (those the kernel could not take at once) leave before closing the socket.
    for (let waited = 0; s.getSendQueueCount() > 0 && waited < CLOSE_DRAIN_MS; waited += DRAIN_POLL_MS)
      await new Promise<void>((resolve) => setTimeout(resolve, DRAIN_POLL_MS))
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
}
