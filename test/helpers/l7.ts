// Drives an L7 parser the way src/l7/engine.ts does (buffering unconsumed bytes until `needed` are there),
// checking the ParseResult contract on every call (consumed <= len < consumed + needed), and builds DNS
// messages for the parser tests.
import { expect } from 'vitest'
import type { AnyL7Parser, L7Context, L7Dir, L7Parser } from '../../src/l7/parser.js'

export interface Collected<Tx> extends L7Context<Tx> {
  txs: Tx[]
  anomalies: string[]
  tsUs: number
}

export function collector<Tx>(): Collected<Tx> {
  const c: Collected<Tx> = {
    txs: [],
    anomalies: [],
    tsUs: 1,
    emit: (tx) => c.txs.push(tx),
    anomaly: (n) => c.anomalies.push(n),
  }
  return c
}

/** Per-direction buffering driver; returns false once the parser reported an error. */
export class Driver<Tx> {
  readonly ctx = collector<Tx>()
  readonly state: unknown
  private readonly pending: [Uint8Array, Uint8Array] = [new Uint8Array(0), new Uint8Array(0)]
  private readonly need = [0, 0]
  dead = false

  constructor(
    readonly parser: AnyL7Parser,
    transport: 'tcp' | 'udp' = 'tcp',
  ) {
    this.state = parser.newState(transport)
  }

  feed(dir: L7Dir, bytes: Uint8Array): void {
    if (this.dead) return
    const old = this.pending[dir]
    const buf = new Uint8Array(old.byteLength + bytes.byteLength)
    buf.set(old)
    buf.set(bytes, old.byteLength)
    this.pending[dir] = buf
    if (buf.byteLength < this.need[dir]!) return
    const r = this.parser.parse(this.state, dir, buf, this.ctx)
    this.need[dir] = 0
    this.pending[dir] = new Uint8Array(0)
    if (r.kind === 'incomplete') {
      expect(r.consumed).toBeGreaterThanOrEqual(0)
      expect(r.consumed).toBeLessThanOrEqual(buf.byteLength)
      expect(buf.byteLength).toBeLessThan(r.consumed + r.needed)
      this.pending[dir] = buf.slice(r.consumed)
      this.need[dir] = r.needed
    } else if (r.kind === 'error') {
      this.ctx.anomalies.push(r.anomaly)
      this.dead = true
    }
  }

  finish(): Tx[] {
    this.parser.finish(this.state, this.ctx)
    return this.ctx.txs
  }
}

/** Feeds `msgs` ([dir, bytes] in order) cut at the byte offsets `cuts` of their concatenation per direction. */
export function feedSplit<Tx>(
  parser: AnyL7Parser,
  msgs: ReadonlyArray<readonly [L7Dir, Uint8Array]>,
  cut: number,
): { txs: Tx[]; anomalies: string[] } {
  const d = new Driver<Tx>(parser)
  for (const [dir, m] of msgs) {
    const at = Math.min(cut, m.byteLength)
    d.feed(dir, m.subarray(0, at))
    d.feed(dir, m.subarray(at))
  }
  return { txs: d.finish(), anomalies: d.ctx.anomalies }
}

// DNS message building (RFC 1035 §4.1) -----------------------------------------------------------------

export function dnsName(name: string): number[] {
  const out: number[] = []
  if (name !== '')
    for (const label of name.split('.')) {
      out.push(label.length)
      for (const ch of label) out.push(ch.charCodeAt(0))
    }
  out.push(0)
  return out
}

export interface RR {
  name: number[] // encoded (may end in a pointer)
  type: number
  ttl?: number
  data: number[]
}

export function dnsMessage(o: {
  id: number
  flags: number
  questions?: Array<{ name: string; type: number; cls?: number }>
  answers?: RR[]
  authority?: RR[]
  additional?: RR[]
}): Uint8Array {
  const qs = o.questions ?? []
  const an = o.answers ?? []
  const ns = o.authority ?? []
  const ar = o.additional ?? []
  const b: number[] = []
  const u16 = (v: number): void => void b.push((v >> 8) & 0xff, v & 0xff)
  u16(o.id)
  u16(o.flags)
  u16(qs.length)
  u16(an.length)
  u16(ns.length)
  u16(ar.length)
  for (const q of qs) {
    b.push(...dnsName(q.name))
    u16(q.type)
    u16(q.cls ?? 1)
  }
  for (const r of [...an, ...ns, ...ar]) {
    b.push(...r.name)
    u16(r.type)
    u16(1)
    const ttl = r.ttl ?? 300
    u16(ttl >>> 16)
    u16(ttl & 0xffff)
    u16(r.data.length)
    b.push(...r.data)
  }
  return Uint8Array.from(b)
}

/** A 2-octet length prefix (DNS over TCP, RFC 1035 §4.2.2). */
export function tcpFrame(m: Uint8Array): Uint8Array {
  const out = new Uint8Array(m.byteLength + 2)
  out[0] = m.byteLength >> 8
  out[1] = m.byteLength & 0xff
  out.set(m, 2)
  return out
}

export const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

/**
 * `parser` without `skip` (nor gapsInSkip): every byte goes through parse, as before skipping existed, to
 * compare a parser's skipping with parsing every byte.
 */
export function withoutSkip<State, Tx>(parser: L7Parser<State, Tx>): L7Parser<State, Tx> {
  return {
    name: parser.name,
    transports: parser.transports,
    ports: parser.ports,
    probe: (b, d, t) => parser.probe(b, d, t),
    newState: (t) => parser.newState(t),
    parse: (s, d, b, ctx) => parser.parse(s, d, b, ctx),
    ...(parser.gap !== undefined
      ? { gap: (s: State, d: L7Dir, n: number, ctx: L7Context<Tx>) => parser.gap!(s, d, n, ctx) }
      : {}),
    wantsMore: (s) => parser.wantsMore(s),
    finish: (s, ctx) => parser.finish(s, ctx),
  }
}
