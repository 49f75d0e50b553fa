// Field group `l2`: per-flow MACs and ingress interface through create, swap, growth and record writing.
import { describe, expect, it } from 'vitest'
import { PacketInfo } from '../../decode/packet.js'
import { BufferWriter } from '../../ipfix/record-writer.js'
import { Dir, type FlowView } from '../feature.js'
import { L2Fields } from './l2.js'

/** The FlowView facts l2 writes: VLAN ids per flow id. */
const view = {
  vlanId: (id: number) => 100 + id,
  innerVlanId: (id: number) => 200 + id,
} as unknown as FlowView

function packet(src: number, dst: number): PacketInfo {
  const p = new PacketInfo()
  p.srcMacHi = 0x0200
  p.srcMacLo = src
  p.dstMacHi = 0x0400
  p.dstMacLo = dst
  return p
}

function record(l2: L2Fields, id: number): string {
  const w = new BufferWriter(64)
  l2.write(id, view, w)
  expect(w.pos).toBe(20)
  return Buffer.from(w.buf.subarray(0, w.pos)).toString('hex')
}

describe('L2Fields', () => {
  it('writes initiator and responder MACs, VLANs and the ingress interface of each flow', () => {
    const l2 = new L2Fields()
    l2.resize(4, 0)
    l2.onCreate(0, packet(0x11111111, 0x22222222), Dir.Forward, 0, 7)
    // A SYN/ACK seen first comes from the responder: its source MAC is the responder's.
    l2.onCreate(1, packet(0x33333333, 0x44444444), Dir.Reverse, 0, 0xfffffffe)
    expect(record(l2, 0)).toBe('0200111111110400222222220064' + '00c8' + '00000007')
    expect(record(l2, 1)).toBe('040044444444020033333333' + '0065' + '00c9' + 'fffffffe')
  })

  it('swaps the MACs when the initiator turns out to be the other side, and keeps state when growing', () => {
    const l2 = new L2Fields()
    l2.resize(2, 0)
    l2.onCreate(0, packet(0xaaaaaaaa, 0xbbbbbbbb), Dir.Forward, 0, 3)
    l2.onCreate(1, packet(0xcccccccc, 0xdddddddd), Dir.Forward, 0, 4)
    l2.onSwap(1)
    l2.resize(64, 2)
    l2.onCreate(63, packet(0x01020304, 0x05060708), Dir.Forward, 0, 9)
    expect(record(l2, 0)).toBe('0200aaaaaaaa0400bbbbbbbb' + '0064' + '00c8' + '00000003')
    expect(record(l2, 1)).toBe('0400dddddddd0200cccccccc' + '0065' + '00c9' + '00000004')
    expect(record(l2, 63)).toBe('020001020304040005060708' + '00a3' + '0107' + '00000009')
  })

  it('writes the same values through the checked path when the record does not fit the buffer', () => {
    const l2 = new L2Fields()
    l2.resize(1, 0)
    l2.onCreate(0, packet(0x11111111, 0x22222222), Dir.Forward, 0, 7)
    const values: number[] = []
    const w = {
      mac: (hi: number, lo: number) => values.push(hi * 2 ** 32 + lo),
      u16: (v: number) => values.push(v),
      u32: (v: number) => values.push(v),
    }
    l2.write(0, view, w as never)
    expect(values).toEqual([0x0200 * 2 ** 32 + 0x11111111, 0x0400 * 2 ** 32 + 0x22222222, 100, 200, 7])
  })
})
