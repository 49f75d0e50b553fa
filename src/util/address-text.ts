/** Text forms of IP addresses: dotted IPv4, and IPv6 per RFC 5952 (what inet_ntop, Zeek and ipfixDump print). */

export function ipv4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
}

/** RFC 5952 text: lowercase, no leading zeros, longest run (≥ 2) of zero groups as '::', mapped IPv4 dotted. */
export function ipv6Text(view: DataView, p: number): string {
  const g: number[] = []
  for (let i = 0; i < 8; i++) g.push(view.getUint16(p + 2 * i))
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff)
    return '::ffff:' + ipv4Text(view.getUint32(p + 12))
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
  const h = (a: number[]): string => a.map((x) => x.toString(16)).join(':')
  if (bestStart < 0) return h(g)
  return h(g.slice(0, bestStart)) + '::' + h(g.slice(bestStart + bestLen))
}
