/**
 * The collector's UDP receive path (RFC 7011 §10.3: one IPFIX message per datagram; NetFlow and sFlow alike),
 * in two builds behind one interface:
 *
 * - native (default when the addon is built): the addon's UdpReceiver (native/pcap/src/udp_receiver.cc), a
 *   thread reading the socket with recvmmsg and handing JavaScript batches of datagrams copied into a few
 *   reused slots: one JavaScript wake-up per batch instead of one per datagram. A batch is handed over when
 *   its slot is full or `flushMs` (default 2 ms) after its first datagram, so a lone datagram waits at most
 *   that long. When JavaScript holds every slot the thread waits, the socket's receive buffer absorbs the
 *   burst and the kernel counts what it drops: memory stays bounded, loss is counted.
 * - dgram: Node's socket, one 'message' event per datagram (the fallback without the addon).
 *
 * `kind` picks one ('auto': native when built); FLOWTEL_UDP_RECEIVER=native|dgram overrides 'auto' (and
 * FLOWTEL_NO_PCAP_ADDON=1 makes the addon count as missing). Both bind dual-stack for `::` and report each
 * datagram's source with Node's address text (IPv4 plain, also from a dual-stack socket; IPv6 as
 * uv_inet_ntop writes it, link-local with `%interface`). Both count the kernel's receive-buffer drops of the socket (SO_RXQ_OVFL in the native
 * build, /proc/net/udp in both: read each second and at close).
 */
import { createSocket, type Socket } from 'node:dgram'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { loadPcapAddon } from '../capture/pcap-addon.js'
import { ownUdpSocketInode, udpSocketDrops } from './udp-drops.js'

export type UdpReceiverKind = 'native' | 'dgram'

/** One datagram: its bytes are valid during the call only (the native build reuses them). */
export type DatagramHandler = (bytes: Uint8Array, address: string, port: number) => void

export interface UdpReceiverOptions {
  /** Numeric address or host name (resolved to IPv4, as dgram's udp4 does); `::` is IPv6 and IPv4. */
  readonly host: string
  readonly port: number
  /** SO_RCVBUF asked for (the kernel caps it at net.core.rmem_max). */
  readonly recvBufferBytes: number
  /** 'auto' (default): native when the addon is built, else dgram; FLOWTEL_UDP_RECEIVER overrides it. */
  readonly kind?: UdpReceiverKind | 'auto'
  /** Native: a batch is handed over at most this long after its first datagram (ms). Default 2. */
  readonly flushMs?: number
  /** Native: batches held at once (the queue between the thread and JavaScript). Default 4. */
  readonly slots?: number
  /** Native: datagrams per batch at most. Default 1024. */
  readonly slotDatagrams?: number
  /** Native: bytes per batch (at least 65536). Default 1 MiB. */
  readonly slotBytes?: number
  /** A receive error; `fatal` when the socket is no longer read (the native thread stopped on it). */
  readonly onError?: (e: Error, fatal: boolean) => void
  /** Called with the socket's kernel drops so far whenever the known figure grows. */
  readonly onDrops?: (total: number) => void
  /** How often /proc/net/udp is read for the drop figure while open (ms; 0: only at close). Default 1000. */
  readonly dropsPollMs?: number
  /** Native, tests: called with each batch's datagram count before its datagrams are handed on. */
  readonly onBatch?: (count: number) => void
}

export interface UdpReceiver {
  readonly kind: UdpReceiverKind
  /** The bound address and port (as getsockname gives them). */
  readonly address: string
  readonly port: number
  /** The kernel's drops of this socket so far (receive buffer full). */
  drops(): number
  /** The receive buffer as the kernel reports it (SO_RCVBUF: twice what it granted). */
  recvBufferBytes(): number
  close(): Promise<void>
}

/** The addon's receiver (native/pcap/src/udp_receiver.cc). */
interface NativeUdpReceiver {
  start(
    slots: { data: Uint8Array; meta: Int32Array }[],
    flushMs: number,
    callback: (kind: number, slot: number, count: number, drops: number, text: string) => void,
  ): void
  release(slot: number): void
  stats(): {
    datagrams: number
    drops: number
    truncated: number
    errors: number
    recvBufferBytes: number
    inode: number
  }
  local(): { address: string; port: number } | undefined
  stop(): void
  close(): void
}
type NativeUdpReceiverClass = new (
  host: string,
  port: number,
  options: { recvBufferBytes: number },
) => NativeUdpReceiver

/** The addon's receiver class, or undefined when the addon (or this part of it) is not built. */
export function nativeUdpReceiverClass(): NativeUdpReceiverClass | undefined {
  try {
    const addon = loadPcapAddon() as unknown as { UdpReceiver?: NativeUdpReceiverClass }
    return addon.UdpReceiver
  } catch {
    return undefined
  }
}

