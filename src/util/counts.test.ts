// addCounts: counters by name added from a record, a Map or entries.
import { describe, expect, it } from 'vitest'
import { addCounts } from './counts.js'

describe('addCounts', () => {
  it('adds a record, a Map and entries into the record given, and returns it', () => {
    const into: Record<string, number> = { a: 1 }
    expect(addCounts(into, { a: 2, b: 3 })).toBe(into)
    addCounts(into, new Map([['b', 4]]))
    addCounts(into, [['c', 5]])
    expect(into).toEqual({ a: 3, b: 7, c: 5 })
  })
})
