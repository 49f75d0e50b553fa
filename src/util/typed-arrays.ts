/** Helpers for the typed arrays that hold per-flow state. */

export type NumericArray = Float64Array | Uint32Array | Int32Array | Uint16Array | Uint8Array

/** A copy of `a` resized to `size` entries, keeping its first `used` entries (the rest zero). */
export function resized<T extends NumericArray>(a: T, size: number, used: number): T {
  const b = new (a.constructor as new (n: number) => T)(size)
  b.set(a.subarray(0, Math.min(used, size)))
  return b
}

/**
 * Entry i holds one flag per direction in its two low bits (bit `dir`): swap them (the other bits are
 * cleared), as when a flow's initiator turns out to be the other side.
 */
export function swapDirectionBits(a: NumericArray, i: number): void {
  const v = a[i]!
  a[i] = ((v & 1) << 1) | ((v >> 1) & 1)
}

/** Swap entries i and j. */
export function swapEntries(a: NumericArray, i: number, j: number): void {
  const t = a[i]!
  a[i] = a[j]!
  a[j] = t
}
