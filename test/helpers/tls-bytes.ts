// Builders of TLS octets for tests (RFC 8446 §3 vectors, §4 handshake, §5.1 records): big-endian
// integers, length-prefixed vectors, extensions, handshake messages and records, as number arrays.
import { ascii } from './l7.js'

export const u16 = (v: number): number[] => [v >> 8, v & 0xff]
export const u24 = (v: number): number[] => [v >> 16, (v >> 8) & 0xff, v & 0xff]
export const vec8 = (b: number[]): number[] => [b.length, ...b]
export const vec16 = (b: number[]): number[] => [...u16(b.length), ...b]
export const ext = (type: number, body: number[]): number[] => [...u16(type), ...vec16(body)]
export const str = (s: string): number[] => [...ascii(s)]

/** A handshake message: type, 24-bit length, body. */
export function handshake(type: number, body: number[]): number[] {
  return [type, ...u24(body.length), ...body]
}

/** A handshake record (content type 22) of `version` around `body`. */
export function record(body: number[], version = 0x0301): Uint8Array {
  return Uint8Array.from([22, ...u16(version), ...u16(body.length), ...body])
}

/** A TLS 1.2 ClientHello body offering `suites` cipher suites (0x1000, 0x1001, ...) and the SNI `sni`. */
export function manySuitesHello(suites: number, sni: string): number[] {
  return [
    ...u16(0x0303),
    ...new Array<number>(32).fill(7),
    ...vec8([]),
    ...vec16(Array.from({ length: suites }, (_, i) => u16(0x1000 + i)).flat()),
    ...vec8([0]),
    ...vec16(ext(0, vec16([0, ...vec16(str(sni))]))),
  ]
}
