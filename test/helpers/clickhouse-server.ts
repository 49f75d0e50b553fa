// A private clickhouse-server for tests: its own config in a temp dir (HTTP and native ports picked free,
// listen_host 127.0.0.1 only, data/tmp/log paths under the temp dir, one passwordless `default` user limited
// to loopback, and a one-shard cluster `flowtel_test` pointing at itself for Distributed tables). Started,
// waited for (/ping), stopped (SIGTERM, then SIGKILL) and removed. Debian's 18.16 starts in about 2 s and
// uses about 75 MB, so each test file that needs one starts its own (no globalSetup: `vitest run` of any other
// file should not pay for it). Tests skip, with the reason, when no server binary is installed.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const CANDIDATES = ['/usr/bin/clickhouse-server', '/usr/sbin/clickhouse-server']

/** The server binary (FLOWTEL_CLICKHOUSE_SERVER overrides), or undefined when none is installed. */
export function clickhouseBinary(): string | undefined {
  const env = process.env['FLOWTEL_CLICKHOUSE_SERVER']
  if (env !== undefined && env !== '') return existsSync(env) ? env : undefined
  return CANDIDATES.find((p) => existsSync(p))
}

/** Why ClickHouse tests are skipped here, or undefined when they can run. */
export const CLICKHOUSE_SKIP: string | undefined =
  clickhouseBinary() === undefined
    ? `no clickhouse-server binary (looked at ${CANDIDATES.join(', ')}; apt-get install clickhouse-server)`
    : undefined

export interface ClickHouseServer {
  /** http://127.0.0.1:PORT */
  readonly url: string
  readonly httpPort: number
  readonly tcpPort: number
  readonly dir: string
  /** Milliseconds from spawn to the first successful /ping. */
  readonly startMs: number
  /** Resident memory of the server process in KiB (from /proc), or undefined. */
  rssKiB(): number | undefined
  stop(): Promise<void>
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a !== null ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

function config(dir: string, httpPort: number, tcpPort: number): string {
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/log/server.log</log>
    <errorlog>${dir}/log/error.log</errorlog>
    <console>0</console>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>32</max_concurrent_queries>
  <remote_servers>
    <flowtel_test>
      <shard><replica><host>127.0.0.1</host><port>${tcpPort}</port></replica></shard>
    </flowtel_test>
  </remote_servers>
</yandex>
`
}

const USERS = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`

async function ping(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) })
    return r.ok && (await r.text()).startsWith('Ok')
  } catch {
    return false
  }
}

/** Starts a private server; rejects (with its error log) if it is not answering within `timeoutMs`. */
export async function startClickHouse(timeoutMs = 60_000): Promise<ClickHouseServer> {
  const bin = clickhouseBinary()
  if (bin === undefined) throw new Error(CLICKHOUSE_SKIP)
  const dir = mkdtempSync(join(tmpdir(), 'flowtel-clickhouse-'))
  const httpPort = await freePort()
  let tcpPort = await freePort()
  while (tcpPort === httpPort) tcpPort = await freePort()
  writeFileSync(join(dir, 'config.xml'), config(dir, httpPort, tcpPort))
  writeFileSync(join(dir, 'users.xml'), USERS)
  const t0 = Date.now()
  const child: ChildProcess = spawn(bin, [`--config-file=${join(dir, 'config.xml')}`], {
    cwd: dir,
    stdio: 'ignore',
  })
  const killOnExit = (): void => {
    child.kill('SIGKILL')
  }
  process.once('exit', killOnExit)
  let exited = false
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true
      resolve()
    }),
  )
  const url = `http://127.0.0.1:${httpPort}`
  const errorLog = (): string => {
    try {
      return readFileSync(join(dir, 'log', 'error.log'), 'utf8')
        .split('\n')
        .slice(-20)
        .join('\n')
    } catch {
      return '(no error log)'
    }
  }
  const stop = async (): Promise<void> => {
    process.removeListener('exit', killOnExit)
    if (!exited) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exit
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  while (!(await ping(url))) {
    if (exited || Date.now() - t0 > timeoutMs) {
      const log = errorLog()
      await stop()
      throw new Error(`clickhouse-server did not start (${exited ? 'exited' : 'timed out'}):\n${log}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  const startMs = Date.now() - t0
  return {
    url,
    httpPort,
    tcpPort,
    dir,
    startMs,
    rssKiB: () => {
      try {
        const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))
        return m !== null ? Number(m[1]) : undefined
      } catch {
        return undefined
      }
    },
    stop,
  }
}
