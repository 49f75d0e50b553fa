// The live clock: advance to the wall clock less the lag, only while no batch arrived since the last tick.
import { describe, expect, it } from 'vitest'
import { LiveClock } from './live-clock.js'

describe('LiveClock', () => {
  it('advances a quiet link to the wall clock less the lag', () => {
    let wall = 5_000_000
    const c = new LiveClock(() => wall, 1_000_000)
    expect(c.tick()).toBe(4_000_000)
    wall = 6_500_000
    expect(c.tick()).toBe(5_500_000)
  })

  it('does not advance while batches arrive (packet time drives expiry then)', () => {
    const c = new LiveClock(() => 9_000_000, 1_000_000)
    c.sawBatch()
    expect(c.tick()).toBeUndefined()
    expect(c.tick()).toBe(8_000_000)
  })
})
