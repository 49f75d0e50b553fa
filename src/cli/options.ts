/** Parsers for numeric CLI options: each rejects a bad value with a message naming the option and the range. */
import { InvalidArgumentError } from 'commander'

export function intOption(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value.trim()))
      throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`)
    const n = Number(value)
    if (n < min || n > max)
      throw new InvalidArgumentError(`${name} must be between ${min} and ${max}, got ${n}`)
    return n
  }
}

export function secondsOption(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value)
    if (value.trim() === '' || !Number.isFinite(n))
      throw new InvalidArgumentError(`${name} must be a number of seconds, got "${value}"`)
    if (n < min || n > max)
      throw new InvalidArgumentError(`${name} must be between ${min} and ${max} seconds, got ${n}`)
    return n
  }
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}
