/**
 * A Transport decorator for the troubleshooting capture (issue 5): every send() goes to the inner transport
 * unchanged, and while a recorder is active the message is also handed to it together with the real local
 * and remote address/port of the inner transport's socket, so the recorder can write it as the packet that
 * went on the wire. While no capture runs the only cost is one property read and one branch per message.
 *
 * The inner transport counts everything (stats are its stats); the tap adds nothing to the IPFIX stream. It
 * also counts the template-only messages sent through it (first Set ID 2 or 3, RFC 7011 §3.3.2), which the
 * exporter counts only summed over destinations: two octets read per message, for the per-collector
 * template sends of the status.
 */
import type { Transport, TransportStats } from './transport.js'

/** Address and port of one side of a socket, as Node reports them. */
export interface SocketEndpoint {
  address: string
  port: number
}

/** What a recorder needs to synthesize the packet headers of a message. */
export interface SocketEndpoints {
  protocol: 'udp' | 'tcp'
  local: SocketEndpoint
  remote: SocketEndpoint
}

/** A transport that can tell its socket's endpoints (undefined while it has no connected socket). */
export interface HasSocketEndpoints {
  socketEndpoints(): SocketEndpoints | undefined
}

/** The recorder side of the tap: probe/debug-capture.ts implements it. */
export interface MessageRecorder {
  /** Checked on every send; a plain field in implementations so the inactive path stays one branch. */
  readonly active: boolean
  record(endpoints: SocketEndpoints, message: readonly Uint8Array[]): void
}

/** The Set ID of the first set of an IPFIX message given as chunks (octets 16-17), -1 when too short. */
export function firstSetId(message: readonly Uint8Array[]): number {
  // Fast paths for the exporter's shapes: the whole message, or a 16-octet header then the body.
  // (`length`, not `byteLength`: the same for Uint8Array, and a cheaper property read in V8.)
  const first = message[0]
  if (first === undefined) return -1
  if (first.length >= 18) return ((first[16] ?? 0) << 8) | (first[17] ?? 0)
  const second = message[1]
  if (first.length === 16 && second !== undefined && second.length >= 2)
    return ((second[0] ?? 0) << 8) | (second[1] ?? 0)
  let hi = -1
  let at = 16
  for (const c of message) {
    if (hi >= 0) {
      if (c.length > 0) return (hi << 8) | (c[0] ?? 0)
      continue
    }
    if (at + 1 < c.length) return ((c[at] ?? 0) << 8) | (c[at + 1] ?? 0)
    if (at < c.length) hi = c[at] ?? 0 // the two octets straddle this chunk and the next
    at -= c.length
  }
  return -1
}

function hasSocketEndpoints(t: Transport): t is Transport & HasSocketEndpoints {
  return typeof (t as Partial<HasSocketEndpoints>).socketEndpoints === 'function'
}

export class TransportTap implements Transport {
  /** Messages sent while recording that could not be recorded (the inner transport had no socket). */
  unrecorded = 0
  /** Template messages (the first set is a Template or Options Template Set) sent through this tap. */
  templateSends = 0
  private readonly endpoints: () => SocketEndpoints | undefined

  constructor(
    readonly inner: Transport,
    private readonly recorder: MessageRecorder,
    /** Where the socket endpoints come from; defaults to the inner transport's socketEndpoints(). */
    endpoints?: () => SocketEndpoints | undefined,
  ) {
    if (endpoints !== undefined) this.endpoints = endpoints
    else if (hasSocketEndpoints(inner)) this.endpoints = () => inner.socketEndpoints()
    else this.endpoints = () => undefined
  }

  get name(): string {
    return this.inner.name
  }

  get periodicTemplates(): boolean {
    return this.inner.periodicTemplates === true
  }

  get stats(): TransportStats {
    return this.inner.stats
  }

  open(): Promise<void> {
    return this.inner.open()
  }

  send(message: Uint8Array[]): void {
    this.inner.send(message)
    const setId = firstSetId(message)
    if (setId === 2 || setId === 3) this.templateSends++
    if (this.recorder.active) this.capture(message)
  }

  private capture(message: Uint8Array[]): void {
    const ep = this.endpoints()
    if (ep === undefined) this.unrecorded++
    else this.recorder.record(ep, message)
  }

  onNewSession(cb: () => void): void {
    this.inner.onNewSession(cb)
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