function chooseKind(asked: UdpReceiverKind | 'auto' | undefined): UdpReceiverKind {
  const env = process.env['FLOWTEL_UDP_RECEIVER']
  const kind = asked ?? 'auto'
  if (kind !== 'auto') return kind
  if (env === 'native' || env === 'dgram') return env
  if (env !== undefined && env !== '' && env !== 'auto')
    throw new Error(`FLOWTEL_UDP_RECEIVER="${env}": expected native, dgram or auto`)
  return nativeUdpReceiverClass() !== undefined ? 'native' : 'dgram'
}

export async function openUdpReceiver(
  opts: UdpReceiverOptions,
  onDatagram: DatagramHandler,
): Promise<UdpReceiver> {
  const kind = chooseKind(opts.kind)
  const host = isIP(opts.host) === 0 ? (await lookup(opts.host, { family: 4 })).address : opts.host
  return kind === 'native' ? openNative(opts, host, onDatagram) : openDgram(opts, host, onDatagram)
}

/** How often the /proc drop figure is read while open (ms), by default. */
const DROPS_POLL_MS = 1000

/** Calls `read` every `ms` (not keeping the process alive); 0: never. Returns the stopper. */
function every(ms: number, read: () => void): () => void {
  if (ms <= 0) return () => {}
  const timer = setInterval(read, ms)
  timer.unref()
  return () => clearInterval(timer)
}

/** Keeps the larger of the drop figures seen (both sources count the same kernel counter). */
class DropTally {
  total = 0
  constructor(private readonly onDrops: ((total: number) => void) | undefined) {}
  see(n: number | undefined): void {
    if (n === undefined || n <= this.total) return
    this.total = n
    this.onDrops?.(n)
  }
}

// ---- native ----

const META_STRIDE = 8
const MSG_ERROR = 1

function openNative(opts: UdpReceiverOptions, host: string, onDatagram: DatagramHandler): UdpReceiver {
  const Native = nativeUdpReceiverClass()
  if (Native === undefined)
    throw new Error('the native UDP receiver needs the native addon: install libpcap-dev and run npm rebuild')
  const label = `udp://${host.includes(':') ? `[${host}]` : host}:${opts.port}`
  let n: NativeUdpReceiver
  try {
    n = new Native(host, opts.port, { recvBufferBytes: opts.recvBufferBytes })
  } catch (e) {
    throw new Error(`${label}: ${(e as Error).message}`, { cause: e })
  }
  const local = n.local() ?? { address: host, port: opts.port }
  const slotBytes = Math.max(65536, opts.slotBytes ?? 1 << 20)
  const slotDatagrams = Math.max(1, opts.slotDatagrams ?? 1024)
  const slots = Array.from({ length: Math.min(64, Math.max(1, opts.slots ?? 4)) }, () => ({
    data: new Uint8Array(slotBytes),
    meta: new Int32Array(slotDatagrams * META_STRIDE),
  }))
  const sources = new SourceNames()
  const tally = new DropTally(opts.onDrops)
  const inode = n.stats().inode
  let closed = false
  const onBatch = (kind: number, slot: number, count: number, drops: number, text: string): void => {
    if (closed) return
    tally.see(drops)
    if (kind === MSG_ERROR) {
      opts.onError?.(new Error(`${label}: ${text}`), true)
      return
    }
    const s = slots[slot]
    if (s === undefined) return
    const { data, meta } = s
    opts.onBatch?.(count)
    try {
      for (let i = 0, m = 0; i < count && !closed; i++, m += META_STRIDE) {
        const off = meta[m]!
        const address = sources.name(meta[m + 4]!, meta[m + 5]!, meta[m + 6]!, meta[m + 7]!, meta[m + 3]!)
        onDatagram(data.subarray(off, off + meta[m + 1]!), address, meta[m + 2]!)
      }
    } finally {
      n.release(slot)
    }
  }
  n.start(slots, Math.max(1, opts.flushMs ?? 2), onBatch)
  const stopPolling = every(opts.dropsPollMs ?? DROPS_POLL_MS, () => tally.see(udpSocketDrops(inode)))
  return {
    kind: 'native',
    address: local.address,
    port: local.port,
    drops: () => tally.total,
    recvBufferBytes: () => n.stats().recvBufferBytes,
    close: () => {
      if (!closed) {
        closed = true
        stopPolling()
        n.stop() // joins the thread; the socket stays open for its last drop figure
        tally.see(n.stats().drops)
        tally.see(udpSocketDrops(inode))
        n.close()
      }
      return Promise.resolve()
    },
  }
}

