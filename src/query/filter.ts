/**
 * The flow filter language, read like nfdump's (nfdump(1) "FILTER"): predicates joined by `and`, `or`,
 * `not` and parentheses, parsed into an AST that query/sql.ts compiles to SQL with bound parameters.
 *
 *   [src|dst] ip|host ADDR        [src|dst] net CIDR           [src|dst] port [OP] N
 *   proto tcp|udp|icmp|icmp6|N    flags [FSRPAUEC]+            bytes|packets|flows... OP N[k|m|g]
 *   app NAME | app ~ "GLOB"       exporter ADDR                vlan [OP] N    [in|out] if [OP] N
 *   [in|out] if NAME | [in|out] if ~ "GLOB"  (interface names)  vrf NAME | vrf ~ "GLOB" (ingress or egress)
 *   app_category, app_description, in_if_name, out_if_name, in_if_description, out_if_description,
 *   vrf_name, out_vrf_name (text), sampling_rate (number): fields joined from the exporters' options data
 *   (query/joined.ts); `app NAME` matches the flow's applicationName, else the name its applicationId has
 *   in the exporter's RFC 6759 options (what `flowtel query` shows as app_name).
 *   COLUMN OP VALUE | COLUMN ~ "GLOB"   (any column of schema/columns.ts, e.g. npm_tcp_retransmission > 0;
 *                                       L7 ones also dotted: http.status >= 500, tls.sni ~ "*.example.com")
 *
 * OP is = == != < > <= >=; `bytes` and `packets` count both directions. `and` binds tighter than `or`;
 * `&&`, `||` and `!` are accepted too. Errors are FilterError with the 0-based offset of the bad token.
 */
import { COLUMN_BY_NAME } from '../schema/columns.js'
import { JOINED_BY_NAME } from './joined.js'
import { cidrRange, ipKey } from '../schema/ip-key.js'

export type Direction = 'src' | 'dst' | 'any'
export type CompareOp = '=' | '!=' | '<' | '>' | '<=' | '>='

export type FilterExpr =
  | { readonly type: 'and' | 'or'; readonly left: FilterExpr; readonly right: FilterExpr }
  | { readonly type: 'not'; readonly expr: FilterExpr }
  | { readonly type: 'ip'; readonly dir: Direction; readonly key: bigint }
  | { readonly type: 'net'; readonly dir: Direction; readonly lo: bigint; readonly hi: bigint }
  /** `field` is a column name or one of the virtual fields `total_bytes`, `total_packets`. */
  | {
      readonly type: 'cmp'
      readonly field: string
      readonly op: CompareOp
      readonly value: bigint | string | boolean
      /** Text compared without regard to case (`app NAME`). */
      readonly caseless?: boolean
    }
  | { readonly type: 'glob'; readonly field: string; readonly pattern: string }
  | { readonly type: 'flags'; readonly mask: number }

/** Characters of the filter the error message shows either side of the fault's position at most. */
export const ERROR_CONTEXT = 60

/**
 * A filter that cannot be parsed: the reason, the position, and (in the message) the filter with a caret
 * under the position; a long filter is shown as the ERROR_CONTEXT characters either side, cut with "…",
 * so the message stays a few lines whatever the input (`input` keeps the whole filter).
 */
export class FilterError extends Error {
  constructor(
    readonly reason: string,
    readonly position: number,
    readonly input: string,
  ) {
    const from = Math.max(0, position - ERROR_CONTEXT)
    const to = Math.min(input.length, position + ERROR_CONTEXT)
    const head = from > 0 ? '…' : ''
    const shown = head + input.slice(from, to) + (to < input.length ? '…' : '')
    super(
      `${reason} at position ${position + 1}\n  ${shown}\n  ${' '.repeat(head.length + position - from)}^`,
    )
    this.name = 'FilterError'
  }
}

/** A token's text as an error message quotes it: JSON, cut to 40 characters. */
const quoted = (text: string): string =>
  text.length > 40
    ? `${JSON.stringify(text.slice(0, 40)).slice(0, -1)}…" (${text.length} characters)`
    : JSON.stringify(text)

interface Token {
  readonly kind: 'word' | 'string' | 'op' | 'paren' | 'end'
  readonly text: string
  readonly pos: number
}

const OPS = ['==', '!=', '<=', '>=', '&&', '||', '=', '<', '>', '~', '!']

