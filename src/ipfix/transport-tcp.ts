/**
 * IPFIX over TCP (RFC 7011 §10.4): messages back to back on one connection, framed by the header Length
 * (§10.4.3). The exporter initiates the connection and reconnects after it ends (§10.4.4).
 *
 * Session boundary: when a connection ends, everything not yet written is dropped (and counted), and
 * onNewSession callbacks run at once, so whatever the exporter sends afterwards (templates first, Sequence
 * Number from 0) is queued for the next connection. Messages sent before the first connection are queued
 * for it the same way. The queue is bounded in octets; beyond it messages are dropped and counted, and
 * because the exporter already numbered them, the collector sees the loss as a sequence gap (§10.4.1).
 *
 * Reconnect policy (documented deviation): exponential backoff from reconnectInitialMs (default 1 s) doubling
 * to reconnectMaxMs (default 60 s). RFC 7011 §10.4.4 says a default configuration MUST NOT try more than once
 * per minute; we retry faster at first so short collector restarts lose little data, and reach the
 * once-a-minute rate after 6 failures. Set reconnectInitialMs = 60 000 for strict behaviour. A connection
 * that ends within STABLE_MS of being set up counts as a failure too, so a collector that accepts and drops
 * at once (e.g. TLS 1.3 refusing the client certificate after the handshake) is retried with backoff.
 *
 * Subclasses change only how a connection is opened (openSocket, scheme): transport-tls.ts wraps it in TLS and
 * keeps the queueing, session and reconnect logic of this class.
 */
import net from 'node:net'
import type { SocketEndpoints } from './transport-tap.js'
import { chunksLength, DrainWaiters, type Transport, type TransportStats } from './transport.js'

/** A connection that lasted this long (ms) was a working session: the next reconnect starts the backoff afresh. */
const STABLE_MS = 10_000

export interface TcpTransportOptions {
  reconnectInitialMs?: number
  reconnectMaxMs?: number
  /** Cap on octets queued while disconnected or while the socket is not draining. Default 8 MiB. */
  maxQueueBytes?: number
  /** Give up a connection attempt after this long (ms). Default 10 000. */
  connectTimeoutMs?: number
  /** Local address the connection leaves from (HA pairs: each node its own); default chosen by the OS. */
  localAddress?: string
}

