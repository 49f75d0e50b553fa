/** Text forms of IP addresses: dotted IPv4, and IPv6 per RFC 5952 (what inet_ntop, Zeek and ipfixDump print). */

export function ipv4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
}

/** Hex text of 0..255 without leading zeros, and with them to two digits (groups from table lookups). */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16))
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** Lowercase hex of a 16-bit group without leading zeros. */
const groupText = (x: number): string => (x < 256 ? HEX[x]! : HEX[x >> 8]! + HEX2[x & 255]!)

/** The eight groups of the address being rendered (the function is synchronous, so one scratch array). */
const GROUPS = new Uint16Array(8)

/** RFC 5952 text: lowercase, no leading zeros, longest run (≥ 2) of zero groups as '::', mapped IPv4 dotted. */
export function ipv6Text(view: DataView, p: number): string {
  const g = GROUPS
  for (let i = 0; i < 8; i++) g[i] = view.getUint16(p + 2 * i)
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff)
    return '::ffff:' + ipv4Text(view.getUint32(p + 12))
  // The first longest run of zero groups, if it has at least two (RFC 5952 §4.2.2, §4.2.3).
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  if (bestStart < 0) return groupsText(g, 0, 8)
  return groupsText(g, 0, bestStart) + '::' + groupsText(g, bestStart + bestLen, 8)
}

/** Groups `from` to `to` (exclusive) of `g`, colon-separated. */
function groupsText(g: Uint16Array, from: number, to: number): string {
  let s = ''
  for (let i = from; i < to; i++) s += (i === from ? '' : ':') + groupText(g[i]!)
  return s
}
