/**
 * The connected UDP socket behind the IPFIX/UDP transport (transport-udp.ts), in two kinds with one
 * interface: the native addon's (native/pcap/src/udp_socket.cc), which sends a burst in one sendmmsg call
 * (about 4.6 µs a datagram against Node dgram's 8 µs), and Node's dgram, used when the addon is not built.
 *
 * Native: a send buffer that stays full is waited on for at most SEND_WAIT_MS per burst, after which the
 * rest of the burst is dropped and counted; a datagram the kernel refuses (an ICMP error reported on the
 * connected socket, a route, a size) counts one error and is not sent.
 * dgram: datagrams are sent without a completion callback (with one, Node schedules a nextTick per datagram,
 * which doubled the JavaScript cost of a send); errors reach the socket's 'error' event, and close() can wait
 * for the send queue.
 */
import dgram from 'node:dgram'
import type { NativeUdpSocket } from '../capture/pcap-addon.js'
import type { SocketEndpoints } from './transport-tap.js'
import type { TransportStats } from './transport.js'

export type NativeSocketClass = new (remote: string, port: number, local: string) => NativeUdpSocket

export interface BurstSocket {
  /**
   * Sends datagrams 0..count-1 of `data` in order, datagram i being data[ends[i-1] .. ends[i]) (ends[-1] =
   * 0), counting errors and drops in `stats`. Returns true when the socket still holds references into
   * `data` (datagrams queued for later), so the caller must not overwrite it.
   */
  sendBurst(data: Uint8Array, ends: Int32Array, count: number, stats: TransportStats): boolean
  /** Local and remote address/port; undefined once closed. */
  endpoints(): SocketEndpoints | undefined
  /** Closes the socket, first waiting up to drainMs for what it still holds to leave. */
  close(drainMs: number): Promise<void>
}

/** The native socket waits this long at most per burst for room in a full send buffer. */
const SEND_WAIT_MS = 100
/** dgram's close() polls its send queue this often while it drains. */
const DRAIN_POLL_MS = 2

/**
 * A socket connected to address:port (bound to `local` when given), of the native kind when `Native` is
 * given, else dgram. Rejects with the system's reason; `stats.errors` counts dgram's later socket errors.
 */
export async function openBurstSocket(
  Native: NativeSocketClass | undefined,
  address: string,
  family: number,
  port: number,
  local: string | undefined,
  stats: TransportStats,
): Promise<BurstSocket> {
  if (Native !== undefined)
    return new NativeBurstSocket(new Native(address, port, local ?? ''), address, port)
  const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4')
  s.on('error', () => {
    stats.errors++
  })
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => {
      s.close()
      reject(err)
    }
    s.once('error', failed)
    const connect = (): void =>
      s.connect(port, address, () => {
        s.off('error', failed)
        resolve()
      })
    if (local !== undefined && local !== '') s.bind({ address: local, port: 0 }, connect)
    else connect()
  })
  s.unref()
  return new DgramBurstSocket(s)
}

class NativeBurstSocket implements BurstSocket {
  constructor(
    private readonly n: NativeUdpSocket,
    private readonly address: string,
    private readonly port: number,
  ) {}

  sendBurst(data: Uint8Array, ends: Int32Array, count: number, stats: TransportStats): boolean {
    let i = 0
    while (i < count) {
      const r = this.n.send(data, ends, i, count, SEND_WAIT_MS)
      if (r > 0) i += r
      else if (r < 0) {
        stats.errors++ // datagram i failed: it is not sent
        i++
      } else {
        stats.dropped += count - i // the send buffer stayed full
        break
      }
    }
    return false // sendmmsg copied what it sent
  }

  endpoints(): SocketEndpoints | undefined {
    const local = this.n.local()
    if (local === undefined) return undefined
    return { protocol: 'udp', local, remote: { address: this.address, port: this.port } }
  }

  close(): Promise<void> {
    this.n.close() // nothing is held: sendmmsg copied what it sent
    return Promise.resolve()
  }
}

class DgramBurstSocket implements BurstSocket {
  constructor(private readonly s: dgram.Socket) {}

  sendBurst(data: Uint8Array, ends: Int32Array, count: number, stats: TransportStats): boolean {
    for (let i = 0, start = 0; i < count; i++) {
      const end = ends[i]!
      try {
        this.s.send(data.subarray(start, end))
      } catch {
        stats.errors++
      }
      start = end
    }
    // A datagram the kernel could not take at once waits in the socket's queue with a reference into `data`.
    return this.s.getSendQueueCount() > 0
  }

  endpoints(): SocketEndpoints | undefined {
    try {
      const local = this.s.address()
      const remote = this.s.remoteAddress()
      return {
        protocol: 'udp',
        local: { address: local.address, port: local.port },
        remote: { address: remote.address, port: remote.port },
      }
    } catch {
      return undefined // closed meanwhile
    }
  }

  async close(drainMs: number): Promise<void> {
    const s = this.s
    for (let waited = 0; s.getSendQueueCount() > 0 && waited < drainMs; waited += DRAIN_POLL_MS)
      await new Promise<void>((resolve) => setTimeout(resolve, DRAIN_POLL_MS))
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
}
