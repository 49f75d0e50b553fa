/**
 * Validate (the seed's "Validate" button): one ICMP echo to the collector host, reporting reachable or not,
 * the round-trip time and the address the host resolved to.
 *
 * Security: the load balancer this feature is modelled on had a command-injection bug in exactly this
 * path. Here the operator's text never reaches a shell or the ping command line: it must first pass a
 * strict syntax check (an IP literal by node:net isIP, or an RFC 1123 host name; no spaces, control
 * characters or shell metacharacters can pass either), the host is then resolved with dns.lookup, and only
 * the RESOLVED IP literal is handed to `ping` (iputils) as one element of an argument array, after `--`,
 * with spawn's shell off. The spawner and resolver are injectable so tests can prove that bad input
 * spawns nothing.
 */
import { spawn } from 'node:child_process'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { canonicalIp, hasControlChars, hostProblem, printable } from '../config/address.js'
import type { ValidateResult } from './control.js'

export const MAX_ADDRESS_LENGTH = 300

export interface SpawnOutcome {
  /** Exit code, null when killed or not started. */
  code: number | null
  stdout: string
  stderr: string
  timedOut: boolean
  /** Set when the program could not be started (e.g. ENOENT). */
  error?: string
}

/** Runs `file` with `args` (never through a shell) and kills it after `timeoutMs`. */
export type Spawner = (file: string, args: readonly string[], timeoutMs: number) => Promise<SpawnOutcome>
export type Resolver = (host: string) => Promise<{ address: string; family: number }>

export interface ValidateDeps {
  spawn?: Spawner
  lookup?: Resolver
  /** Seconds to wait for the echo reply (ping -W), 1..10; default 2. */
  waitSeconds?: number
  /** Milliseconds allowed for name resolution; default 3000. */
  resolveTimeoutMs?: number
}

/** The input is not an address Validate accepts; nothing was resolved or spawned. */
export class InvalidAddressError extends Error {
  override name = 'InvalidAddressError'
}

export interface ValidateTarget {
  host: string
  port?: number
}

/**
 * Parses host[:port] in the forms a collector address takes: `1.1.1.1`, `1.1.1.1:2055`, `collector.local`,
 * `collector.local:3000`, `[2001:db8::1]:4739`, `[2001:db8::1]` or a bare `2001:db8::1`. Throws
 * InvalidAddressError with the reason.
 */
export function parseValidateAddress(input: unknown): ValidateTarget {
  if (typeof input !== 'string') throw new InvalidAddressError('the address must be a string')
  if (input.length === 0) throw new InvalidAddressError('empty address')
  if (input.length > MAX_ADDRESS_LENGTH)
    throw new InvalidAddressError(`address longer than ${MAX_ADDRESS_LENGTH} characters (${input.length})`)
  if (/\s/.test(input) || hasControlChars(input))
    throw new InvalidAddressError(`"${printable(input)}" contains spaces or control characters`)
  // Only letters, digits and . : - % [ ] can appear in any accepted form; reject the rest outright.
  if (!/^[A-Za-z0-9.:%[\]-]+$/.test(input))
    throw new InvalidAddressError(`"${printable(input)}" contains characters no host name or IP address has`)
  let host: string
  let portText: string | undefined
  if (input.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(input)
    if (m === null) throw new InvalidAddressError(`"${printable(input)}": expected [IPv6] or [IPv6]:port`)
    host = m[1] ?? ''
    portText = m[2]
    if (isIP(host) !== 6) throw new InvalidAddressError(`"${printable(host)}" is not an IPv6 address`)
  } else if (isIP(input) === 6) {
    host = input
  } else {
    const colon = input.lastIndexOf(':')
    host = colon < 0 ? input : input.slice(0, colon)
    portText = colon < 0 ? undefined : input.slice(colon + 1)
    if (host.includes(':'))
      throw new InvalidAddressError(
        `"${printable(input)}": write IPv6 addresses in brackets, e.g. [::1]:4739`,
      )
  }
  if (host.includes('%') && isIP(host) !== 6)
    throw new InvalidAddressError(`"${printable(host)}": a zone index (%) belongs to an IPv6 address`)
  const problem = hostProblem(host)
  if (problem !== undefined) throw new InvalidAddressError(problem)
  if (portText === undefined) return { host }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)
    throw new InvalidAddressError(`bad port "${printable(portText)}" (1..65535)`)
  return { host, port: Number(portText) }
}

