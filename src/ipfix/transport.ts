/**
 * The Transport seam between the exporter and a Collecting Process (RFC 7011 §10): each Transport is one
 * transport session, so the exporter keeps one Sequence Number per Transport (§3.1, §10.3.2).
 */

export interface TransportStats {
  messages: number
  octets: number
  errors: number
  dropped: number
}

export interface Transport {
  /** For logs and metrics, e.g. 'udp://127.0.0.1:4739'. */
  readonly name: string
  /**
   * True when templates must be resent periodically (UDP, RFC 7011 §8.4). Undefined/false for
   * TCP (sent once per session) and files.
   */
  readonly periodicTemplates?: boolean
  open(): Promise<void>
  /** One complete IPFIX message as a list of chunks (header + body). Never throws; errors are counted. */
  send(message: Uint8Array[]): void
  /**
   * Optional: send one complete message from a buffer the caller overwrites with its next message (saves a
   * copy per message). Returns true when the transport still holds `message` after the call (e.g. a
   * datagram the kernel could not take at once waits in the socket's queue): the caller must then leave
   * that buffer alone. Never throws; errors are counted.
   */
  sendReused?(message: Uint8Array): boolean
  /**
   * Registers a callback for a session boundary: everything sent after the callback runs belongs to a new
   * transport session, so the exporter restarts that destination's Sequence Number at 0 and sends all
   * templates before any data (RFC 7011 §8.1, RFC 5153 §3.1).
   */
  onNewSession(cb: () => void): void
  /**
   * Optional backpressure for producers that can wait (the offline probe): a promise while the transport
   * holds output it cannot pass on yet (a stream or socket asking to drain), settled once there is room
   * again or the output is gone (closed, error, session lost). Undefined when there is room now.
   */
  whenWritable?(): Promise<void> | undefined
  close(): Promise<void>
  readonly stats: TransportStats
}

/**
 * The producers waiting on a transport's whenWritable: each wait() is a promise that the next wake()
 * settles (on 'drain', or when the output is gone).
 */
export class DrainWaiters {
  private resolvers: (() => void)[] = []

  wait(): Promise<void> {
    return new Promise((resolve) => this.resolvers.push(resolve))
  }

  wake(): void {
    if (this.resolvers.length === 0) return
    const settle = this.resolvers
    this.resolvers = []
    for (const resolve of settle) resolve()
  }
}

/**
 * Parses a collector address: 'host:port', 'fqdn:port' or '[v6]:port'. A bare port or an unbracketed IPv6
 * address is rejected with a message that says how to write it.
 */
export function parseCollectorAddress(s: string): { host: string; port: number } {
  const text = s.trim()
  let host: string
  let portText: string
  if (text.startsWith('[')) {
    const end = text.indexOf(']')
    if (end < 0) throw new Error(`collector address "${s}": missing "]" after IPv6 address`)
    host = text.slice(1, end)
    if (text.charAt(end + 1) !== ':') throw new Error(`collector address "${s}": expected ":port" after "]"`)
    portText = text.slice(end + 2)
    if (!host.includes(':')) throw new Error(`collector address "${s}": "${host}" is not an IPv6 address`)
  } else {
    const colon = text.lastIndexOf(':')
    if (colon < 0) throw new Error(`collector address "${s}": expected host:port`)
    host = text.slice(0, colon)
    portText = text.slice(colon + 1)
    if (host.includes(':'))
      throw new Error(`collector address "${s}": write IPv6 addresses in brackets, e.g. [::1]:4739`)
  }
  if (host === '') throw new Error(`collector address "${s}": empty host`)
  if (!/^[A-Za-z0-9._%:-]+$/.test(host)) throw new Error(`collector address "${s}": bad host "${host}"`)
  if (!/^\d{1,5}$/.test(portText)) throw new Error(`collector address "${s}": bad port "${portText}"`)
  const port = Number(portText)
  if (port < 1 || port > 65535) throw new Error(`collector address "${s}": port ${port} outside 1..65535`)
  return { host, port }
}

/** Total octets of a chunk list. */
export function chunksLength(chunks: readonly Uint8Array[]): number {
  let n = 0
  for (const c of chunks) n += c.byteLength
  return n
}
