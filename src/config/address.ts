/**
 * Host and address syntax shared by the settings schema, the API listen address and Validate: an IP literal
 * (node:net isIP) or an RFC 1123 §2.1 host name (labels of letters, digits and '-', no label starting or
 * ending with '-', labels up to 63 and names up to 253 characters). Nothing here touches the network.
 */
import { isIP } from 'node:net'

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

/** True for an RFC 1123 host name. A name whose last label is all digits is not one (it is a bad IPv4). */
export function isHostname(s: string): boolean {
  const name = s.endsWith('.') ? s.slice(0, -1) : s
  if (name.length === 0 || name.length > 253) return false
  const labels = name.split('.')
  if (!labels.every((l) => LABEL.test(l))) return false
  return !/^\d+$/.test(labels[labels.length - 1] ?? '')
}

/** Why `host` is neither an IP literal nor a host name, or undefined when it is one of them. */
export function hostProblem(host: string): string | undefined {
  if (host === '') return 'empty host'
  if (isIP(host) !== 0) return undefined
  if (host.length > 253) return `host name longer than 253 characters (${host.length})`
  if (/^[\d.]+$/.test(host)) return `"${host}" is not a valid IPv4 address`
  if (host.includes(':')) return `"${host}" is not a valid IPv6 address`
  if (!isHostname(host))
    return `"${printable(host)}" is not an IP address or a host name (letters, digits, '-' and '.' only)`
  return undefined
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x.y.z and the name localhost. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase()
  if (h === 'localhost' || h === 'localhost.') return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return canonicalIp(h) === '::1' || /^::ffff:127\./.test(canonicalIp(h))
  return false
}

/** RFC 5952 text of an IPv6 literal (via the WHATWG URL parser); IPv4 and names are returned lower-cased. */
export function canonicalIp(host: string): string {
  if (isIP(host) !== 6 || host.includes('%')) return host.toLowerCase()
  try {
    return new URL(`http://[${host}]/`).hostname.slice(1, -1)
  } catch {
    return host.toLowerCase()
  }
}

/**
 * Parses a listen address 'host:port' or '[v6]:port' where host is an IP literal or 'localhost'. Port 0
 * (any free port) is allowed for tests. Throws an Error saying what is wrong.
 */
export function parseListenAddress(s: string): { host: string; port: number } {
  const m = /^\[([^\]]*)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]*):(\d{1,5})$/.exec(s)
  if (m === null) throw new Error(`expected host:port or [IPv6]:port (got "${printable(s)}")`)
  const host = m[1] ?? ''
  const port = Number(m[2])
  if (host !== 'localhost' && isIP(host) === 0)
    throw new Error(`host must be an IP address or localhost (got "${printable(host)}")`)
  if (s.startsWith('[') && isIP(host) !== 6) throw new Error(`"${host}" in brackets is not an IPv6 address`)
  if (port > 65535) throw new Error(`port ${port} outside 0..65535`)
  return { host, port }
}

/** Control characters shown escaped, and long text cut, so an error message stays one readable line. */
export function printable(s: string, max = 80): string {
  const shown = s.length > max ? `${s.slice(0, max)}…` : s
  return JSON.stringify(shown).slice(1, -1)
}

/** True when `s` holds a C0 control character or DEL, other than those listed in `allowed`. */
export function hasControlChars(s: string, allowed = ''): boolean {
  for (const ch of s) {
    const c = ch.charCodeAt(0)
    if ((c < 0x20 || c === 0x7f) && !allowed.includes(ch)) return true
  }
  return false
}
