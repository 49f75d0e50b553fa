// Validate: command-injection attempts are rejected before anything is resolved or spawned; ping gets an
// argument array with the resolved IP literal only; real echoes to 127.0.0.1 and ::1; and reachable /
// unreachable through `flowtel settings validate` run inside two network namespaces joined by a veth pair
// (root only; nothing is sent to a non-loopback address from the host namespace).
import { existsSync } from 'node:fs'
import { execFile, execFileSync } from 'node:child_process'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../../test/helpers/shared.js'
import {
  InvalidAddressError,
  parseValidateAddress,
  validateCollector,
  type Resolver,
  type SpawnOutcome,
  type Spawner,
} from './validate.js'

const run = promisify(execFile)

/** A spawner and resolver that record their calls (and answer like iputils ping on success). */
function recorder(outcome: Partial<SpawnOutcome> = {}, resolved = '192.0.2.55') {
  const spawned: { file: string; args: readonly string[] }[] = []
  const looked: string[] = []
  const spawn: Spawner = (file, args) => {
    spawned.push({ file, args })
    return Promise.resolve({
      code: 0,
      stdout: '64 bytes from x: icmp_seq=1 ttl=64 time=0.321 ms\n',
      stderr: '',
      timedOut: false,
      ...outcome,
    })
  }
  const lookup: Resolver = (host) => {
    looked.push(host)
    return Promise.resolve({ address: resolved, family: 4 })
  }
  return { spawn, lookup, spawned, looked }
}

const INJECTIONS = [
  '1.1.1.1;id',
  '$(reboot)',
  '`id`',
  '1.1.1.1 && id',
  '1.1.1.1|id',
  '1.1.1.1||id',
  '1.1.1.1&id',
  '-f',
  '--help',
  '-c 1000 1.1.1.1',
  'a b',
  '1.1.1.1\nid',
  '1.1.1.1\0id',
  '1.1.1.1\rid',
  'x'.repeat(64) + '.example',
  `${'a'.repeat(60)}.`.repeat(5) + 'example',
  'a'.repeat(100_000),
  '1.1.1.1:4739;id',
  '1.1.1.1:4739$(id)',
  '[::1];id',
  '[::1]:4739;id',
  'fe80::1%eth0;id',
  'fe80::1%$(id)',
  'host.example/../../etc',
  "1.1.1.1'",
  '1.1.1.1"',
  '1.1.1.1>out',
  '1.1.1.1<in',
  '*',
  '~root',
  '1.1.1.1#x',
  '',
  ':4739',
  '1.1.1.1:',
  '1.1.1.1:0',
  '1.1.1.1:65536',
  '1.1.1.1:-1',
  '999.1.1.1',
  '[1.1.1.1]:4739',
  '2001:db8::1:4739:x',
]

