// Builds the Ethernet/IPv4/TCP frames of one TCP connection (handshake, then payload segments in order with
// consecutive sequence numbers per direction) for probe runs over crafted captures.
import { TCP, eth, ipv4, tcp } from './packet-builder.js'

export interface Segment {
  /** Client → server (the initiator's direction). */
  up: boolean
  data: Uint8Array
}

export interface Conversation {
  client?: string
  server?: string
  cport: number
  sport: number
}

/** The frames of the connection: SYN, SYN/ACK, ACK, then one frame per segment. */
export function tcpConversation(c: Conversation, segs: readonly Segment[]): Uint8Array[] {
  const client = c.client ?? '10.0.0.1'
  const server = c.server ?? '10.0.0.2'
  const next = [100, 500]
  const frame = (
    up: boolean,
    seq: number,
    flags: number,
    payload: Uint8Array = new Uint8Array(0),
  ): Uint8Array =>
    eth(
      {},
      ipv4(
        { src: up ? client : server, dst: up ? server : client },
        tcp({ sport: up ? c.cport : c.sport, dport: up ? c.sport : c.cport, seq, flags, payload }),
      ),
    )
  const out = [frame(true, 99, TCP.SYN), frame(false, 499, TCP.SYN | TCP.ACK), frame(true, 100, TCP.ACK)]
  for (const s of segs) {
    const d = s.up ? 0 : 1
    out.push(frame(s.up, next[d]!, TCP.PSH | TCP.ACK, new Uint8Array(s.data)))
    next[d]! += s.data.byteLength
  }
  return out
}

/** Cuts every segment at byte `cut` (when inside it) into two segments, so messages arrive in pieces. */
export function splitSegments(segs: readonly Segment[], cut: number): Segment[] {
  return segs.flatMap((s) =>
    cut > 0 && cut < s.data.byteLength
      ? [
          { up: s.up, data: s.data.subarray(0, cut) },
          { up: s.up, data: s.data.subarray(cut) },
        ]
      : [s],
  )
}
