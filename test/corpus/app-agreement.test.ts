// Application identification (`app` group, RFC 6759) against nDPI over ../shared/pcaps (skipped without the
// corpus). For every capture with an nDPI reference (<capture>.ndpi.out), each flow nDPI lists is matched
// to our first flow record with the same unordered 5-tuple; our application is the name the probe itself
// announced for the record's applicationId in its RFC 6759 options records (so the options path is scored
// too), 'Unknown' for an id outside the catalogue. A flow agrees when our name equals nDPI's application
// or its protocol ("TLS.Google": TLS or Google), case-insensitively. nDPI flows without a record of ours
// (other flow splitting) are counted apart. Prints the rate and the most frequent disagreements; fails
// under THRESHOLD. The rate over the flows nDPI names (not Unknown) is printed too. Every disagreement kind
// is listed, with its reason, in docs/l7-agreement.md.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { probeRecords, type JsonRecord } from '../helpers/probe-run.js'
import { HAVE_SHARED_PCAPS, listCaptures, SHARED_PCAPS } from '../helpers/shared.js'

/** What this version reaches (92.4%); the target is 90%. */
const THRESHOLD = 0.92

const PROTO_NUMBERS: Record<string, number> = {
  TCP: 6,
  UDP: 17,
  ICMP: 1,
  ICMPV6: 58,
  IGMP: 2,
  ESP: 50,
  AH: 51,
}

interface NdpiFlow {
  key: string
  label: string
}

/** `\t1\tTCP 1.2.3.4:5 <-> 6.7.8.9:443 [proto: 91.126/TLS.Google]...` → unordered key and label. */
function readNdpi(file: string): NdpiFlow[] {
  const out: NdpiFlow[] = []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s+\d+\s+(\S+) (\S+) <?-> (\S+) \[proto: [\d.]+\/([^\]]+)\]/.exec(line)
    if (!m) continue
    const proto = PROTO_NUMBERS[m[1]!] ?? Number(m[1])
    if (!Number.isInteger(proto)) continue
    out.push({ key: flowKey(proto, endpoint(m[2]!), endpoint(m[3]!)), label: m[4]! })
  }
  return out
}

/** `1.2.3.4:80` or `[2001:db8::1]:80` → normalised `addr port`. */
function endpoint(s: string): string {
  const i = s.lastIndexOf(':')
  let host = s.slice(0, i)
  if (host.startsWith('[')) host = host.slice(1, -1)
  return `${canonicalIp(host)} ${Number(s.slice(i + 1))}`
}

/**
 * One spelling per IPv6 address (RFC 5952, as the WHATWG URL parser writes it): nDPI's printer also
 * compresses a single zero group ("2a03:2880:f030:13:face:b00c::3"). A string that is not an address (nDPI
 * sometimes prints two "::") stays as it is, and its flow counts as without a record of ours.
 */
function canonicalIp(host: string): string {
  if (!host.includes(':')) return host
  try {
    return new URL(`http://[${host}]/`).hostname.slice(1, -1)
  } catch {
    return host
  }
}

/** Application names compared without case and punctuation (nDPI's "DCERPC" is the catalogue's "DCE_RPC"). */
const appName = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]/g, '')

function flowKey(proto: number, a: string, b: string): string {
  const ports = proto === 6 || proto === 17 || proto === 132
  const [x, y] = [ports ? a : a.split(' ')[0] + ' 0', ports ? b : b.split(' ')[0] + ' 0'].sort()
  return `${proto} ${x} ${y}`
}

function recordKey(r: JsonRecord): string {
  const src = canonicalIp(String(r.sourceIPv4Address ?? r.sourceIPv6Address))
  const dst = canonicalIp(String(r.destinationIPv4Address ?? r.destinationIPv6Address))
  const proto = Number(r.protocolIdentifier)
  return flowKey(
    proto,
    `${src} ${Number(r.sourceTransportPort ?? 0)}`,
    `${dst} ${Number(r.destinationTransportPort ?? 0)}`,
  )
}

describe.skipIf(!HAVE_SHARED_PCAPS)('application identification against nDPI (../shared/pcaps)', () => {
  it('classifies flows as nDPI does, at the application or protocol level', async () => {
    let total = 0
    let agree = 0
    let missing = 0
    let named = 0
    let namedAgree = 0
    let captures = 0
    const confusions = new Map<string, number>()
    for (const rel of listCaptures(SHARED_PCAPS)) {
      if (rel.startsWith('malformed/')) continue
      let ndpi: NdpiFlow[]
      try {
        ndpi = readNdpi(join(SHARED_PCAPS, `${rel}.ndpi.out`))
      } catch {
        continue
      }
      if (ndpi.length === 0) continue
      captures++
      const { records } = await probeRecords([join(SHARED_PCAPS, rel)], { fields: ['core', 'app'] }, [], true)
      const names = new Map<string, string>()
      for (const r of records)
        if (typeof r.applicationName === 'string') names.set(String(r.applicationId), r.applicationName)
      const ours = new Map<string, string>()
      for (const r of records) {
        if (!('applicationId' in r) || 'applicationName' in r) continue
        const k = recordKey(r)
        if (!ours.has(k)) ours.set(k, names.get(String(r.applicationId)) ?? 'Unknown')
      }
      for (const f of ndpi) {
        total++
        const mine = ours.get(f.key)
        if (mine === undefined) {
          missing++
          continue
        }
        const parts = f.label.split('.').map(appName)
        const ok = parts.includes(appName(mine))
        if (f.label !== 'Unknown') {
          named++
          if (ok) namedAgree++
        }
        if (ok) agree++
        else {
          const c = `${f.label} → ${mine}`
          confusions.set(c, (confusions.get(c) ?? 0) + 1)
        }
      }
    }
    const rate = total === 0 ? 1 : agree / total
    const top = [...confusions.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)
    console.log(
      [
        `application agreement with nDPI over ${captures} captures: ${agree}/${total} = ${(rate * 100).toFixed(1)}%` +
          ` (min ${(THRESHOLD * 100).toFixed(0)}%); nDPI flows without a record of ours: ${missing}`,
        `  flows nDPI names (not Unknown): ${namedAgree}/${named} = ${((namedAgree / Math.max(1, named)) * 100).toFixed(1)}%`,
        '  most frequent disagreements (nDPI → ours):',
        ...top.map(([c, n]) => `    ${String(n).padStart(4)}  ${c}`),
      ].join('\n'),
    )
    expect(rate).toBeGreaterThanOrEqual(THRESHOLD)
  }, 600_000)
})