/**
 * Source address text from the four big-endian words of an IPv6 (or IPv4-mapped) address, as Node's dgram
 * reports it, with the last few names kept.
 */
class SourceNames {
  private w0 = -1
  private w1 = -1
  private w2 = -1
  private w3 = -1
  private scope = -1
  private last = ''
  private readonly cache = new Map<string, string>()

  name(w0: number, w1: number, w2: number, w3: number, scope: number): string {
    if (w3 === this.w3 && w2 === this.w2 && w1 === this.w1 && w0 === this.w0 && scope === this.scope)
      return this.last
    const key = `${w0} ${w1} ${w2} ${w3} ${scope}`
    let text = this.cache.get(key)
    if (text === undefined) {
      text = addressText(w0, w1, w2, w3, scope)
      if (this.cache.size >= 4096) this.cache.clear()
      this.cache.set(key, text)
    }
    this.w0 = w0
    this.w1 = w1
    this.w2 = w2
    this.w3 = w3
    this.scope = scope
    this.last = text
    return text
  }
}

/** Dotted IPv4 text of a 32-bit word. */
function ipv4Text(w: number): string {
  return `${(w >>> 24) & 255}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`
}

/**
 * IPv6 text as libuv's uv_inet_ntop writes it (what dgram's rinfo.address and net.SocketAddress show): the
 * longest run of two or more zero groups (the first of equal ones) as `::`, IPv4-compatible (::a.b.c.d)
 * and IPv4-mapped (::ffff:a.b.c.d) addresses with a dotted tail.
 */
export function ipv6Text(w0: number, w1: number, w2: number, w3: number): string {
  const words = [
    w0 >>> 16,
    w0 & 0xffff,
    w1 >>> 16,
    w1 & 0xffff,
    w2 >>> 16,
    w2 & 0xffff,
    w3 >>> 16,
    w3 & 0xffff,
  ]
  let bestBase = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) {
      bestBase = i
      bestLen = j - i
    }
    i = j
  }
  if (bestLen < 2) bestBase = -1
  let out = ''
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':'
      continue
    }
    if (i !== 0) out += ':'
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff)))
      return out + ipv4Text(w3 >>> 0)
    out += words[i]!.toString(16)
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ':'
  return out
}

/** A source address as Node reports it: IPv4-mapped as plain IPv4, link-local IPv6 with `%interface`. */
function addressText(w0: number, w1: number, w2: number, w3: number, scope: number): string {
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) return ipv4Text(w3 >>> 0)
  const text = ipv6Text(w0, w1, w2, w3)
  const linkLocal = w0 >>> 22 === 0x3fa // fe80::/10
  return linkLocal && scope > 0 ? `${text}%${interfaceName(scope)}` : text
}

/** The interface with this index (IPv6 scope id), else the index as text (as libuv falls back to). */
function interfaceName(scope: number): string {
  for (const [name, addrs] of Object.entries(networkInterfaces()))
    if (addrs?.some((a) => a.family === 'IPv6' && a.scopeid === scope)) return name
  return String(scope)
}

// ---- dgram ----

/** IPv4-mapped IPv6 text (a dual-stack socket's IPv4 sources) as plain IPv4, as the native build gives it. */
function plainIpv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

async function openDgram(
  opts: UdpReceiverOptions,
  host: string,
  onDatagram: DatagramHandler,
): Promise<UdpReceiver> {
  const sock: Socket = createSocket({
    type: host.includes(':') ? 'udp6' : 'udp4',
    ipv6Only: false,
    reuseAddr: false,
    recvBufferSize: opts.recvBufferBytes,
  })
  sock.on('error', (e) => opts.onError?.(e, false))
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject)
    sock.bind(opts.port, host, () => {
      sock.off('error', reject)
      resolve()
    })
  })
  const local = sock.address()
  const tally = new DropTally(opts.onDrops)
  const inode = ownUdpSocketInode(local.port)
  const readDrops = (): void => {
    if (inode !== undefined) tally.see(udpSocketDrops(inode))
  }
  const stopPolling = every(opts.dropsPollMs ?? DROPS_POLL_MS, readDrops)
  // A plain Uint8Array view: the decoder copies with slice(), which on a Buffer would be a view instead.
  sock.on('message', (msg, rinfo) =>
    onDatagram(
      new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength),
      plainIpv4(rinfo.address),
      rinfo.port,
    ),
  )
  let closed = false
  return {
    kind: 'dgram',
    address: local.address,
    port: local.port,
    drops: () => tally.total,
    recvBufferBytes: () => (closed ? 0 : sock.getRecvBufferSize()),
    close: () => {
      if (closed) return Promise.resolve()
      closed = true
      stopPolling()
      readDrops()
      return new Promise<void>((resolve) => sock.close(() => resolve()))
    },
  }
}
