// TLS fingerprints (`tls` group: JA3, JA3S, JA4) against Arkime over ../shared/pcaps (skipped without the
// corpus). For every capture with an Arkime reference (<capture>.arkime.json), each session with a tls.ja3,
// tls.ja3s or tls.ja4 value is matched to our TLS transaction record on the same connection (addresses and
// ports, either order) and each value compared; QUIC handshakes come from the `quic` group (the same TLS
// fields; JA4 with the 'q' prefix) and DTLS ones from the `tls` group ('d' prefix); TLS after SMTP STARTTLS
// is handed to the tls parser by the smtp parser (src/l7/starttls.ts). A session without a record of ours
// counts as a disagreement. Prints per-field rates and the disagreements; fails under THRESHOLDS, or when
// any session that does have a record of ours disagrees.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { probeRecords, type JsonRecord } from '../helpers/probe-run.js'
import { HAVE_SHARED_PCAPS, listCaptures, SHARED_PCAPS } from '../helpers/shared.js'

const THRESHOLDS: Record<string, number> = { ja3: 0.95, ja3s: 0.95, ja4: 0.95 }

interface ArkimeSession {
  body?: {
    source?: { ip?: string; port?: number }
    destination?: { ip?: string; port?: number }
    tls?: { ja3?: string[]; ja3s?: string[]; ja4?: string[] }
  }
}

const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '')

function key(a: string, ap: string, b: string, bp: string): string {
  return [`${a} ${ap}`, `${b} ${bp}`].sort().join(' ')
}

describe.skipIf(!HAVE_SHARED_PCAPS)('TLS fingerprints against Arkime (../shared/pcaps)', () => {
  it('ja3, ja3s and ja4 agree', async () => {
    const tally = new Map<string, { agree: number; total: number; missing: number; bad: string[] }>()
    let captures = 0
    for (const rel of listCaptures(SHARED_PCAPS)) {
      const ref = join(SHARED_PCAPS, `${rel}.arkime.json`)
      if (!existsSync(ref)) continue
      const sessions =
        (JSON.parse(readFileSync(ref, 'utf8')) as { sessions3?: ArkimeSession[] }).sessions3 ?? []
      const withTls = sessions.filter((s) => s.body?.tls?.ja3 ?? s.body?.tls?.ja3s ?? s.body?.tls?.ja4)
      if (withTls.length === 0) continue
      captures++
      const { records } = await probeRecords([join(SHARED_PCAPS, rel)], { fields: ['core', 'tls', 'quic'] })
      const ours = new Map<string, JsonRecord[]>()
      for (const r of records) {
        if (!('tlsSni' in r)) continue
        const k = key(
          str(r.sourceIPv4Address ?? r.sourceIPv6Address),
          str(r.sourceTransportPort),
          str(r.destinationIPv4Address ?? r.destinationIPv6Address),
          str(r.destinationTransportPort),
        )
        ours.set(k, [...(ours.get(k) ?? []), r])
      }
      for (const s of withTls) {
        const b = s.body!
        const k = key(
          str(b.source?.ip),
          str(b.source?.port),
          str(b.destination?.ip),
          str(b.destination?.port),
        )
        const mine = ours.get(k) ?? []
        const fields: [string, string[] | undefined, string][] = [
          ['ja3', b.tls?.ja3, 'tlsJa3Fingerprint'],
          ['ja3s', b.tls?.ja3s, 'flowtelTlsJa3s'],
          ['ja4', b.tls?.ja4, 'flowtelTlsJa4'],
        ]
        for (const [name, want, field] of fields) {
          if (want === undefined || want.length === 0) continue
          const got = mine.map((r) => str(r[field]))
          const ok = want.every((w) => got.includes(w))
          const e = tally.get(name) ?? { agree: 0, total: 0, missing: 0, bad: [] }
          e.total++
          if (mine.length === 0) e.missing++
          if (ok) e.agree++
          else if (e.bad.length < 8)
            e.bad.push(`${rel} ${k}: arkime=${want.join('|')} ours=${got.join('|') || '(none)'}`)
          tally.set(name, e)
        }
      }
    }
    const lines = [`TLS fingerprints against Arkime over ${captures} captures`]
    const failures: string[] = []
    for (const [name, e] of [...tally.entries()].sort()) {
      const rate = e.total === 0 ? 1 : e.agree / e.total
      const min = THRESHOLDS[name] ?? 1
      const matched = e.total - e.missing
      lines.push(
        `  ${name.padEnd(5)} ${e.agree}/${e.total} = ${(rate * 100).toFixed(1)}% (min ${(min * 100).toFixed(0)}%);` +
          ` with a record of ours ${e.agree}/${matched}`,
      )
      for (const x of e.bad) lines.push(`      ${x}`)
      if (rate < min || e.agree !== matched) failures.push(name)
    }
    console.log(lines.join('\n'))
    expect(tally.size).toBe(3)
    expect(failures).toEqual([])
  }, 300_000)
})
