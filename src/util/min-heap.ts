/**
 * A binary min-heap (Williams 1964) over a comparator: push and pop in O(log n), peek in O(1). For queues
 * keyed by a due time that are taken from in order, where a scan of every entry per take would be quadratic
 * under load. Ties come out in no particular order: a comparator that must keep arrival order among equal
 * keys breaks ties with a sequence number.
 */
export class MinHeap<T> {
  private readonly items: T[] = []

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length
  }

  /** The smallest entry, undefined when empty. */
  peek(): T | undefined {
    return this.items[0]
  }

  push(x: T): void {
    const a = this.items
    let i = a.length
    a.push(x)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = a[parent]!
      if (!this.before(x, p)) break
      a[i] = p
      i = parent
    }
    a[i] = x
  }

  /** Removes and returns the smallest entry, undefined when empty. */
  pop(): T | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (top === undefined || a.length === 0) return top
    // Sift the last entry down from the root.
    const n = a.length
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const c = r < n && this.before(a[r]!, a[l]!) ? r : l
      if (!this.before(a[c]!, last!)) break
      a[i] = a[c]!
      i = c
    }
    a[i] = last!
    return top
  }
}
