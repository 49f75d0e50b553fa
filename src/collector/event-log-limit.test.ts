// The rate limit of the template event log (event-log-limit.ts): a bounded number of lines per exporter and
// kind per window, and a summary carrying the exact number left out.
import { describe, expect, it } from 'vitest'
import { EventLogLimit, OTHER_EXPORTERS } from './event-log-limit.js'

describe('EventLogLimit', () => {
  it('logs the first N events per exporter and kind per window and sums the rest when the window ends', () => {
    const l = new EventLogLimit({ perWindow: 5, windowMs: 1000 })
    let logged = 0
    // 10 000 events of two kinds from three exporters within one window.
    for (let i = 0; i < 10_000; i++)
      if (l.admit(`192.0.2.${i % 3}`, i % 2 === 0 ? 'template/unchanged' : 'withdrawal', 500)) logged++
    expect(logged).toBe(3 * 2 * 5)
    expect(l.due(1499)).toEqual([]) // the windows (from 500) have not ended
    const ended = l.due(1500)
    expect(ended).toHaveLength(6)
    expect(ended.reduce((n, s) => n + s.suppressed + s.logged, 0)).toBe(10_000)
    expect(ended[0]).toEqual({
      exporter: '192.0.2.0',
      kind: 'template/unchanged',
      suppressed: 1667 - 5,
      logged: 5,
      ms: 1000,
    })
    expect(l.size).toBe(0) // ended windows are forgotten
    // A new window logs again.
    expect(l.admit('192.0.2.0', 'template/unchanged', 2000)).toBe(true)
  })

  it('closes a window when the next event of its pair comes after it, and drains the open ones at the end', () => {
    const l = new EventLogLimit({ perWindow: 1, windowMs: 1000 })
    expect(l.admit('e', 'k', 0)).toBe(true)
    expect(l.admit('e', 'k', 10)).toBe(false)
    expect(l.admit('e', 'k', 20)).toBe(false)
    expect(l.admit('e', 'k', 1500)).toBe(true) // a new window: the old one's summary waits for due()
    expect(l.admit('e', 'k', 1600)).toBe(false)
    expect(l.due(1600)).toEqual([{ exporter: 'e', kind: 'k', suppressed: 2, logged: 1, ms: 1000 }])
    expect(l.drain()).toEqual([{ exporter: 'e', kind: 'k', suppressed: 1, logged: 1, ms: 100 }])
    expect(l.drain()).toEqual([])
  })

  it('keeps at most maxKeys pairs: further exporters share one pair per kind', () => {
    const l = new EventLogLimit({ perWindow: 2, windowMs: 1000, maxKeys: 100 })
    let logged = 0
    for (let i = 0; i < 100_000; i++)
      if (l.admit(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 'k', 0)) logged++
    expect(l.size).toBe(101) // 100 named, one shared
    expect(logged).toBe(100 + 2) // one event each of the first 100 exporters, two of the rest
    const s = l.drain()
    expect(s).toEqual([
      { exporter: OTHER_EXPORTERS, kind: 'k', suppressed: 100_000 - 100 - 2, logged: 2, ms: 0 },
    ])
  })

  it('logs everything with perWindow 0', () => {
    const l = new EventLogLimit({ perWindow: 0 })
    for (let i = 0; i < 1000; i++) expect(l.admit('e', 'k', 0)).toBe(true)
    expect(l.drain()).toEqual([])
  })
})
