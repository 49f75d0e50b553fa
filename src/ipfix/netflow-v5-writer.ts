/**
 * NetFlow v5 export datagrams (Cisco's fixed format, as nfdump, Wireshark and our collector read it): a
 * 24-octet header (version 5, count ≤ 30, SysUptime ms, unix_secs, unix_nsecs, flow_sequence = flows sent
 * before this datagram, engine_type, engine_id, sampling mode/interval 0) and count 48-octet records.
 *
 * v5 is IPv4 only: IPv6 flows cannot be expressed and are counted (`ipv6_flows`), never sent. Fields v5 has
 * no room for are clamped and counted: 32-bit packet/octet counters (`saturated_packets`/`_octets`), 16-bit
 * interface indexes (`truncated_input_interface`/`_output`, the low 16 bits are sent). Source/destination AS
 * and masks are 0 (the probe knows no routing). For ICMP the destination port carries type·256 + code, the
 * convention of Cisco v5 exporters that nfdump and Wireshark follow.
 */
import type { FieldValue } from './decoder.js'
import { putIpv4, type UniFlow } from './netflow-flows.js'
import type { NetflowClock } from './netflow-v9-writer.js'

export const V5_HEADER_LENGTH = 24
export const V5_RECORD_LENGTH = 48
export const V5_MAX_RECORDS = 30

const U32_MAX = 0xffff_ffff

function num(v: FieldValue | undefined): number {
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v)
  return 0
}

export class V5Writer {
  /** Named counters: ipv6_flows, saturated_packets, saturated_octets, truncated_*_interface. */
  readonly counters: Record<string, number> = {}
  packets = 0
  flows = 0
  private flowSequence = 0
  private readonly perPacket: number

  constructor(
    maxPacketSize: number,
    private readonly engineType = 0,
  ) {
    this.perPacket = Math.min(
      V5_MAX_RECORDS,
      Math.floor((maxPacketSize - V5_HEADER_LENGTH) / V5_RECORD_LENGTH),
    )
    if (this.perPacket < 1) throw new Error(`NetFlow v5 packet size ${maxPacketSize} too small`)
  }

  private count(name: string): void {
    this.counters[name] = (this.counters[name] ?? 0) + 1
  }

  write(flows: readonly UniFlow[], clock: NetflowClock, engineId: number, emit: (p: Buffer) => void): void {
    const v4 = flows.filter((f) => {
      if (f.values.has(8) && f.values.has(12)) return true
      this.count('ipv6_flows')
      return false
    })
    for (let i = 0; i < v4.length; i += this.perPacket) {
      const batch = v4.slice(i, i + this.perPacket)
      const buf = Buffer.alloc(V5_HEADER_LENGTH + V5_RECORD_LENGTH * batch.length)
      buf.writeUInt16BE(5, 0)
      buf.writeUInt16BE(batch.length, 2)
      buf.writeUInt32BE(clock.sysUptime >>> 0, 4)
      buf.writeUInt32BE(clock.unixSecs >>> 0, 8)
      buf.writeUInt32BE(0, 12) // unix_nsecs: export times are whole seconds
      buf.writeUInt32BE(this.flowSequence >>> 0, 16)
      buf.writeUInt8(this.engineType & 0xff, 20)
      buf.writeUInt8(engineId & 0xff, 21)
      buf.writeUInt16BE(0, 22) // no sampling
      batch.forEach((f, k) => this.record(buf, V5_HEADER_LENGTH + k * V5_RECORD_LENGTH, f, clock))
      this.flowSequence = (this.flowSequence + batch.length) % 0x1_0000_0000
      this.flows += batch.length
      this.packets++
      emit(buf)
    }
  }

  private u32(buf: Buffer, p: number, v: FieldValue | undefined, what: string): void {
    const n = num(v)
    if (n > U32_MAX) this.count(`saturated_${what}`)
    buf.writeUInt32BE(Math.min(U32_MAX, Math.max(0, Math.floor(n))), p)
  }

  private u16(buf: Buffer, p: number, v: FieldValue | undefined, what: string): void {
    const n = Math.max(0, Math.floor(num(v)))
    if (n > 0xffff) this.count(`truncated_${what}`)
    buf.writeUInt16BE(n & 0xffff, p)
  }

  private record(buf: Buffer, p: number, f: UniFlow, clock: NetflowClock): void {
    const v = f.values
    putIpv4(buf, p, v.get(8) ?? null)
    putIpv4(buf, p + 4, v.get(12) ?? null)
    putIpv4(buf, p + 8, v.get(15) ?? null)
    this.u16(buf, p + 12, v.get(10), 'input_interface')
    this.u16(buf, p + 14, v.get(14), 'output_interface')
    this.u32(buf, p + 16, v.get(2) ?? v.get(86), 'packets')
    this.u32(buf, p + 20, v.get(1) ?? v.get(85), 'octets')
    buf.writeUInt32BE(clock.uptimeOf(f.startMs ?? 0), p + 24)
    buf.writeUInt32BE(clock.uptimeOf(f.endMs ?? 0), p + 28)
    const proto = num(v.get(4))
    const icmp = proto === 1 && v.has(32)
    buf.writeUInt16BE(icmp ? 0 : num(v.get(7)) & 0xffff, p + 32)
    buf.writeUInt16BE((icmp ? num(v.get(32)) : num(v.get(11))) & 0xffff, p + 34)
    buf[p + 36] = 0 // pad1
    buf[p + 37] = num(v.get(6)) & 0xff
    buf[p + 38] = proto & 0xff
    buf[p + 39] = num(v.get(5)) & 0xff
    // src_as, dst_as (16 bits each), src_mask, dst_mask, pad2: zero (Buffer.alloc).
  }
}
