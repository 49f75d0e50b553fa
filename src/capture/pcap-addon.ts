/**
 * Loads flowtel's libpcap addon (native/pcap, built by scripts/build-native.mjs) and describes its API.
 *
 * The addon is optional at install time: when it is missing, `loadPcapAddon()` throws one clear error
 * saying how to build it, and `pcapAddonAvailable()` lets tests and the CLI check first.
 * FLOWTEL_NO_PCAP_ADDON=1 makes it behave as missing (to test the fallbacks on a machine that has it).
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** Options of one libpcap handle (pcap_create + pcap_set_* + pcap_activate + pcap_setfilter). */
export interface NativeCaptureOptions {
  snaplen?: number
  promiscuous?: boolean
  /** Kernel ring buffer size in bytes (pcap_set_buffer_size). */
  bufferBytes?: number
  /** pcap_set_timeout: how long the kernel may hold packets before handing a block over (ms). */
  timeoutMs?: number
  immediate?: boolean
  /** BPF filter (tcpdump syntax); '' or absent for everything. */
  filter?: string
}

/** One preallocated batch the capture thread fills; the arrays are shared with a PacketBatch. */
export interface NativeSlot {
  data: Uint8Array
  offset: Int32Array
  caplen: Int32Array
  origlen: Int32Array
  tsUs: Float64Array
}

export interface NativeCaptureStats {
  /** Packets the kernel saw that passed the filter (ps_recv). */
  received: number
  /** Packets dropped because the capture buffer was full (ps_drop). */
  kernelDrops: number
  /** Packets dropped by the interface or its driver (ps_ifdrop). */
  ifDrops: number
  /** Packets and captured bytes the capture thread put into batches. */
  packets: number
  bytes: number
  /** Packets that did not fit a batch (a guard; always 0). */
  overflow: number
}

export const MSG_BATCH = 0
export const MSG_ERROR = 1
export const MSG_END = 2

export interface NativeCapture {
  readonly linkType: number
  /** Effective snapshot length after activation. */
  readonly snaplen: number
  /** Whether timestamps come with nanosecond precision from the kernel. */
  readonly nanosecond: boolean
  /** Starts the capture thread; `callback(kind, slot, count, text)` is called once per batch, error or end. */
  start(
    slots: NativeSlot[],
    flushMs: number,
    callback: (kind: number, slot: number, count: number, text: string) => void,
  ): void
  /** Gives a slot handed out with MSG_BATCH back to the capture thread. */
  release(slot: number): void
  stats(): NativeCaptureStats
  /**
   * Ends the capture without losing what the kernel holds: the thread reads until the kernel's current block
   * is retired and nothing is left, hands over its last batch, then sends MSG_END. Idempotent.
   */
  drain(): void
  /** Stops and joins the capture thread and closes the handle. Idempotent. */
  close(): void
}

export interface PcapAddon {
  Capture: new (device: string, options: NativeCaptureOptions) => NativeCapture
  /** null when the filter compiles for the link type, else libpcap's message. */
  checkFilter(expression: string, linkType?: number, snaplen?: number): string | null
  /** if_nametoindex in this process's network namespace; 0 when there is no such interface. */
  nameToIndex(name: string): number
  /** getifaddrs(), unfiltered: family 0 is an interface's link entry, 4 and 6 its addresses. */
  interfaceAddresses(): NativeInterfaceAddress[]
  libVersion(): string
  /** A connected, non-blocking UDP socket sending bursts with sendmmsg (native/pcap/src/udp_socket.cc). */
  UdpSocket: new (remote: string, port: number, local: string) => NativeUdpSocket
}

export interface NativeUdpSocket {
  /**
   * Sends datagrams from..to-1, datagram i being data[ends[i-1] .. ends[i]) (ends[-1] = 0), in order.
   * Returns how many left (waiting at most waitMs in all while the send buffer is full), or -errno when
   * datagram `from` failed and was not sent.
   */
  send(data: Uint8Array, ends: Int32Array, from: number, to: number, waitMs: number): number
  /** Local address and port (getsockname); undefined once closed. */
  local(): { address: string; port: number } | undefined
  close(): void
}

export interface NativeInterfaceAddress {
  name: string
  /** IFF_* flags of the interface. */
  flags: number
  family: 0 | 4 | 6
  address: string
  /** -1 for family 0. */
  prefixLength: number
  scopeId: number
}

const here = path.dirname(fileURLToPath(import.meta.url))
/** src/capture or dist/capture: both sit two levels below the package root. */
export const ADDON_PATH = path.resolve(here, '../../native/pcap/build/Release/flowtel_pcap.node')

export const ADDON_MISSING_MESSAGE =
  'live capture needs the native pcap addon: install libpcap-dev and run npm rebuild'

let cached: PcapAddon | null = null
let loadError: Error | null = null

export function loadPcapAddon(): PcapAddon {
  if (cached !== null) return cached
  if (loadError !== null) throw loadError
  try {
    if (process.env['FLOWTEL_NO_PCAP_ADDON'] === '1') throw new Error('disabled by FLOWTEL_NO_PCAP_ADDON=1')
    const require = createRequire(import.meta.url)
    cached = require(ADDON_PATH) as PcapAddon
    return cached
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e)
    loadError = new Error(`${ADDON_MISSING_MESSAGE} (${why})`)
    throw loadError
  }
}

export function pcapAddonAvailable(): boolean {
  try {
    loadPcapAddon()
    return true
  } catch {
    return false
  }
}