describe('Validate input checks', () => {
  it('rejects every injection attempt before resolving or spawning anything', async () => {
    for (const bad of INJECTIONS) {
      expect(() => parseValidateAddress(bad), JSON.stringify(bad)).toThrow(InvalidAddressError)
      const rec = recorder()
      const r = await validateCollector(bad, { spawn: rec.spawn, lookup: rec.lookup })
      expect(r.reachable).toBe(false)
      expect(r.resolved).toBe('')
      expect(r.error).toMatch(/^invalid address: /)
      expect(rec.spawned, JSON.stringify(bad)).toEqual([])
      expect(rec.looked, JSON.stringify(bad)).toEqual([])
    }
    // Not a string at all (a JSON body over REST).
    const rec = recorder()
    for (const v of [undefined, null, 42, ['1.1.1.1'], { host: '1.1.1.1' }])
      expect((await validateCollector(v, { spawn: rec.spawn, lookup: rec.lookup })).error).toMatch(/^invalid/)
    expect(rec.spawned).toEqual([])
  })

  it('for any text: either refused as InvalidAddressError or a host of safe characters; ping only ever gets an IP', async () => {
    const metachar = fc.constantFrom(
      ';',
      '|',
      '&',
      '$',
      '`',
      '(',
      ')',
      '<',
      '>',
      ' ',
      '\n',
      '\0',
      "'",
      '"',
      '-',
      '*',
    )
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc
        .array(
          fc.oneof(fc.constantFrom('1.1.1.1', '::1', '[', ']', ':', '4739', 'a.example', '%eth0'), metachar),
          {
            maxLength: 8,
          },
        )
        .map((parts) => parts.join('')),
    )
    await fc.assert(
      fc.asyncProperty(text, async (input) => {
        let host: string | undefined
        try {
          host = parseValidateAddress(input).host
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidAddressError)
        }
        if (host !== undefined) {
          expect(host).toMatch(/^[A-Za-z0-9.:%]/)
          expect(host).toMatch(/^[A-Za-z0-9.:%-]+$/)
        }
        const rec = recorder({}, '192.0.2.9')
        await validateCollector(input, { spawn: rec.spawn, lookup: rec.lookup })
        expect(rec.spawned.length).toBe(host === undefined ? 0 : 1)
        for (const call of rec.spawned) {
          expect(call.file).toBe('ping')
          expect(call.args.slice(0, -1)).toEqual(expect.arrayContaining(['-n', '-c', '1', '--']))
          expect(isIP(call.args.at(-1) ?? '')).not.toBe(0)
        }
      }),
      { numRuns: 800 },
    )
  })

  it('accepts every collector address form', () => {
    expect(parseValidateAddress('1.1.1.1')).toEqual({ host: '1.1.1.1' })
    expect(parseValidateAddress('1.1.1.1:2055')).toEqual({ host: '1.1.1.1', port: 2055 })
    expect(parseValidateAddress('collector.local:3000')).toEqual({ host: 'collector.local', port: 3000 })
    expect(parseValidateAddress('Collector-1.example.')).toEqual({ host: 'Collector-1.example.' })
    expect(parseValidateAddress('[2001:db8::1]:4739')).toEqual({ host: '2001:db8::1', port: 4739 })
    expect(parseValidateAddress('[2001:db8::1]')).toEqual({ host: '2001:db8::1' })
    expect(parseValidateAddress('2001:db8::1')).toEqual({ host: '2001:db8::1' })
    expect(parseValidateAddress('fe80::1%eth0')).toEqual({ host: 'fe80::1%eth0' })
  })

  it('passes only the resolved IP literal, as one array element after --', async () => {
    const rec = recorder({}, '192.0.2.55')
    const r = await validateCollector('collector.example:4739', { spawn: rec.spawn, lookup: rec.lookup })
    expect(rec.looked).toEqual(['collector.example'])
    expect(rec.spawned).toEqual([
      { file: 'ping', args: ['-n', '-c', '1', '-W', '2', '-4', '--', '192.0.2.55'] },
    ])
    expect(r).toEqual({ address: 'collector.example', resolved: '192.0.2.55', reachable: true, rttMs: 0.321 })

    const v6 = recorder()
    await validateCollector('[2001:DB8::1]:4739', { spawn: v6.spawn, lookup: v6.lookup, waitSeconds: 5 })
    expect(v6.looked).toEqual([]) // a literal is not looked up
    expect(v6.spawned[0]?.args).toEqual(['-n', '-c', '1', '-W', '5', '-6', '--', '2001:DB8::1'])
  })

  it('does not spawn when the resolver answers with something that is not an address', async () => {
    const rec = recorder({}, '1.1.1.1;id')
    const r = await validateCollector('evil.example', { spawn: rec.spawn, lookup: rec.lookup })
    expect(r).toEqual({
      address: 'evil.example',
      resolved: '',
      reachable: false,
      error: 'resolver returned a non-address for evil.example',
    })
    expect(rec.spawned).toEqual([])
  })

  it('reports resolution failures and timeouts, ping failures and a missing ping', async () => {
    const rec = recorder()
    const nx = Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })
    const failing: Resolver = () => Promise.reject(nx)
    expect(await validateCollector('nx.example', { spawn: rec.spawn, lookup: failing })).toEqual({
      address: 'nx.example',
      resolved: '',
      reachable: false,
      error: 'cannot resolve nx.example: no such host',
    })
    const hanging: Resolver = () => new Promise(() => {})
    const slow = await validateCollector('slow.example', {
      spawn: rec.spawn,
      lookup: hanging,
      resolveTimeoutMs: 50,
    })
    expect(slow.error).toBe('cannot resolve slow.example: no answer within 50 ms')
    expect(rec.spawned).toEqual([])

    const noReply = recorder({ code: 1, stdout: '1 packets transmitted, 0 received\n' })
    expect((await validateCollector('192.0.2.1', noReply)).error).toBe('no echo reply within 2 s')
    const unreach = recorder({ code: 1, stdout: 'From 10.0.0.1 icmp_seq=1 Destination Host Unreachable\n' })
    expect((await validateCollector('192.0.2.1', unreach)).error).toBe('Destination Host Unreachable')
    const missing = recorder({ code: null, stdout: '', error: 'spawn ping ENOENT' })
    expect(await validateCollector('192.0.2.1', missing)).toEqual({
      address: '192.0.2.1',
      resolved: '192.0.2.1',
      reachable: false,
      error: 'cannot run ping: spawn ping ENOENT',
    })
    const killed = recorder({ code: null, timedOut: true })
    expect((await validateCollector('192.0.2.1', killed)).error).toBe('ping did not finish in time')
  })
})

const hasV6Loopback = Object.values(networkInterfaces())
  .flat()
  .some((a) => a?.address === '::1')

