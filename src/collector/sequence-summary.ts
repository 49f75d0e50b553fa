/**
 * The exit summary's sequence accounting (RFC 7011 §10.3.2, counted per session and observation domain by
 * session.ts), kept to a readable size: the trackers with the most lost units (then the most messages) are
 * listed by name, at most `top`; the rest are summed into one line (`omitted`: how many trackers, and their
 * counters added up), so a collector that saw ten thousand exporters prints one short line, not megabytes.
 */
import type { SequenceStats, TransportSession } from './session.js'

/** Trackers listed by name in the summary at most. */
export const SUMMARY_SEQUENCE_TOP = 20

export interface SequenceSummary {
  /** `<session id> <tracker>` → its counters, most lost first. */
  sequence: Record<string, SequenceStats>
  /** The trackers not listed: how many, and their counters summed. */
  omitted?: { trackers: number } & SequenceStats
}

const ranksBefore = (a: SequenceStats, b: SequenceStats): boolean =>
  a.lost !== b.lost ? a.lost > b.lost : a.messages > b.messages

export function sequenceSummary(
  sessions: Iterable<TransportSession>,
  top = SUMMARY_SEQUENCE_TOP,
): SequenceSummary {
  // The best `top` so far, best first (insertion into a short array: linear in the trackers).
  const best: Array<[string, SequenceStats]> = []
  const rest = { trackers: 0, messages: 0, lost: 0, reordered: 0, reorderedMessages: 0, gapEvents: 0 }
  const more = { jumps: 0, resets: 0, unverifiable: 0 }
  const add = (t: SequenceStats): void => {
    rest.trackers++
    rest.messages += t.messages
    rest.lost += t.lost
    rest.reordered += t.reordered
    rest.reorderedMessages += t.reorderedMessages
    rest.gapEvents += t.gapEvents
    more.jumps += t.jumps
    more.resets += t.resets
    more.unverifiable += t.unverifiable
  }
  for (const s of sessions)
    for (const [k, tracker] of s.sequences) {
      const t = tracker.stats
      if (best.length === top && (top === 0 || !ranksBefore(t, best[top - 1]![1]))) {
        add(t)
        continue
      }
      let i = best.length
      while (i > 0 && ranksBefore(t, best[i - 1]![1])) i--
      best.splice(i, 0, [`${s.id} ${k}`, t])
      if (best.length > top) add(best.pop()![1])
    }
  const out: SequenceSummary = { sequence: Object.fromEntries(best) }
  if (rest.trackers > 0) out.omitted = { ...rest, ...more }
  return out
}
