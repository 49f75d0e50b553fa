/**
 * @module l7/parser
 * The one parser interface every L7 protocol implements (see docs: architecture "L7 seam"), after Suricata's
 * `RustParser` (probe_ts / parse / get_tx) and Zeek's analyzer split: a parser knows nothing about flows,
 * caches or IPFIX, so it can be tested from bytes alone.
 *
 * - Selection is by content: `probe()` looks at the first payload of a flow (either direction, since a
 *   capture may start mid-stream); `ports` are only a hint that orders the candidates.
 * - TCP parsers get the reassembled byte stream of one direction (src/l7/reassembly.ts); UDP parsers get
 *   one datagram per call. A TCP parser returns `incomplete` with `consumed <= len < consumed + needed`
 *   (Suricata's AppLayerResult) and is called again once at least `needed` more bytes follow the consumed ones.
 * - Transactions (a DNS query and its response, an HTTP request and its response) leave through
 *   `ctx.emit`, each one as soon as it is complete; `finish` emits what is left when the flow ends.
 * - Malformed input never throws out of a parser: it is counted with `ctx.anomaly(name)` (snake_case names
 *   that double as metric labels) and, if the parser cannot go on, `error` stops L7 work on the flow.
 * - Hand-off: a parser whose protocol upgrades in band (SMTP STARTTLS, PostgreSQL SSLRequest...) returns
 *   `switchTo(name, consumed)` once the upgrade is agreed: the bytes of this direction from `consumed` on,
 *   and the unconsumed bytes of the other direction, go to a fresh state of parser `name`, which serves the
 *   rest of the flow (`name` '': the parser whose probe accepts the following bytes, as for a tunnel). Such
 *   a parser lists its targets in `upgradesTo` ('*': any); a parser that is only a way into others runs
 *   only when one of them is wanted.
 */

/** Direction of a byte stream relative to the flow initiator (same values as flow `Dir`). */
export const enum L7Dir {
  ToServer = 0, // initiator → responder
  ToClient = 1, // responder → initiator
}

export type L7Transport = 'tcp' | 'udp'

export type ParseResult =
  | { readonly kind: 'ok' } // all input consumed
  | { readonly kind: 'incomplete'; readonly consumed: number; readonly needed: number }
  | { readonly kind: 'error'; readonly anomaly: string } // stop parsing this flow
  | { readonly kind: 'switch'; readonly to: string; readonly consumed: number } // hand the flow on

export const OK: ParseResult = { kind: 'ok' }

export function incomplete(consumed: number, needed: number): ParseResult {
  return { kind: 'incomplete', consumed, needed: needed < 1 ? 1 : needed }
}

export function parseError(anomaly: string): ParseResult {
  return { kind: 'error', anomaly }
}

/** The flow continues as protocol `to` from byte `consumed` of this input (see the module comment). */
export function switchTo(to: string, consumed: number): ParseResult {
  return { kind: 'switch', to, consumed }
}

/** A byte budget (src/l7/reassembly.ts Budget): a reservation charges the flow's and the total budget. */
export interface L7Budget {
  reserve(n: number): boolean
  release(n: number): void
}

/** What a parser may do besides returning: emit transactions and count anomalies. */
export interface L7Context<Tx> {
  /** Capture time of the packet being parsed (µs since the epoch). */
  readonly tsUs: number
  emit(tx: Tx): void
  anomaly(name: string): void
  /**
   * The flow's byte budget (the engine's, shared with its reassembly and parser buffers): a parser that
   * keeps much parsed state between calls (TLS: handshake bytes, hello lists, certificate data) charges it
   * here, and releases it by `finish` at the latest. Absent (tests, QUIC/DTLS callers): nothing is charged.
   */
  readonly budget?: L7Budget
}

export interface L7Parser<State, Tx> {
  /** IANA-style protocol name: 'dns', 'http'. */
  readonly name: string
  readonly transports: readonly L7Transport[]
  /** Well-known ports: candidates whose port matches are probed first. probe() decides. */
  readonly ports: readonly number[]
  /** Parsers this one may hand the flow to (`switchTo`; '*': any, found by content). */
  readonly upgradesTo?: readonly string[]
  /** True when `bytes` (the start of a flow's payload in direction `dir`) looks like this protocol. */
  probe(bytes: Uint8Array, dir: L7Dir, transport: L7Transport): boolean
  newState(transport: L7Transport): State
  parse(state: State, dir: L7Dir, bytes: Uint8Array, ctx: L7Context<Tx>): ParseResult
  /**
   * After a parse that returned `ok`: how many of the following bytes of direction `dir` the parser would
   * only step over (an HTTP body; Infinity: all of them), now counted as consumed. The engine drops them
   * without calling parse, so bulk bodies cost no parser call per segment; a gap inside them only shortens
   * the count, and a gap past them is passed on (after which the parser resynchronises as usual). Absent or
   * 0: every byte is parsed.
   */
  skip?(state: State, dir: L7Dir): number
  /**
   * True when a gap inside the bytes `skip` counted goes to `gap` like any other (the parser's framing
   * depends on them: TLS records passed over), instead of only shortening the count.
   */
  readonly gapsInSkip?: boolean
  /** `size` bytes of direction `dir` were lost (TCP): resynchronise or give up. */
  gap?(state: State, dir: L7Dir, size: number, ctx: L7Context<Tx>): void
  /** False once the parser needs no more bytes (reassembly then stops for the flow). */
  wantsMore(state: State): boolean
  /** The flow ends: emit the transactions still open (queries without a response...). */
  finish(state: State, ctx: L7Context<Tx>): void
}

/** An L7 parser of any state and transaction type (the registry's element type). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyL7Parser = L7Parser<any, any>
