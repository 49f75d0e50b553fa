/**
 * Network namespaces for live tests: two namespaces joined by veth pairs, made and removed by the test.
 *
 * All traffic a test makes runs inside these namespaces (`ip netns exec`), never in the host namespace.
 * Names carry the process id and a random part so parallel test files do not collide, and stay within
 * the 15 characters Linux allows for interface names.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** Why namespace tests cannot run here, or null when they can (root and iproute2). */
export function netnsSkipReason(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  if (!['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some((p) => existsSync(p)))
    return 'iproute2 (ip) is not installed'
  return null
}

export async function run(cmd: string, args: readonly string[]): Promise<string> {
  const { stdout } = await execFileAsync(cmd, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
  return stdout
}

/** Two namespaces `a` and `b`; `veth(n)` pairs join them (end `a<n>` in a, `b<n>` in b). */
export class NetnsPair {
  readonly a: string
  readonly b: string
  private readonly tag: string
  private created = false

  constructor() {
    this.tag = `${(process.pid % 10000).toString(36)}${randomBytes(2).toString('hex')}`
    this.a = `fta${this.tag}`
    this.b = `ftb${this.tag}`
  }

  /** Interface name of veth pair `n` on side 'a' or 'b' (at most 15 characters). */
  ifname(side: 'a' | 'b', n: number): string {
    return `v${side}${n}${this.tag}`
  }

  async create(): Promise<void> {
    await run('ip', ['netns', 'add', this.a])
    this.created = true
    await run('ip', ['netns', 'add', this.b])
    await run('ip', ['-n', this.a, 'link', 'set', 'lo', 'up'])
    await run('ip', ['-n', this.b, 'link', 'set', 'lo', 'up'])
  }

  /** Adds veth pair `n`; addresses are optional ('' leaves that end without an address). */
  async veth(n: number, addrA: string, addrB: string, up = true): Promise<void> {
    const ea = this.ifname('a', n)
    const eb = this.ifname('b', n)
    await run('ip', ['link', 'add', ea, 'netns', this.a, 'type', 'veth', 'peer', 'name', eb, 'netns', this.b])
    if (addrA !== '') await run('ip', ['-n', this.a, 'addr', 'add', addrA, 'dev', ea])
    if (addrB !== '') await run('ip', ['-n', this.b, 'addr', 'add', addrB, 'dev', eb])
    if (up) {
      await run('ip', ['-n', this.a, 'link', 'set', ea, 'up'])
      await run('ip', ['-n', this.b, 'link', 'set', eb, 'up'])
    }
  }

  /** Adds VLAN `id` on top of `parent` in namespace `ns`, named `<parent>.<id>` when that fits. */
  async vlan(ns: string, parent: string, id: number, addr: string): Promise<string> {
    const name = `${parent}.${id}`.length <= 15 ? `${parent}.${id}` : `vl${id}${this.tag}`.slice(0, 15)
    await run('ip', ['-n', ns, 'link', 'add', 'link', parent, 'name', name, 'type', 'vlan', 'id', String(id)])
    if (addr !== '') await run('ip', ['-n', ns, 'addr', 'add', addr, 'dev', name])
    await run('ip', ['-n', ns, 'link', 'set', name, 'up'])
    return name
  }

  /** Runs a command inside namespace `ns`. */
  exec(ns: string, cmd: string, args: readonly string[]): Promise<string> {
    return run('ip', ['netns', 'exec', ns, cmd, ...args])
  }

  /** The OS interface index of `name` inside `ns`. */
  async ifIndex(ns: string, name: string): Promise<number> {
    const out = JSON.parse(await run('ip', ['-n', ns, '-j', 'link', 'show', 'dev', name])) as {
      ifindex: number
    }[]
    const index = out[0]?.ifindex
    if (index === undefined) throw new Error(`no ifindex for ${name} in ${ns}`)
    return index
  }

  /** Removes both namespaces (and so every interface in them). Safe to call when create() failed. */
  async destroy(): Promise<void> {
    if (!this.created) return
    for (const ns of [this.a, this.b]) {
      try {
        await run('ip', ['netns', 'del', ns])
      } catch {
        // not created
      }
    }
    this.created = false
  }
}

/** A child `node --import tsx <script>` inside a namespace (optionally through a prefix such as setpriv). */
export interface NodeChild {
  readonly proc: ChildProcess
  /** Resolves with the first stdout line (printed so far or later) that satisfies `test`. */
  waitForLine(test: (line: string) => boolean, timeoutMs?: number): Promise<string>
  /** Like waitForLine, but only lines printed after this call count. */
  nextLine(test: (line: string) => boolean, timeoutMs?: number): Promise<string>
  /** Resolves with exit code, all stdout and stderr once the child exits. */
  readonly done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>
  send(line: string): void
  kill(): void
}

export function spawnNodeInNetns(
  ns: string,
  script: string,
  args: readonly string[],
  prefix: readonly string[] = [],
): NodeChild {
  const proc = spawn(
    'ip',
    ['netns', 'exec', ns, ...prefix, process.execPath, '--import', 'tsx', script, ...args],
    { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  const lineWaiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = []
  const lines: string[] = []
  let partial = ''
  proc.stdout.setEncoding('utf8')
  proc.stderr.setEncoding('utf8')
  proc.stdout.on('data', (chunk: string) => {
    stdout += chunk
    partial += chunk
    let nl
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      lines.push(line)
      for (let i = lineWaiters.length - 1; i >= 0; i--) {
        const w = lineWaiters[i]!
        if (w.test(line)) {
          lineWaiters.splice(i, 1)
          w.resolve(line)
        }
      }
    }
  })
  proc.stderr.on('data', (chunk: string) => (stderr += chunk))
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>(
    (resolve) => {
      proc.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
    },
  )
  const wait = (test: (l: string) => boolean, timeoutMs: number): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`child did not print the expected line; stderr: ${stderr.slice(-2000)}`)),
        timeoutMs,
      )
      lineWaiters.push({
        test,
        resolve: (l) => {
          clearTimeout(timer)
          resolve(l)
        },
      })
      void done.then(() => {
        clearTimeout(timer)
        reject(new Error(`child exited before the expected line; stderr: ${stderr.slice(-2000)}`))
      })
    })
  return {
    proc,
    done,
    waitForLine(test, timeoutMs = 60_000) {
      const seen = lines.find(test)
      return seen !== undefined ? Promise.resolve(seen) : wait(test, timeoutMs)
    },
    nextLine(test, timeoutMs = 60_000) {
      return wait(test, timeoutMs)
    },
    send(line) {
      proc.stdin.write(`${line}\n`)
    },
    kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    },
  }
}
