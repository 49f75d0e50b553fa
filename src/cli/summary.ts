/** Renders the probe's end-of-run summary as aligned text for a terminal or a log. */
import type { ProbeSummary } from '../probe/probe.js'

/**
 * `n` with thousands separators, as toLocaleString('en-US') writes it. Integers are grouped by hand: the
 * first toLocaleString call of a process loads ICU's number formatting, 20-25 ms of CPU per probe run.
 */
export function fmt(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString('en-US')
  const digits = String(Math.abs(n))
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1)
  for (let i = out.length; i < digits.length; i += 3) out += ',' + digits.slice(i, i + 3)
  return n < 0 || Object.is(n, -0) ? '-' + out : out
}

function section(title: string, entries: Record<string, number>): string[] {
  const keys = Object.keys(entries)
  if (keys.length === 0) return [`${title}: none`]
  const width = Math.max(...keys.map((k) => k.length))
  return [`${title}:`, ...keys.map((k) => `  ${k.padEnd(width)}  ${fmt(entries[k]!)}`)]
}

/** The L7 groups' anomalies as `group.name` (the summary's `l7.<group>.anomalies`). */
function l7Anomalies(l7: NonNullable<ProbeSummary['l7']>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [group, g] of Object.entries(l7))
    for (const [name, n] of Object.entries(g.anomalies)) out[`${group}.${name}`] = n
  return out
}

export function formatSummary(s: ProbeSummary): string {
  const rate = s.seconds > 0 ? s.packets / s.seconds : 0
  const lines = [
    `packets            ${fmt(s.packets)} (${fmt(s.ipPackets)} IP, ${fmt(s.nonIpPackets)} non-IP, ${fmt(
      s.malformedPackets,
    )} malformed, ${fmt(s.unsupportedLinkTypePackets)} unsupported link type)`,
    `bytes              ${fmt(s.capturedBytes)} captured, ${fmt(s.ipBytes)} IP-level in flows`,
    `flows              ${fmt(s.flows)} (peak ${fmt(s.peakActiveFlows)} active)`,
    `export             ${fmt(s.export.messages)} messages, ${fmt(s.export.records)} records, ${fmt(
      s.export.octets,
    )} octets, ${fmt(s.export.templateSends)} template sends, ${fmt(s.export.droppedRecords)} dropped`,
    ...(s.ipReassembly !== undefined
      ? [
          `ip reassembly      ${fmt(s.ipReassembly.reassembled)} datagrams rebuilt for L7, ${fmt(
            s.ipReassembly.timedOut,
          )} timed out, ${fmt(s.ipReassembly.evicted)} evicted (limits), ${fmt(s.ipReassembly.dropped)} dropped (bad fragments)`,
        ]
      : []),
    `time               ${s.seconds.toFixed(2)} s (${fmt(Math.round(rate))} packets/s)`,
    ...section('end reasons', s.endReasons),
    ...section('anomalies', s.anomalies),
    ...(s.l7 !== undefined ? section('l7 anomalies', l7Anomalies(s.l7)) : []),
    ...section('capture format errors', s.formatErrors),
    ...Object.entries(s.transportProblems ?? {}).map(
      ([name, p]) =>
        `transport problem  ${name}: ${fmt(p.errors)} errors, ${fmt(p.dropped)} messages dropped${
          p.lastError !== undefined ? ` (last: ${p.lastError})` : ''
        }`,
    ),
    ...Object.entries(s.netflow ?? {}).flatMap(([name, r]) => [
      `netflow v${r.version}         ${name}: ${fmt(r.ipfixRecords)} IPFIX records -> ${fmt(r.flows)} flows (${fmt(
        r.reverseFlows,
      )} reverse halves) in ${fmt(r.packets)} packets, ${fmt(r.templateSends)} template sends`,
      ...section('  not exportable', r.notExportable),
      ...section('  fields NetFlow cannot carry (records)', r.droppedFields),
      ...section('  conversion anomalies', r.anomalies),
    ]),
  ]
  return lines.join('\n') + '\n'
}
