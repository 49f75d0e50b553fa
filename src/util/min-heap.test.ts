// The binary min-heap: entries come out in comparator order, whatever the order they went in.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MinHeap } from './min-heap.js'

describe('MinHeap', () => {
  it('pops in order for any pushes and pops interleaved', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: -50, max: 50 }), fc.constant(null))), (ops) => {
        const h = new MinHeap<number>((a, b) => a < b)
        const ref: number[] = []
        for (const op of ops) {
          if (op === null) {
            ref.sort((a, b) => a - b)
            expect(h.pop()).toBe(ref.shift())
          } else {
            h.push(op)
            ref.push(op)
          }
          expect(h.size).toBe(ref.length)
          expect(h.peek()).toBe(ref.length === 0 ? undefined : Math.min(...ref))
        }
      }),
    )
  })
})