function lex(input: string): Token[] {
  const out: Token[] = []
  let i = 0
  while (i < input.length) {
    const c = input[i] ?? ''
    if (/\s/.test(c)) {
      i++
      continue
    }
    if (c === '(' || c === ')') {
      out.push({ kind: 'paren', text: c, pos: i++ })
      continue
    }
    if (c === '"' || c === "'") {
      const start = i++
      let s = ''
      while (i < input.length && input[i] !== c) {
        if (input[i] === '\\' && i + 1 < input.length) i++
        s += input[i++] ?? ''
      }
      if (i >= input.length) throw new FilterError('unterminated string', start, input)
      i++
      out.push({ kind: 'string', text: s, pos: start })
      continue
    }
    const op = OPS.find((o) => input.startsWith(o, i))
    if (op !== undefined) {
      out.push({ kind: 'op', text: op, pos: i })
      i += op.length
      continue
    }
    const m = /^[A-Za-z0-9_.:/*?-]+/.exec(input.slice(i))
    if (m === null) throw new FilterError(`unexpected character ${JSON.stringify(c)}`, i, input)
    out.push({ kind: 'word', text: m[0], pos: i })
    i += m[0].length
  }
  out.push({ kind: 'end', text: '', pos: input.length })
  return out
}

const PROTOCOLS: Record<string, number> = {
  icmp: 1,
  igmp: 2,
  ipip: 4,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  icmp6: 58,
  ipv6icmp: 58,
  sctp: 132,
}

const FLAG_BITS: Record<string, number> = { F: 1, S: 2, R: 4, P: 8, A: 16, U: 32, E: 64, C: 128 }

/** Words that cannot be a column name in a comparison (keywords of the language). */
const KEYWORDS = new Set([
  'and',
  'or',
  'not',
  'src',
  'dst',
  'ip',
  'host',
  'net',
  'port',
  'proto',
  'flags',
  'if',
])

/**
 * Bounds on a filter's size: parentheses and `not` nested at most MAX_FILTER_DEPTH deep, at most
 * MAX_FILTER_TERMS terms. The parser, the SQL compiler and the stores recurse over the tree (DuckDB and
 * ClickHouse refuse expressions nested about 1000 deep), so a bigger filter is a FilterError, not a stack
 * overflow or a database parser error.
 */
export const MAX_FILTER_DEPTH = 256
export const MAX_FILTER_TERMS = 1024

class Parser {
  private i = 0
  private depth = 0
  private terms = 0
  constructor(
    private readonly toks: Token[],
    private readonly input: string,
  ) {}

  private peek(): Token {
    return this.toks[this.i] ?? { kind: 'end', text: '', pos: this.input.length }
  }
  private next(): Token {
    const t = this.peek()
    if (t.kind !== 'end') this.i++
    return t
  }
  private fail(reason: string, t: Token = this.peek()): never {
    const what = t.kind === 'end' ? 'end of filter' : quoted(t.text)
    throw new FilterError(`${reason}, found ${what}`, t.pos, this.input)
  }
  private isWord(...words: string[]): boolean {
    const t = this.peek()
    return t.kind === 'word' && words.includes(t.text.toLowerCase())
  }

  parse(): FilterExpr {
    const e = this.or()
    if (this.peek().kind !== 'end') this.fail('expected "and", "or" or the end of the filter')
    return e
  }

  private or(): FilterExpr {
    let left = this.and()
    while (this.isWord('or') || (this.peek().kind === 'op' && this.peek().text === '||')) {
      this.next()
      left = { type: 'or', left, right: this.and() }
    }
    return left
  }

  private and(): FilterExpr {
    let left = this.unary()
    while (this.isWord('and') || (this.peek().kind === 'op' && this.peek().text === '&&')) {
      this.next()
      left = { type: 'and', left, right: this.unary() }
    }
    return left
  }

  private unary(): FilterExpr {
    const t = this.peek()
    const not = this.isWord('not') || (t.kind === 'op' && t.text === '!')
    if (not || (t.kind === 'paren' && t.text === '(')) {
      if (++this.depth > MAX_FILTER_DEPTH)
        throw new FilterError(`nested deeper than ${MAX_FILTER_DEPTH} levels`, t.pos, this.input)
      this.next()
      let e: FilterExpr
      if (not) e = { type: 'not', expr: this.unary() }
      else {
        e = this.or()
        const close = this.peek()
        if (close.kind !== 'paren' || close.text !== ')') this.fail('expected ")"')
        this.next()
      }
      this.depth--
      return e
    }
    if (++this.terms > MAX_FILTER_TERMS)
      throw new FilterError(`more than ${MAX_FILTER_TERMS} terms`, t.pos, this.input)
    return this.predicate()
  }

  private word(what: string): Token {
    const t = this.peek()
    if (t.kind !== 'word' && t.kind !== 'string') this.fail(`expected ${what}`)
    return this.next()
  }

  private op(optional: boolean): CompareOp {
    const t = this.peek()
    if (t.kind === 'op' && ['=', '==', '!=', '<', '>', '<=', '>='].includes(t.text)) {
      this.next()
      return t.text === '==' ? '=' : (t.text as CompareOp)
    }
    if (this.isWord('eq', 'gt', 'lt', 'ne')) {
      const w = this.next().text.toLowerCase()
      return ({ eq: '=', gt: '>', lt: '<', ne: '!=' } as const)[w as 'eq' | 'gt' | 'lt' | 'ne']
    }
    if (optional) return '='
    return this.fail('expected a comparison (= != < > <= >=)')
  }

  private number(what: string, max: bigint, suffixes = false): bigint {
    const t = this.word(what)
    const m = /^(\d+)([kmgKMG]?)$/.exec(t.text)
    if (m === null || (!suffixes && m[2] !== '')) this.fail(`expected ${what}`, t)
    const mult = { '': 1n, k: 1000n, m: 1_000_000n, g: 1_000_000_000n }[(m[2] ?? '').toLowerCase()] ?? 1n
    const n = BigInt(m[1] ?? '0') * mult
    if (n > max) this.fail(`${what} out of range (at most ${max})`, t)
    return n
  }

  private predicate(): FilterExpr {
    let dir: Direction = 'any'
    if (this.isWord('src', 'dst')) dir = this.next().text.toLowerCase() as Direction
    const t = this.peek()
    if (t.kind !== 'word') this.fail('expected a filter term (ip, net, port, proto, bytes, ...)')
    const kw = t.text.toLowerCase()
    switch (kw) {
      case 'ip':
      case 'host': {
        this.next()
        const a = this.word('an IP address')
        const key = ipKey(a.text)
        if (key === undefined) this.fail('expected an IPv4 or IPv6 address', a)
        return { type: 'ip', dir, key }
      }
      case 'net': {
        this.next()
        const a = this.word('a prefix like 10.0.0.0/8')
        const r = cidrRange(a.text)
        if (r === undefined) this.fail('expected a prefix like 10.0.0.0/8 or 2001:db8::/32', a)
        return { type: 'net', dir, lo: r.lo, hi: r.hi }
      }
      case 'port': {
        this.next()
        const op = this.op(true)
        const value = this.number('a port number', 65535n)
        return this.directed(dir, 'src_port', 'dst_port', op, value)
      }
      case 'if': {
        this.next()
        if (this.isInterfaceName()) return this.either(dir, 'in_if_name', 'out_if_name')
        const op = this.op(true)
        const value = this.number('an interface number', 0xffffffffn)
        return this.directed(dir, 'in_if', 'out_if', op, value)
      }
      case 'in':
      case 'out': {
        this.next()
        if (!this.isWord('if')) this.fail('expected "if"')
        this.next()
        if (this.isInterfaceName()) return this.textTerm(kw === 'in' ? 'in_if_name' : 'out_if_name')
        const op = this.op(true)
        const value = this.number('an interface number', 0xffffffffn)
        return { type: 'cmp', field: kw === 'in' ? 'in_if' : 'out_if', op, value }
      }
    }
    if (dir !== 'any') this.fail('expected ip, host, net, port or if after src/dst', t)
    this.next()
    switch (kw) {
      case 'proto': {
        const p = this.word('a protocol name or number')
        const name = p.text.toLowerCase()
        const n =
          PROTOCOLS[name] ?? (/^\d{1,3}$/.test(name) && Number(name) <= 255 ? Number(name) : undefined)
        if (n === undefined) this.fail('expected tcp, udp, icmp, icmp6, ... or a number 0-255', p)
        return { type: 'cmp', field: 'proto', op: '=', value: BigInt(n) }
      }
      case 'flags': {
        const f = this.word('TCP flags like SA')
        let mask = 0
        for (const ch of f.text.toUpperCase()) {
          const bit = FLAG_BITS[ch]
          if (bit === undefined) this.fail('expected TCP flags from FSRPAUEC', f)
          mask |= bit
        }
        return { type: 'flags', mask }
      }
      case 'bytes':
      case 'packets':
        return {
          type: 'cmp',
          field: kw === 'bytes' ? 'total_bytes' : 'total_packets',
          op: this.op(false),
          value: this.number('a number', (1n << 64n) - 1n, true),
        }
      case 'app': {
        const e = this.textTerm('app_name')
        return e.type === 'cmp' ? { ...e, caseless: true } : e
      }
      case 'vrf':
        return this.either('any', 'vrf_name', 'out_vrf_name')
      case 'exporter': {
        const a = this.word('an exporter address')
        return { type: 'cmp', field: 'exporter', op: '=', value: a.text }
      }
      case 'vlan':
        return { type: 'cmp', field: 'vlan', op: this.op(true), value: this.number('a VLAN id', 4095n) }
    }
    // Fields joined from the options table (query/joined.ts): in_if_name, app_category, sampling_rate, ...
    const joined = JOINED_BY_NAME.get(kw)
    if (joined !== undefined) {
      if (joined.kind === 'text') return this.textTerm(joined.name)
      return {
        type: 'cmp',
        field: joined.name,
        op: this.op(false),
        value: this.number('a number', (1n << 64n) - 1n, true),
      }
    }
    // Dotted names are the L7 columns: http.status → http_status, tls.sni → tls_sni.
    const col = COLUMN_BY_NAME.get(kw.replace(/\./g, '_'))
    if (col === undefined || KEYWORDS.has(kw) || col.kind === 'json' || col.kind === 'ipkey')
      this.fail('unknown filter term', t)
    if (col.kind === 'text') return this.textTerm(col.name)
    if (col.kind === 'bool') {
      const op = this.op(false)
      if (op !== '=' && op !== '!=') this.fail('a boolean takes = or !=')
      const v = this.word('true or false')
      const b = v.text.toLowerCase()
      if (b !== 'true' && b !== 'false') this.fail('expected true or false', v)
      return { type: 'cmp', field: col.name, op, value: b === 'true' }
    }
    if (col.kind === 'time') this.fail('use --since/--until for times', t)
    return {
      type: 'cmp',
      field: col.name,
      op: this.op(false),
      value: this.number('a number', (1n << 64n) - 1n, true),
    }
  }

  /** After `if`: a name (a word that is no number, a quoted string, or `~ "GLOB"`) rather than a number. */
  private isInterfaceName(): boolean {
    const t = this.peek()
    const v = t.kind === 'op' && t.text !== '~' ? this.toks[this.i + 1] : t
    if (t.kind === 'op' && t.text === '~') return true
    return v !== undefined && (v.kind === 'string' || (v.kind === 'word' && !/^\d+$/.test(v.text)))
  }

  /** A text term on `src` and/or `dst` field by direction (any: either matches). */
  private either(dir: Direction, src: string, dst: string): FilterExpr {
    const start = this.i
    const a = this.textTerm(src)
    if (dir === 'src') return a
    const end = this.i
    this.i = start
    const b = this.textTerm(dst)
    this.i = end
    return dir === 'dst' ? b : { type: 'or', left: a, right: b }
  }

  /** `FIELD [=|!=] WORD` or `FIELD ~ "GLOB"` on a text column. */
  private textTerm(field: string): FilterExpr {
    const t = this.peek()
    if (t.kind === 'op' && t.text === '~') {
      this.next()
      return { type: 'glob', field, pattern: this.word('a pattern').text }
    }
    const op = this.op(true)
    if (op !== '=' && op !== '!=') this.fail('text takes =, != or ~', t)
    return { type: 'cmp', field, op, value: this.word('a value').text }
  }

  private directed(dir: Direction, src: string, dst: string, op: CompareOp, value: bigint): FilterExpr {
    if (dir === 'src') return { type: 'cmp', field: src, op, value }
    if (dir === 'dst') return { type: 'cmp', field: dst, op, value }
    return {
      type: 'or',
      left: { type: 'cmp', field: src, op, value },
      right: { type: 'cmp', field: dst, op, value },
    }
  }
}

/** Parses a filter expression; throws FilterError (with the position) when it is not one. */
export function parseFilter(input: string): FilterExpr {
  const toks = lex(input)
  if (toks.length === 1) throw new FilterError('empty filter', 0, input)
  return new Parser(toks, input).parse()
}
