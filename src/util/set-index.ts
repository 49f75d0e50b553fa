/**
 * An index from a key to the set of members filed under it, for stores that must drop everything of one key
 * (a session, a template kind) at the cost of what that key holds, not of what the store holds. An emptied
 * key is forgotten, so the index holds only keys that have members.
 */
export class SetIndex<K, V> {
  private readonly sets = new Map<K, Set<V>>()

  add(key: K, member: V): void {
    let s = this.sets.get(key)
    if (s === undefined) this.sets.set(key, (s = new Set()))
    s.add(member)
  }

  delete(key: K, member: V): void {
    const s = this.sets.get(key)
    if (s === undefined) return
    s.delete(member)
    if (s.size === 0) this.sets.delete(key)
  }

  /** Members filed under `key`. */
  size(key: K): number {
    return this.sets.get(key)?.size ?? 0
  }

  /** The members filed under `key`, as a copy (the caller may remove them while it walks it). */
  members(key: K): V[] {
    const s = this.sets.get(key)
    return s === undefined ? [] : [...s]
  }
}
