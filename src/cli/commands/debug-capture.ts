/**
 * `flowtel probe debug-capture start|stop|status|download`: the troubleshooting capture of the export
 * traffic (issue 5) driven from the command line through the probe's REST API (docs/api.md), with fetch.
 *
 * The API address comes from --api (default http://127.0.0.1:8765, or $FLOWTEL_API); the bearer token from
 * --token, --token-file or $FLOWTEL_API_TOKEN (a token in the environment or a file stays out of `ps`).
 */
import { Command, Option } from 'commander'
import { readFile, writeFile } from 'node:fs/promises'
import type { DebugCaptureState } from '../../probe/control.js'
import {
  DEBUG_CAPTURE_MAX_BYTES,
  DEBUG_CAPTURE_MAX_SECONDS,
  DEBUG_CAPTURE_MIN_BYTES,
} from '../../probe/debug-capture.js'
import { intOption, secondsOption } from '../options.js'

const DEFAULT_API = 'http://127.0.0.1:8765'
const CAPTURE_PATH = '/api/v1/telemetry/debug-capture'

interface ApiFlags {
  api?: string
  token?: string
  tokenFile?: string
}

/** Where the command writes (replaceable in tests). */
export interface CliOutput {
  out(text: string): void
}

const stdout: CliOutput = { out: (t) => void process.stdout.write(t) }

function withApiOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--api <url>', `probe REST API base URL (default ${DEFAULT_API})`).env('FLOWTEL_API'),
    )
    .addOption(new Option('--token <token>', 'bearer token of the API').env('FLOWTEL_API_TOKEN'))
    .option('--token-file <file>', 'file whose first line is the bearer token')
}

async function tokenOf(f: ApiFlags): Promise<string | undefined> {
  if (f.token !== undefined) return f.token
  if (f.tokenFile === undefined) return undefined
  const first = (await readFile(f.tokenFile, 'utf8')).split(/\r?\n/)[0]?.trim() ?? ''
  if (first === '') throw new Error(`${f.tokenFile}: the first line is empty`)
  return first
}

/** One API call; an HTTP error becomes an Error with the server's messages. */
async function call(f: ApiFlags, path: string, init: RequestInit = {}): Promise<Response> {
  const base = (f.api ?? DEFAULT_API).replace(/\/+$/, '')
  const token = await tokenOf(f)
  const headers = new Headers(init.headers)
  if (token !== undefined) headers.set('authorization', `Bearer ${token}`)
  let res: Response
  try {
    res = await fetch(`${base}${path}`, { ...init, headers })
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message
    throw new Error(`cannot reach the probe API at ${base}: ${cause ?? (err as Error).message}`)
  }
  if (!res.ok) {
    let detail = res.statusText
    try {
      const body = (await res.json()) as { errors?: unknown }
      if (Array.isArray(body.errors)) detail = body.errors.map(String).join('; ')
    } catch {
      // not JSON: keep the status text
    }
    throw new Error(`${init.method ?? 'GET'} ${path}: HTTP ${res.status}: ${detail}`)
  }
  return res
}

async function state(f: ApiFlags, init?: RequestInit): Promise<DebugCaptureState> {
  return (await (await call(f, CAPTURE_PATH, init)).json()) as DebugCaptureState
}

/** The state as a few readable lines. */
export function formatCaptureState(s: DebugCaptureState): string {
  const lines = [
    `capture: ${s.running ? 'running' : s.startedAt === undefined ? 'never started' : 'stopped'}`,
    `packets: ${s.packets}`,
    `bytes:   ${s.bytes}`,
  ]
  if (s.startedAt !== undefined) lines.push(`started: ${s.startedAt}`)
  if (s.stoppedAt !== undefined) lines.push(`stopped: ${s.stoppedAt} (${s.stopReason ?? 'stopped'})`)
  else if (s.stopReason !== undefined) lines.push(`stop reason: ${s.stopReason}`)
  if (s.maxBytes !== undefined || s.maxSeconds !== undefined)
    lines.push(`limits:  ${s.maxBytes ?? '?'} bytes, ${s.maxSeconds ?? '?'} s`)
  return `${lines.join('\n')}\n`
}

const postJson = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

export function debugCaptureCommand(io: CliOutput = stdout): Command {
  const cmd = new Command('debug-capture').description(
    'capture the export traffic the probe sends, as a .pcap (bounded in size and time)',
  )
  withApiOptions(
    cmd
      .command('start')
      .description('start a capture (replaces the previous one)')
      .option(
        '--max-bytes <n>',
        `stop at this pcap size (default ${10 * 1024 * 1024})`,
        intOption('--max-bytes', DEBUG_CAPTURE_MIN_BYTES, DEBUG_CAPTURE_MAX_BYTES),
      )
      .option(
        '--max-seconds <n>',
        'stop after this long (default 60)',
        secondsOption('--max-seconds', 1, DEBUG_CAPTURE_MAX_SECONDS),
      ),
  ).action(async (f: ApiFlags & { maxBytes?: number; maxSeconds?: number }) => {
    const body: Record<string, unknown> = { action: 'start' }
    if (f.maxBytes !== undefined) body.maxBytes = f.maxBytes
    if (f.maxSeconds !== undefined) body.maxSeconds = f.maxSeconds
    io.out(formatCaptureState(await state(f, postJson(body))))
  })
  withApiOptions(cmd.command('stop').description('stop the capture')).action(async (f: ApiFlags) => {
    io.out(formatCaptureState(await state(f, postJson({ action: 'stop' }))))
  })
  withApiOptions(cmd.command('status').description('show the state of the capture'))
    .option('--json', 'print the state as JSON')
    .action(async (f: ApiFlags & { json?: boolean }) => {
      const s = await state(f)
      io.out(f.json === true ? `${JSON.stringify(s)}\n` : formatCaptureState(s))
    })
  withApiOptions(cmd.command('download').description('save the pcap of the running or last capture'))
    .requiredOption('-o, --output <file>', 'the .pcap file to write')
    .action(async (f: ApiFlags & { output: string }) => {
      const res = await call(f, `${CAPTURE_PATH}.pcap`)
      const bytes = new Uint8Array(await res.arrayBuffer())
      await writeFile(f.output, bytes)
      io.out(`${f.output}: ${bytes.byteLength} bytes\n`)
    })
  return cmd
}
