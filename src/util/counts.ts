/** Adds counters by name (`from`: entries, a Map, or a record) into the record `into`, and returns `into`. */
export function addCounts(
  into: Record<string, number>,
  from: Iterable<readonly [string, number]> | Readonly<Record<string, number>>,
): Record<string, number> {
  const entries = Symbol.iterator in from ? from : Object.entries(from)
  for (const [k, v] of entries) into[k] = (into[k] ?? 0) + v
  return into
}
