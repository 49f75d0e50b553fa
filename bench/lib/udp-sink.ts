// A loopback UDP sink in its own process (so its CPU is not charged to the exporter being measured) that
// counts the datagrams and octets it receives and reports them when told to stop.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface SinkCounts {
  readonly datagrams: number
  readonly octets: number
}

export interface UdpSink {
  readonly port: number
  /** Waits until nothing has arrived for `quietMs`, then stops the sink and returns its counts. */
  stop(quietMs?: number): Promise<SinkCounts>
}

// Plain JavaScript run with `node -e`, so the sink needs no TypeScript loader. It listens on 127.0.0.1 only,
// prints {"port":N}, and on a "stop <quietMs>" line waits for quiet, prints its counts and exits.
const SINK_SOURCE = `
const dgram = require('node:dgram')
const readline = require('node:readline')
const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 32 * 1024 * 1024 })
let datagrams = 0, octets = 0, last = Date.now()
sock.on('message', (m) => { datagrams++; octets += m.length; last = Date.now() })
sock.bind(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: sock.address().port }) + '\\n'))
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const quiet = Number(line.split(' ')[1] || 300)
  const t = setInterval(() => {
    if (Date.now() - last < quiet) return
    clearInterval(t)
    process.stdout.write(JSON.stringify({ datagrams, octets }) + '\\n', () => process.exit(0))
  }, 20)
})
`

/** Starts the sink, pinned to `core` with taskset when given and available. */
export async function startUdpSink(taskset: string | undefined, core: number | undefined): Promise<UdpSink> {
  const argv = [process.execPath, '-e', SINK_SOURCE]
  const full = taskset !== undefined && core !== undefined ? [taskset, '-c', String(core), ...argv] : argv
  const [cmd, ...args] = full
  if (cmd === undefined) throw new Error('udp sink: empty argv')
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout })
  const queue: string[] = []
  const waiters: ((line: string) => void)[] = []
  lines.on('line', (l) => {
    const w = waiters.shift()
    if (w) w(l)
    else queue.push(l)
  })
  const nextLine = (timeoutMs: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const q = queue.shift()
      if (q !== undefined) return resolve(q)
      const t = setTimeout(() => reject(new Error('udp sink did not answer')), timeoutMs)
      waiters.push((l) => {
        clearTimeout(t)
        resolve(l)
      })
    })
  const hello = JSON.parse(await nextLine(10_000)) as { port: number }
  return {
    port: hello.port,
    async stop(quietMs = 300) {
      child.stdin.write(`stop ${quietMs}\n`)
      try {
        return JSON.parse(await nextLine(60_000)) as SinkCounts
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL')
      }
    },
  }
}