/** Validate: never throws; bad input gives reachable false and an error starting with "invalid address". */
export async function validateCollector(input: unknown, deps: ValidateDeps = {}): Promise<ValidateResult> {
  let target: ValidateTarget
  try {
    target = parseValidateAddress(input)
  } catch (e) {
    const shown = typeof input === 'string' ? printable(input) : typeof input
    return {
      address: shown,
      resolved: '',
      reachable: false,
      error: `invalid address: ${(e as Error).message}`,
    }
  }
  const { host } = target
  const wait = Math.min(10, Math.max(1, Math.round(deps.waitSeconds ?? 2)))

  let ip: string
  let family: number
  if (isIP(host) !== 0) {
    ip = host
    family = isIP(host)
  } else {
    try {
      const r = await withTimeout((deps.lookup ?? systemLookup)(host), deps.resolveTimeoutMs ?? 3000)
      ip = r.address
      family = isIP(r.address)
    } catch (e) {
      return {
        address: host,
        resolved: '',
        reachable: false,
        error: `cannot resolve ${host}: ${resolveError(e)}`,
      }
    }
    // Whatever the resolver returned, only an IP literal goes on.
    if (family === 0)
      return {
        address: host,
        resolved: '',
        reachable: false,
        error: `resolver returned a non-address for ${host}`,
      }
  }
  const resolved = family === 6 ? canonicalIp(ip) : ip

  const args = ['-n', '-c', '1', '-W', String(wait), family === 6 ? '-6' : '-4', '--', ip]
  const out = await (deps.spawn ?? spawnProgram)('ping', args, wait * 1000 + 3000)
  if (out.error !== undefined)
    return { address: host, resolved, reachable: false, error: `cannot run ping: ${out.error}` }
  if (out.timedOut) return { address: host, resolved, reachable: false, error: 'ping did not finish in time' }
  const rtt = /time[=<]\s*([\d.]+)\s*ms/.exec(out.stdout)
  if (out.code === 0 && rtt !== null)
    return { address: host, resolved, reachable: true, rttMs: Number(rtt[1]) }
  const why =
    /(Destination [A-Za-z ]*Unreachable|Network is unreachable|Operation not permitted)/i.exec(
      out.stdout + out.stderr,
    )?.[1] ??
    (out.code === 1 ? `no echo reply within ${wait} s` : firstLine(out.stderr) || `ping exit ${out.code}`)
  return { address: host, resolved, reachable: false, error: why }
}

async function systemLookup(host: string): Promise<{ address: string; family: number }> {
  return lookup(host, { verbatim: true })
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

function resolveError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'ENOTFOUND') return 'no such host'
  if (code === 'EAI_AGAIN') return 'temporary DNS failure'
  return e instanceof Error ? e.message : String(e)
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.slice(0, 200) ?? ''
}

/** The real spawner: argument array, no shell, C locale output, output capped, killed at the deadline. */
export const spawnProgram: Spawner = (file, args, timeoutMs) =>
  new Promise((resolve) => {
    let stdout = ''
    let stderr = ''
    let timedOut = false
    let settled = false
    const done = (o: SpawnOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(o)
    }
    const child = spawn(file, [...args], {
      shell: false,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < 65536) stdout += d.toString('utf8')
    })
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 65536) stderr += d.toString('utf8')
    })
    child.on('error', (e) => done({ code: null, stdout, stderr, timedOut, error: e.message }))
    child.on('close', (code) => done({ code, stdout, stderr, timedOut }))
  })
