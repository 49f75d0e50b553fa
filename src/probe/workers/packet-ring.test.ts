// The shared-memory ring between the dispatcher and a worker: slot contents, commands, back-pressure.
import { describe, expect, it } from 'vitest'
import { allocateRing, RingReader, RingWriter, SlotCommand } from './packet-ring.js'

describe('packet ring', () => {
  it('carries packets, their metadata and the batch time from writer to reader', () => {
    const mem = allocateRing({ slots: 2, packets: 4, bytes: 65536 })
    const w = new RingWriter(mem)
    const r = new RingReader(mem)
    const buf = Uint8Array.from([9, 9, 1, 2, 3, 4, 5, 9])
    const s = w.current()!
    expect(s.append(buf, 2, 3, 60, 1000, 1, 7)).toBe(true)
    expect(s.append(buf, 5, 2, 2, 1001, 101, 0)).toBe(true)
    w.publish(SlotCommand.Packets, 5000)
    const got = r.next()
    expect(got.command).toBe(SlotCommand.Packets)
    expect(got.packets).toBe(2)
    expect(got.advanceUs).toBe(5000)
    expect([...got.data.subarray(0, got.dataBytes)]).toEqual([1, 2, 3, 4, 5])
    expect([...got.offset.subarray(0, 2)]).toEqual([0, 3])
    expect([...got.caplen.subarray(0, 2)]).toEqual([3, 2])
    expect([...got.origlen.subarray(0, 2)]).toEqual([60, 2])
    expect([...got.tsUs.subarray(0, 2)]).toEqual([1000, 1001])
    expect([...got.linkType.subarray(0, 2)]).toEqual([1, 101])
    expect([...got.ifIndex.subarray(0, 2)]).toEqual([7, 0])
    r.release()
  })

  it('refuses a packet that does not fit, and cuts one longer than a whole slot to a snap-length truncation', () => {
    const mem = allocateRing({ slots: 1, packets: 2, bytes: 65536 })
    const w = new RingWriter(mem)
    const s = w.current()!
    const big = new Uint8Array(70000)
    expect(s.append(big, 0, 40000, 40000, 1, 1, 0)).toBe(true)
    expect(s.append(big, 0, 30000, 30000, 2, 1, 0)).toBe(false)
    w.publish(SlotCommand.Packets, 2)
    const r = new RingReader(mem)
    r.next()
    r.release()
    const t = w.current()!
    expect(t.append(big, 0, 70000, 70000, 3, 1, 0)).toBe(true)
    expect(t.caplen[0]).toBe(65536)
    expect(t.origlen[0]).toBe(70000)
    expect(t.append(big, 0, 10, 10, 4, 1, 0)).toBe(false)
  })

  it('makes the writer wait while the ring is full, until the reader releases a slot', async () => {
    const mem = allocateRing({ slots: 2, packets: 2, bytes: 65536 })
    const w = new RingWriter(mem)
    const r = new RingReader(mem)
    w.publish(SlotCommand.Packets, 1)
    w.publish(SlotCommand.SetTimeouts, 1, [300, 30])
    expect(w.current()).toBeUndefined()
    expect(w.inFlight).toBe(2)
    let released = false
    const room = w.waitForRoom().then(() => released)
    const first = r.next()
    expect(first.command).toBe(SlotCommand.Packets)
    released = true
    r.release()
    expect(await room).toBe(true)
    expect(w.current()).toBeDefined()
    const second = r.next()
    expect(second.command).toBe(SlotCommand.SetTimeouts)
    expect([second.arg(0), second.arg(1), second.arg(2)]).toEqual([300, 30, NaN])
  })
})