/** Validate runs iputils `ping`; without it (a bare machine) the real-ping tests say so and skip. */
const hasPing = ['/usr/bin/ping', '/bin/ping', '/usr/sbin/ping', '/sbin/ping'].some((p) => existsSync(p))

describe.skipIf(!hasPing)('Validate with the real ping (loopback only; skipped without iputils-ping)', () => {
  it('reaches 127.0.0.1 with an RTT and the resolved address', async () => {
    const r = await validateCollector('127.0.0.1:4739')
    expect(r).toEqual({
      address: '127.0.0.1',
      resolved: '127.0.0.1',
      reachable: true,
      rttMs: expect.any(Number) as number,
    })
    expect(r.rttMs).toBeGreaterThanOrEqual(0)
  })

  it.skipIf(!hasV6Loopback)('reaches [::1] (skipped when the host has no IPv6 loopback)', async () => {
    const r = await validateCollector('[::1]:4739')
    expect(r).toEqual({
      address: '::1',
      resolved: '::1',
      reachable: true,
      rttMs: expect.any(Number) as number,
    })
  })

  it('resolves localhost from the hosts file and pings what it resolved to', async () => {
    const r = await validateCollector('localhost')
    expect(r.reachable).toBe(true)
    expect(['127.0.0.1', '::1']).toContain(r.resolved)
  })
})

// Two namespaces joined by a veth pair: the CLI runs in A, pings B's address (reachable) and an unused
// address of the same subnet (unreachable). Needs root for `ip netns`.
const isRoot = process.getuid?.() === 0
const ENTRY =
  "import { main } from './src/cli/main.ts'; await main(['node', 'flowtel', ...process.argv.slice(1)])"

describe.skipIf(!isRoot || !hasPing)(
  'flowtel settings validate in network namespaces (skipped: needs root for ip netns)',
  () => {
    const id = `${process.pid % 100000}`
    const nsA = `ftcfg-${id}-a`
    const nsB = `ftcfg-${id}-b`
    const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' })

    beforeAll(() => {
      ip('netns', 'add', nsA)
      ip('netns', 'add', nsB)
      ip('link', 'add', `ftc${id}a`, 'type', 'veth', 'peer', 'name', `ftc${id}b`)
      ip('link', 'set', `ftc${id}a`, 'netns', nsA)
      ip('link', 'set', `ftc${id}b`, 'netns', nsB)
      ip('-n', nsA, 'addr', 'add', '10.251.17.1/24', 'dev', `ftc${id}a`)
      ip('-n', nsB, 'addr', 'add', '10.251.17.2/24', 'dev', `ftc${id}b`)
      for (const [ns, dev] of [
        [nsA, `ftc${id}a`],
        [nsB, `ftc${id}b`],
      ] as const) {
        ip('-n', ns, 'link', 'set', dev, 'up')
        ip('-n', ns, 'link', 'set', 'lo', 'up')
      }
    })

    afterAll(() => {
      // Deleting a namespace deletes the veth end inside it; an end left in this namespace (a setup step
      // that failed half way) is deleted by name.
      for (const args of [
        ['netns', 'del', nsA],
        ['netns', 'del', nsB],
        ['link', 'del', `ftc${id}a`],
      ])
        try {
          ip(...args)
        } catch {
          // already gone
        }
    })

    async function validateIn(ns: string, ...args: string[]): Promise<{ code: number; stdout: string }> {
      try {
        const r = await run(
          'ip',
          [
            'netns',
            'exec',
            ns,
            process.execPath,
            '--import',
            'tsx',
            '--input-type=module',
            '-e',
            ENTRY,
            '--',
            'settings',
            'validate',
            ...args,
          ],
          { cwd: REPO_ROOT, timeout: 60_000 },
        )
        return { code: 0, stdout: r.stdout }
      } catch (e) {
        const err = e as { code?: number; stdout?: string }
        return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '' }
      }
    }

    it('exits 0 with the RTT for the peer, 1 for an unused address, 2 for an injection', async () => {
      const peer = await validateIn(nsA, '10.251.17.2:4739')
      expect(peer.code).toBe(0)
      expect(peer.stdout).toMatch(/^reachable: 10\.251\.17\.2 \(10\.251\.17\.2\) rtt [\d.]+ ms\n$/)

      const unused = await validateIn(nsA, '10.251.17.3', '--wait', '1', '--json')
      expect(unused.code).toBe(1)
      expect(JSON.parse(unused.stdout)).toEqual({
        address: '10.251.17.3',
        resolved: '10.251.17.3',
        reachable: false,
        error: expect.stringMatching(/^(Destination Host Unreachable|no echo reply within 1 s)$/) as string,
      })

      expect((await validateIn(nsA, '10.251.17.2;id')).code).toBe(2)
    }, 300_000)
  },
)
