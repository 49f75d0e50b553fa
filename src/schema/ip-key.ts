/**
 * Addresses as 128-bit numbers (IPv4 as IPv4-mapped IPv6, RFC 4291 §2.5.5.2), the key that prefix filters
 * compare against (columns.ts: src_ip_key, dst_ip_key), and CIDR prefixes as inclusive key ranges.
 */
import { isIP } from 'node:net'
import { ipv4Text, ipv6Text } from '../util/address-text.js'

const V4_MAPPED = 0xffffn << 32n

function v4(text: string): bigint | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  let n = 0n
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined
    n = (n << 8n) | BigInt(Number(p))
  }
  return n
}

/** The key of an IPv4 or IPv6 address in text form, or undefined when it is not one. */
export function ipKey(text: string): bigint | undefined {
  const fam = isIP(text)
  if (fam === 4) {
    const n = v4(text)
    return n === undefined ? undefined : V4_MAPPED | n
  }
  if (fam !== 6) return undefined
  let s = text.toLowerCase()
  const zone = s.indexOf('%')
  if (zone >= 0) s = s.slice(0, zone)
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two hex groups.
  const dot = s.lastIndexOf(':')
  const tail = s.slice(dot + 1)
  if (tail.includes('.')) {
    const n = v4(tail)
    if (n === undefined) return undefined
    s = `${s.slice(0, dot + 1)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head = '', rest] = s.split('::')
  const hs = head === '' ? [] : head.split(':')
  const ts = rest === undefined || rest === '' ? [] : rest.split(':')
  const fill = rest === undefined ? 0 : 8 - hs.length - ts.length
  const groups = [...hs, ...Array<string>(fill).fill('0'), ...ts]
  if (groups.length !== 8) return undefined
  let n = 0n
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16))
  return n
}

/** `10.0.0.0/8`, `2001:db8::/32` or a bare address → the inclusive key range; undefined when malformed. */
export function cidrRange(text: string): { lo: bigint; hi: bigint } | undefined {
  const slash = text.indexOf('/')
  const addr = slash < 0 ? text : text.slice(0, slash)
  const key = ipKey(addr)
  if (key === undefined) return undefined
  const v6 = isIP(addr) === 6
  const max = v6 ? 128 : 32
  let bits = max
  if (slash >= 0) {
    const b = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(b) || Number(b) > max) return undefined
    bits = Number(b)
  }
  const hostBits = BigInt((v6 ? 128 : 32) - bits)
  const mask = (1n << hostBits) - 1n
  const lo = key & ~mask
  return { lo, hi: lo | mask }
}

/**
 * A key back to address text: IPv4-mapped keys as a dotted quad (what an IPv4 element decodes to), the rest
 * as RFC 5952 IPv6. Top-N by address groups by the key and formats only the rows it returns; an IPv6 element
 * that carried an IPv4-mapped address (::ffff:a.b.c.d) is listed there in its IPv4 form.
 */
export function keyText(key: bigint): string {
  if (key >> 32n === 0xffffn) return ipv4Text(Number(key & 0xffffffffn))
  const b = new DataView(new ArrayBuffer(16))
  b.setBigUint64(0, key >> 64n)
  b.setBigUint64(8, key & 0xffffffffffffffffn)
  return ipv6Text(b, 0)
}