export class TcpTransport implements Transport {
  readonly name: string
  readonly stats: TransportStats = { messages: 0, octets: 0, errors: 0, dropped: 0 }
  /** Successful connections so far. */
  connections = 0
  /** Why the last connection attempt or connection failed (for logs and diagnostics). */
  lastError: string | undefined
  private readonly initialMs: number
  private readonly maxMs: number
  private readonly maxQueue: number
  private readonly connectTimeout: number
  private socket: net.Socket | undefined
  private connected = false
  /** The socket's write() returned false; wait for 'drain' before writing more. */
  private blocked = false
  /** Settled on 'drain' or when the connection ends. */
  private readonly drainWaiters = new DrainWaiters()
  private queue: Uint8Array[][] = []
  private queueBytes = 0
  private failures = 0
  private connectedAt = 0
  /** The delay (ms) before the reconnect attempt last scheduled (diagnostics). */
  retryDelayMs = 0
  private timer: NodeJS.Timeout | undefined
  private closing = false
  private readonly sessionCbs: (() => void)[] = []
  private firstAttempt: (() => void) | undefined

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: TcpTransportOptions = {},
  ) {
    this.name = `${this.scheme()}://${host.includes(':') ? `[${host}]` : host}:${port}`
    this.initialMs = opts.reconnectInitialMs ?? 1000
    this.maxMs = opts.reconnectMaxMs ?? 60_000
    this.maxQueue = opts.maxQueueBytes ?? 8 * 1024 * 1024
    this.connectTimeout = opts.connectTimeoutMs ?? 10_000
  }

  get isConnected(): boolean {
    return this.connected
  }

  /** Local and remote address/port of the connection (for the debug capture), undefined while not connected. */
  socketEndpoints(): SocketEndpoints | undefined {
    const s = this.socket
    if (!this.connected || s === undefined) return undefined
    const { localAddress, localPort, remoteAddress, remotePort } = s
    if (localAddress === undefined || localPort === undefined) return undefined
    if (remoteAddress === undefined || remotePort === undefined) return undefined
    return {
      protocol: 'tcp',
      local: { address: localAddress, port: localPort },
      remote: { address: remoteAddress, port: remotePort },
    }
  }

  /** Resolves after the first connection attempt, successful or not; retries continue in the background. */
  open(): Promise<void> {
    return new Promise((resolve) => {
      this.firstAttempt = resolve
      this.connect()
    })
  }

  /** URL scheme of `name` (called from the constructor: must not use instance fields). */
  protected scheme(): string {
    return 'tcp'
  }

  /**
   * Starts one connection attempt and calls `ready` once the socket may carry IPFIX messages (for TLS: after
   * the handshake and certificate checks). Errors are reported by the socket's 'error' and 'close' events.
   */
  /** The connect option for the source address, when one is set. */
  protected local(): { localAddress?: string } {
    const a = this.opts.localAddress
    return a !== undefined && a !== '' ? { localAddress: a } : {}
  }

  protected openSocket(ready: () => void): net.Socket {
    const s = net.createConnection({ host: this.host, port: this.port, ...this.local() })
    s.once('connect', ready)
    return s
  }

  private connect(): void {
    this.timer = undefined
    if (this.closing) return
    const s = this.openSocket(() => {
      s.setTimeout(0)
      this.connected = true
      this.blocked = false
      this.connectedAt = Date.now()
      this.connections++
      this.firstAttempt?.()
      this.firstAttempt = undefined
      this.drain()
    })
    this.socket = s
    s.setNoDelay(true)
    s.setTimeout(this.connectTimeout, () => {
      if (!this.connected) s.destroy(new Error('connect timeout'))
    })
    s.on('drain', () => {
      this.blocked = false
      this.drain()
      this.drainWaiters.wake()
    })
    s.on('error', (err) => {
      this.stats.errors++
      this.lastError = err.message
    })
    s.on('close', () => this.onClose(s))
    // The collector does not talk back (RFC 7011 §10.4); discard anything it sends.
    s.on('data', () => {})
  }

  private onClose(s: net.Socket): void {
    if (this.socket !== s) return
    this.drainWaiters.wake()
    const wasConnected = this.connected
    this.socket = undefined
    this.connected = false
    this.blocked = false
    this.firstAttempt?.()
    this.firstAttempt = undefined
    if (wasConnected) {
      // The session is over: what it did not write is lost, and the next session starts afresh.
      this.stats.dropped += this.queue.length
      this.queue = []
      this.queueBytes = 0
      for (const cb of this.sessionCbs) cb()
    }
    if (this.closing) return
    if (wasConnected && Date.now() - this.connectedAt >= STABLE_MS) this.failures = 0
    const delay = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.failures, 30))
    this.failures++
    this.retryDelayMs = delay
    this.timer = setTimeout(() => this.connect(), delay)
    this.timer.unref()
  }

  private drain(): void {
    const s = this.socket
    while (this.connected && !this.blocked && s !== undefined && this.queue.length > 0) {
      const m = this.queue.shift()
      if (m === undefined) break
      this.queueBytes -= chunksLength(m)
      this.write(s, m)
    }
  }

  private write(s: net.Socket, m: Uint8Array[]): void {
    let ok = true
    for (const c of m) ok = s.write(c)
    if (!ok) this.blocked = true
    this.stats.messages++
    this.stats.octets += chunksLength(m)
  }

  send(message: Uint8Array[]): void {
    const s = this.socket
    if (this.connected && !this.blocked && this.queue.length === 0 && s !== undefined) {
      this.write(s, message)
      return
    }
    const n = chunksLength(message)
    if (this.closing || this.queueBytes + n > this.maxQueue) {
      this.stats.dropped++
      return
    }
    this.queue.push(message)
    this.queueBytes += n
  }

  onNewSession(cb: () => void): void {
    this.sessionCbs.push(cb)
  }

  /**
   * While connected and the socket asks to drain: settles on 'drain' or when the connection ends. Not
   * while disconnected: a producer does not wait for a collector to come back (the queue's cap applies).
   */
  whenWritable(): Promise<void> | undefined {
    if (!this.connected || !this.blocked || this.closing) return undefined
    return this.drainWaiters.wait()
  }

  /** Writes what is queued if connected, then ends the connection (FIN) and stops reconnecting. */
  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.drainWaiters.wake()
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const s = this.socket
    if (s === undefined) {
      this.stats.dropped += this.queue.length
      this.queue = []
      return
    }
    if (!this.connected) {
      this.stats.dropped += this.queue.length
      this.queue = []
      s.destroy()
      return
    }
    for (const m of this.queue) this.write(s, m)
    this.queue = []
    this.queueBytes = 0
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => s.destroy(), 10_000)
      t.unref()
      s.once('close', () => {
        clearTimeout(t)
        resolve()
      })
      s.end()
    })
  }
}
