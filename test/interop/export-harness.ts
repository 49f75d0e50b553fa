// Interop harness: a loopback UDP receiver, pcap/raw-IPFIX writers for what it received, a bounded process
// runner, and thin wrappers around the peers (nfcapd/nfdump, tshark, ipfixDump) used by the interop suites.
import { spawn, spawnSync } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'

// ---------------------------------------------------------------------------------------------------------
// Tools

/** True when `name` resolves to an executable on PATH (checked once per name). */
export function hasBinary(name: string): boolean {
  const cached = binaryCache.get(name)
  if (cached !== undefined) return cached
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore' })
  const ok = r.status === 0
  binaryCache.set(name, ok)
  return ok
}
const binaryCache = new Map<string, boolean>()

/** Names of the given binaries that are missing, for skip messages. */
export function missingBinaries(...names: string[]): string[] {
  return names.filter((n) => !hasBinary(n))
}

/** A fresh scratch directory under the OS temp dir; remove it with `removeDir`. */
export async function makeTempDir(prefix = 'flowtel-interop-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix))
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}

// ---------------------------------------------------------------------------------------------------------
// Loopback UDP receiver

export interface ReceivedDatagram {
  readonly data: Buffer
  /** Arrival time, monotonic (process.hrtime.bigint()), for ordering and gaps. */
  readonly arrivalNs: bigint
  /** Arrival time as wall-clock milliseconds, used for pcap timestamps. */
  readonly wallMs: number
  /** Sender port (the exporter's source port). */
  readonly srcPort: number
}

export interface UdpReceiver {
  readonly port: number
  readonly datagrams: readonly ReceivedDatagram[]
  /** Resolves once `count` datagrams arrived, or rejects after `timeoutMs`. */
  waitForCount(count: number, timeoutMs: number): Promise<void>
  /** Resolves once nothing has arrived for `idleMs` (or `maxMs` passed). */
  waitForQuiet(idleMs: number, maxMs: number): Promise<void>
  close(): Promise<void>
}

/** Starts a UDP receiver on 127.0.0.1 with an ephemeral port that keeps every datagram it gets. */
export async function startUdpReceiver(): Promise<UdpReceiver> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 * 1024 * 1024 })
  const datagrams: ReceivedDatagram[] = []
  let lastArrival = process.hrtime.bigint()
  sock.on('message', (msg, rinfo) => {
    lastArrival = process.hrtime.bigint()
    datagrams.push({
      data: Buffer.from(msg),
      arrivalNs: lastArrival,
      wallMs: Date.now(),
      srcPort: rinfo.port,
    })
  })
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject)
    sock.bind(0, '127.0.0.1', () => {
      sock.off('error', reject)
      resolve()
    })
  })
  const port = sock.address().port
  let closed = false
  return {
    port,
    datagrams,
    async waitForCount(count, timeoutMs) {
      const deadline = Date.now() + timeoutMs
      while (datagrams.length < count) {
        if (Date.now() > deadline) {
          throw new Error(`udp receiver: ${datagrams.length} of ${count} datagrams after ${timeoutMs} ms`)
        }
        await sleep(10)
      }
    },
    async waitForQuiet(idleMs, maxMs) {
      const start = Date.now()
      lastArrival = process.hrtime.bigint()
      while (Date.now() - start < maxMs) {
        const idleNs = process.hrtime.bigint() - lastArrival
        if (idleNs >= BigInt(idleMs) * 1_000_000n) return
        await sleep(Math.min(idleMs, 20))
      }
    },
    async close() {
      if (closed) return
      closed = true
      await new Promise<void>((resolve) => sock.close(() => resolve()))
    },
  }
}

/** An ephemeral UDP port on 127.0.0.1 that was free a moment ago (for peers that need a port number up front). */
export async function freeUdpPort(): Promise<number> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject)
    sock.bind(0, '127.0.0.1', () => resolve())
  })
  const port = sock.address().port
  await new Promise<void>((resolve) => sock.close(() => resolve()))
  return port
}

/** Sends datagrams to 127.0.0.1:port in order, yielding every `burst` datagrams so a loopback peer keeps up. */
export async function replayDatagrams(
  datagrams: readonly { readonly data: Buffer }[],
  port: number,
  burst = 32,
): Promise<void> {
  const sock = dgram.createSocket('udp4')
  try {
    let i = 0
    for (const d of datagrams) {
      await new Promise<void>((resolve, reject) => {
        sock.send(d.data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve()))
      })
      if (++i % burst === 0) await sleep(2)
    }
  } finally {
    await new Promise<void>((resolve) => sock.close(() => resolve()))
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writers

/** Raw IPFIX message file (RFC 5655 style: messages back to back), as `ipfixDump --in` reads it. */
export async function writeIpfixFile(
  datagrams: readonly { readonly data: Buffer }[],
  file: string,
): Promise<void> {
  await writeFile(file, Buffer.concat(datagrams.map((d) => d.data)))
}

export interface PcapWriteOptions {
  /** UDP destination port written into every packet (decode it with `-d udp.port==PORT,cflow`). */
  readonly dstPort: number
  /** UDP source port; defaults to each datagram's recorded source port, else 40000. */
  readonly srcPort?: number
}

/**
 * Writes the datagrams as a classic pcap (µs, LINKTYPE_ETHERNET) with synthesized Ethernet, IPv4 and UDP
 * headers, 127.0.0.1 -> 127.0.0.1. The IPv4 checksum is computed; the UDP checksum is 0 (none, legal in IPv4).
 */
export async function writePcap(
  datagrams: readonly { readonly data: Buffer; readonly wallMs?: number; readonly srcPort?: number }[],
  file: string,
  opts: PcapWriteOptions,
): Promise<void> {
  const parts: Buffer[] = []
  const gh = Buffer.alloc(24)
  gh.writeUInt32LE(0xa1b2c3d4, 0)
  gh.writeUInt16LE(2, 4)
  gh.writeUInt16LE(4, 6)
  gh.writeInt32LE(0, 8)
  gh.writeUInt32LE(0, 12)
  gh.writeUInt32LE(262144, 16)
  gh.writeUInt32LE(1, 20) // LINKTYPE_ETHERNET
  parts.push(gh)
  let ident = 1
  let fallbackMs = Date.now()
  for (const d of datagrams) {
    const payload = d.data
    const ipLen = 20 + 8 + payload.length
    if (ipLen > 0xffff) throw new Error(`datagram of ${payload.length} octets does not fit one IPv4 packet`)
    const frame = Buffer.alloc(14 + ipLen)
    // Ethernet: locally administered MACs, EtherType IPv4.
    Buffer.from([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]).copy(frame, 0)
    const ip = 14
    frame[ip] = 0x45
    frame.writeUInt16BE(ipLen, ip + 2)
    frame.writeUInt16BE(ident++ & 0xffff, ip + 4)
    frame.writeUInt16BE(0x4000, ip + 6) // DF
    frame[ip + 8] = 64
    frame[ip + 9] = 17
    frame.writeUInt32BE(0x7f000001, ip + 12)
    frame.writeUInt32BE(0x7f000001, ip + 16)
    frame.writeUInt16BE(ipv4Checksum(frame.subarray(ip, ip + 20)), ip + 10)
    const udp = ip + 20
    frame.writeUInt16BE(opts.srcPort ?? d.srcPort ?? 40000, udp)
    frame.writeUInt16BE(opts.dstPort, udp + 2)
    frame.writeUInt16BE(8 + payload.length, udp + 4)
    payload.copy(frame, udp + 8)
    const ms = d.wallMs ?? fallbackMs++
    const rh = Buffer.alloc(16)
    rh.writeUInt32LE(Math.floor(ms / 1000), 0)
    rh.writeUInt32LE(Math.round((ms % 1000) * 1000), 4)
    rh.writeUInt32LE(frame.length, 8)
    rh.writeUInt32LE(frame.length, 12)
    parts.push(rh, frame)
  }
  await writeFile(file, Buffer.concat(parts))
}

function ipv4Checksum(hdr: Buffer): number {
  let sum = 0
  for (let i = 0; i + 1 < hdr.length; i += 2) sum += hdr.readUInt16BE(i)
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

// ---------------------------------------------------------------------------------------------------------
// Process runner

export interface RunOptions {
  /** SIGTERM after this long (default 60 s). */
  readonly timeoutMs?: number
  /** SIGKILL this long after SIGTERM if still running (default 3 s). */
  readonly killAfterMs?: number
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  /** Written to stdin, which is then closed; stdin is /dev/null otherwise. */
  readonly input?: string | Buffer
  /** Keep at most this many octets of stdout/stderr each (default 64 MiB). */
  readonly maxOutput?: number
}

export interface RunResult {
  readonly argv: readonly string[]
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
  readonly durationMs: number
}

/**
 * Runs argv to completion. On timeout the process group gets SIGTERM, then SIGKILL after `killAfterMs`
 * (peers such as nfacctd and softflowd have been seen to ignore SIGTERM). Never rejects for a non-zero exit.
 */
export function runCommand(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv
  if (cmd === undefined) return Promise.reject(new Error('runCommand: empty argv'))
  const timeoutMs = opts.timeoutMs ?? 60_000
  const killAfterMs = opts.killAfterMs ?? 3_000
  const maxOutput = opts.maxOutput ?? 64 * 1024 * 1024
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout also reaches its children
    })
    const out = collect(child.stdout, maxOutput)
    const err = collect(child.stderr, maxOutput)
    if (opts.input !== undefined && child.stdin) child.stdin.end(opts.input)
    let timedOut = false
    let killTimer: NodeJS.Timeout | undefined
    const termTimer = setTimeout(() => {
      timedOut = true
      signalGroup(child.pid, 'SIGTERM')
      killTimer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), killAfterMs)
    }, timeoutMs)
    child.once('error', (e) => {
      clearTimeout(termTimer)
      if (killTimer) clearTimeout(killTimer)
      reject(new Error(`cannot run ${argv.join(' ')}: ${e.message}`))
    })
    child.once('close', (code, signal) => {
      clearTimeout(termTimer)
      if (killTimer) clearTimeout(killTimer)
      resolve({
        argv,
        code,
        signal,
        stdout: out(),
        stderr: err(),
        timedOut,
        durationMs: Date.now() - started,
      })
    })
  })
}

/** A long-running child (a collector) that the caller stops. */
export interface Background {
  readonly pid: number
  /** Everything written to stdout and stderr so far. */
  output(): string
  /** Resolves when `pattern` has appeared in the output, rejects after timeoutMs or if the process exits. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void>
  /** SIGTERM, then SIGKILL after killAfterMs; resolves with the exit status once it is gone. */
  stop(killAfterMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export function startBackground(argv: readonly string[], opts: { cwd?: string } = {}): Background {
  const [cmd, ...args] = argv
  if (cmd === undefined) throw new Error('startBackground: empty argv')
  const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let text = ''
  child.stdout.on('data', (b: Buffer) => (text += b.toString()))
  child.stderr.on('data', (b: Buffer) => (text += b.toString()))
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      exit = { code, signal }
      resolve(exit)
    })
    child.once('error', (e) => {
      text += `\nspawn error: ${e.message}\n`
      exit = { code: -1, signal: null }
      resolve(exit)
    })
  })
  const pid = child.pid ?? -1
  return {
    pid,
    output: () => text,
    async waitForOutput(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs
      while (!pattern.test(text)) {
        if (exit)
          throw new Error(
            `${argv.join(' ')} exited (${exit.code ?? exit.signal}) before ${pattern}:\n${text}`,
          )
        if (Date.now() > deadline)
          throw new Error(`${argv.join(' ')}: no ${pattern} after ${timeoutMs} ms:\n${text}`)
        await sleep(20)
      }
    },
    async stop(killAfterMs = 3_000) {
      if (!exit) {
        signalGroup(child.pid, 'SIGTERM')
        const t = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), killAfterMs)
        await exited
        clearTimeout(t)
      }
      return exited
    },
  }
}

function signalGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return
  try {
    process.kill(-pid, sig)
  } catch {
    try {
      process.kill(pid, sig)
    } catch {
      // Already gone.
    }
  }
}

function collect(stream: NodeJS.ReadableStream | null, max: number): () => string {
  const chunks: Buffer[] = []
  let size = 0
  stream?.on('data', (b: Buffer) => {
    if (size >= max) return
    chunks.push(b)
    size += b.length
  })
  return () => Buffer.concat(chunks).toString('utf8')
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Runs an exporter that sends to a fresh loopback receiver; `makeArgv` gets the receiver's port. */
export async function captureExport(
  makeArgv: (port: number) => readonly string[],
  opts: RunOptions & { readonly quietMs?: number } = {},
): Promise<{ run: RunResult; datagrams: readonly ReceivedDatagram[]; port: number }> {
  const rx = await startUdpReceiver()
  try {
    const run = await runCommand(makeArgv(rx.port), opts)
    // Datagrams sent just before exit may still sit in the socket buffer.
    await rx.waitForQuiet(opts.quietMs ?? 200, 5_000)
    return { run, datagrams: [...rx.datagrams], port: rx.port }
  } finally {
    await rx.close()
  }
}

// ---------------------------------------------------------------------------------------------------------
// IPFIX message headers (for counting without a peer)

export interface IpfixHeader {
  readonly version: number
  readonly length: number
  readonly exportTime: number
  readonly sequence: number
  readonly domain: number
}

export function ipfixHeader(msg: Buffer): IpfixHeader | undefined {
  if (msg.length < 16) return undefined
  return {
    version: msg.readUInt16BE(0),
    length: msg.readUInt16BE(2),
    exportTime: msg.readUInt32BE(4),
    sequence: msg.readUInt32BE(8),
    domain: msg.readUInt32BE(12),
  }
}

// ---------------------------------------------------------------------------------------------------------
// nfcapd / nfdump

export interface NfFlow {
  readonly srcAddr: string
  readonly dstAddr: string
  readonly srcPort: number
  readonly dstPort: number
  readonly proto: number
  readonly inPackets: number
  readonly inBytes: number
  readonly outPackets: number
  readonly outBytes: number
  readonly raw: Record<string, unknown>
}

export interface NfcapdResult {
  readonly flows: readonly NfFlow[]
  /** Sums over flows; packets and bytes include the reverse (out_*) counters, as nfdump's own summary does. */
  readonly totals: { flows: number; packets: number; bytes: number }
  /** nfcapd's own "Ident: ... Flows: N, Packets: N, Bytes: N, Sequence Errors: N, Bad Packets: N" line. */
  readonly stat:
    { flows: number; packets: number; bytes: number; sequenceErrors: number; badPackets: number } | undefined
  /** nfdump's own summary block (`-o csv`), an independent sum over the same files. */
  readonly summary: { flows: number; packets: number; bytes: number } | undefined
  readonly log: string
}

/**
 * Starts nfcapd on 127.0.0.1 (ephemeral port), calls `feed(port)` to deliver the export, stops nfcapd with
 * SIGTERM (which flushes its file) and reads the directory back with nfdump.
 */
export async function collectWithNfcapd(feed: (port: number) => Promise<void>): Promise<NfcapdResult> {
  const dir = await makeTempDir('flowtel-nfcapd-')
  try {
    const flowDir = path.join(dir, 'flows')
    await mkdir(flowDir)
    const port = await freeUdpPort()
    const nfcapd = startBackground([
      'nfcapd',
      '-w',
      flowDir,
      '-b',
      '127.0.0.1',
      '-p',
      String(port),
      '-t',
      '3600',
    ])
    try {
      await nfcapd.waitForOutput(/Startup nfcapd/, 10_000)
      await feed(port)
      await sleep(300) // Let nfcapd drain its socket before SIGTERM.
    } finally {
      await nfcapd.stop()
    }
    const log = nfcapd.output()
    const json = await runCommand(['nfdump', '-R', flowDir, '-o', 'json'], { timeoutMs: 60_000 })
    if (json.code !== 0) throw new Error(`nfdump -o json failed (${json.code}): ${json.stderr}`)
    const flows = parseNfdumpJson(json.stdout)
    const sum = await runCommand(['nfdump', '-R', flowDir, '-o', 'csv'], { timeoutMs: 60_000 })
    const totals = { flows: 0, packets: 0, bytes: 0 }
    for (const f of flows) {
      totals.flows += 1
      totals.packets += f.inPackets + f.outPackets
      totals.bytes += f.inBytes + f.outBytes
    }
    return { flows, totals, stat: parseNfcapdStat(log), summary: parseNfdumpSummary(sum.stdout), log }
  } finally {
    await removeDir(dir)
  }
}

/** nfdump `-o json` prints a JSON array (or nothing at all when there are no flows). */
export function parseNfdumpJson(text: string): NfFlow[] {
  const trimmed = text.trim()
  if (trimmed === '' || !trimmed.startsWith('[')) return []
  const rows = JSON.parse(trimmed) as Record<string, unknown>[]
  return rows
    .filter((r) => r['type'] === undefined || r['type'] === 'FLOW')
    .map((r) => ({
      srcAddr: str(r['src4_addr'] ?? r['src6_addr']),
      dstAddr: str(r['dst4_addr'] ?? r['dst6_addr']),
      srcPort: num(r['src_port']),
      dstPort: num(r['dst_port']),
      proto: num(r['proto']),
      inPackets: num(r['in_packets']),
      inBytes: num(r['in_bytes']),
      outPackets: num(r['out_packets']),
      outBytes: num(r['out_bytes']),
      raw: r,
    }))
}

export function parseNfcapdStat(log: string): NfcapdResult['stat'] {
  const m = /Flows: (\d+), Packets: (\d+), Bytes: (\d+), Sequence Errors: (\d+), Bad Packets: (\d+)/.exec(log)
  if (!m) return undefined
  return {
    flows: Number(m[1]),
    packets: Number(m[2]),
    bytes: Number(m[3]),
    sequenceErrors: Number(m[4]),
    badPackets: Number(m[5]),
  }
}

/** Parses the "Summary" block at the end of `nfdump -o csv`: a `flows,bytes,packets,...` header and one row. */
export function parseNfdumpSummary(text: string): NfcapdResult['summary'] {
  const lines = text.split('\n').map((l) => l.trim())
  const h = lines.findIndex((l) => l.startsWith('flows,bytes,packets'))
  const row = h >= 0 ? lines[h + 1] : undefined
  if (row === undefined) return undefined
  const [flows, bytes, packets] = row.split(',').map(Number)
  if (flows === undefined || bytes === undefined || packets === undefined) return undefined
  return { flows, packets, bytes }
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : ''
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : 0
}

// ---------------------------------------------------------------------------------------------------------
// tshark

/** Base arguments for decoding our pcap: IPFIX on `port`, no template field limit (quirk 6.1a). */
export function tsharkBaseArgs(pcap: string, port: number): string[] {
  return ['tshark', '-n', '-r', pcap, '-d', `udp.port==${port},cflow`, '-o', 'cflow.max_template_fields:0']
}

/**
 * The conformance gate `-Y '_ws.expert || _ws.malformed'` (empty = clean), one line per matching frame:
 * "frame N: <expert messages>", so a failure says what tshark objected to.
 */
export async function tsharkExpertLines(pcap: string, port: number): Promise<string[]> {
  const args = [...tsharkBaseArgs(pcap, port), '-Y', '_ws.expert || _ws.malformed', '-T', 'fields']
  args.push('-E', 'occurrence=a', '-E', 'aggregator=|', '-e', 'frame.number', '-e', '_ws.expert.message')
  const r = await runCommand(args)
  if (r.code !== 0) throw new Error(`tshark failed (${r.code}): ${r.stderr}`)
  // Wireshark's UDP dissector flags any datagram to a port in 33434-33534 as a "Possible traceroute"; the
  // collector port is one the OS picked, so that note says nothing about the export and is left out.
  const traceroute = /^Possible traceroute: hop #\d+, attempt #\d+$/
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [frame = '', messages = ''] = l.split('\t')
      return {
        frame,
        messages: messages.split('|').filter((m) => !traceroute.test(m)),
        malformed: messages === '',
      }
    })
    .filter((e) => e.malformed || e.messages.length > 0)
    .map((e) => `frame ${e.frame}: ${e.malformed ? '(malformed, no expert message)' : e.messages.join('|')}`)
}

/** The verbose cflow decode of the given frames (for failure messages). */
export async function tsharkVerbose(pcap: string, port: number, filter?: string): Promise<string> {
  const args = [...tsharkBaseArgs(pcap, port), '-V', '-O', 'cflow']
  if (filter !== undefined) args.push('-Y', filter)
  const r = await runCommand(args)
  return r.stdout
}

/**
 * `-T fields` output, one row per frame, each field split on tshark's occurrence separator (',' by default):
 * cflow fields occur once per record in a frame, so a row's arrays line up record by record.
 */
export async function tsharkFields(
  pcap: string,
  port: number,
  fields: readonly string[],
): Promise<string[][][]> {
  const args = [...tsharkBaseArgs(pcap, port), '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a']
  args.push('-E', 'aggregator=;')
  for (const f of fields) args.push('-e', f)
  const r = await runCommand(args)
  if (r.code !== 0) throw new Error(`tshark failed (${r.code}): ${r.stderr}`)
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t').map((cell) => (cell === '' ? [] : cell.split(';'))))
}

/**
 * Ground truth for a traffic capture: number of IP packets and their IP-level octets (IPv4 total length,
 * IPv6 payload length + 40, outermost header only; RFC 7012 octetDeltaCount), as tshark decodes them.
 */
export async function captureIpTotals(capture: string): Promise<{ packets: number; octets: number }> {
  const args = ['tshark', '-n', '-r', capture, '-T', 'fields', '-E', 'occurrence=f', '-e', 'ip.len']
  args.push('-e', 'ipv6.plen')
  const r = await runCommand(args)
  if (r.code !== 0) throw new Error(`tshark failed (${r.code}): ${r.stderr}`)
  let packets = 0
  let octets = 0
  for (const line of r.stdout.split('\n')) {
    const [v4 = '', v6 = ''] = line.split('\t')
    if (v4 !== '') {
      packets++
      octets += Number(v4)
    } else if (v6 !== '') {
      packets++
      octets += Number(v6) + 40
    }
  }
  return { packets, octets }
}

/** `-T json -j cflow` parsed (an array of frames). */
export async function tsharkJson(pcap: string, port: number): Promise<unknown[]> {
  const r = await runCommand([...tsharkBaseArgs(pcap, port), '-T', 'json', '-j', 'cflow'])
  if (r.code !== 0) throw new Error(`tshark failed (${r.code}): ${r.stderr}`)
  const t = r.stdout.trim()
  return t === '' ? [] : (JSON.parse(t) as unknown[])
}

// ---------------------------------------------------------------------------------------------------------
// ipfixDump

export interface IpfixDumpResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export async function ipfixDump(file: string, extra: readonly string[] = []): Promise<IpfixDumpResult> {
  const r = await runCommand(['ipfixDump', '--in', file, ...extra])
  return { code: r.code, stdout: r.stdout, stderr: r.stderr }
}

export interface IpfixDumpStats {
  readonly messages: number
  readonly dataRecords: number
  readonly templateRecords: number
  /** Data records per template id. */
  readonly perTemplate: ReadonlyMap<number, number>
}

/** Parses `ipfixDump --stats`: "*** File Stats: N Messages, N Data Records, N Template Records ***" + a table. */
export function parseIpfixDumpStats(text: string): IpfixDumpStats | undefined {
  const m = /File Stats: (\d+) Messages?, (\d+) Data Records?, (\d+) Template Records?/.exec(text)
  if (!m) return undefined
  const perTemplate = new Map<number, number>()
  for (const line of text.split('\n')) {
    const t = /^\s*(\d+) \(0x[0-9a-f]+\)\s*\|\s*(\d+)/i.exec(line)
    if (t) perTemplate.set(Number(t[1]), Number(t[2]))
  }
  return {
    messages: Number(m[1]),
    dataRecords: Number(m[2]),
    templateRecords: Number(m[3]),
    perTemplate,
  }
}

/**
 * Problems ipfixDump reported: it writes decode errors ("Illegal IPFIX Message version", "Read N octets of M
 * expected", ...) to stderr and still exits 0, so every non-empty stderr line counts, plus a non-zero exit.
 */
export function ipfixDumpProblems(r: IpfixDumpResult): string[] {
  const lines = r.stderr
    .split(/\n|(?=ipfixDump: )/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
  if (r.code !== 0) lines.push(`exit status ${r.code}`)
  return lines
}

export interface IpfixDumpRecord {
  /** Index of the message (0-based, file order) the record came in. */
  readonly message: number
  readonly templateId: number
  /** Element name -> value text as ipfixDump prints it (reverse IEs keep their `reverse` names). */
  readonly fields: ReadonlyMap<string, string>
}

export interface IpfixDumpDecode {
  /** Template ids that are Options Templates (scope count > 0). */
  readonly optionsTemplates: ReadonlySet<number>
  readonly records: readonly IpfixDumpRecord[]
  /** Header Sequence Number of each message, in file order. */
  readonly sequences: readonly number[]
}

/** Parses the default (`--templates --data`) text output of ipfixDump into templates and data records. */
export function parseIpfixDumpText(text: string): IpfixDumpDecode {
  const optionsTemplates = new Set<number>()
  const records: IpfixDumpRecord[] = []
  const sequences: number[] = []
  let mode: 'none' | 'template' | 'data' = 'none'
  let current: { message: number; templateId: number; fields: Map<string, string> } | undefined
  for (const line of text.split('\n')) {
    const seq = /sequence number:\s*(\d+)/.exec(line)
    if (seq) {
      sequences.push(Number(seq[1]))
      continue
    }
    if (line.startsWith('--- template record') || line.startsWith('--- options template record')) {
      mode = 'template'
      continue
    }
    if (line.startsWith('--- data record')) {
      mode = 'data'
      current = undefined
      continue
    }
    if (line.startsWith('---') || line.startsWith('***')) {
      mode = 'none'
      continue
    }
    if (mode === 'template') {
      const t = /tid:\s*(\d+).*scope:\s*(\d+)/.exec(line)
      if (t && Number(t[2]) > 0) optionsTemplates.add(Number(t[1]))
    } else if (mode === 'data') {
      const h = /^\s*count:\s*\d+\s+tid:\s*(\d+)/.exec(line)
      if (h) {
        current = { message: sequences.length - 1, templateId: Number(h[1]), fields: new Map() }
        records.push(current)
        continue
      }
      const f = /^\s*\(([\d/]+)\)\s*(?:\(S\)\s*)?(\S+)\s*:\s?(.*)$/.exec(line)
      if (f && current && f[2] !== undefined) current.fields.set(f[2], f[3] ?? '')
    }
  }
  return { optionsTemplates, records, sequences }
}

/**
 * The Sequence Errors nfcapd 1.7 will report for a correct stream. Its check (nfdump ipfix.c, Process_IPFIX
 * and Process_ipfix_data) advances the expected number only per record of a *flow* data set: Options Data
 * Records, which RFC 7011 section 3.1 counts like any Data Record, do not advance it, so every message that
 * follows options records (after the first flow record) is reported as a sequence failure.
 */
export function nfcapdExpectedSequenceErrors(d: IpfixDumpDecode): number {
  const flowRecordsPerMessage = new Array<number>(d.sequences.length).fill(0)
  for (const r of d.records) {
    if (!d.optionsTemplates.has(r.templateId) && r.message >= 0) {
      flowRecordsPerMessage[r.message] = (flowRecordsPerMessage[r.message] ?? 0) + 1
    }
  }
  let expected = 0
  let seenFlowData = false
  let errors = 0
  d.sequences.forEach((seq, i) => {
    if (seq !== expected) {
      if (seenFlowData) errors++
      expected = seq
    }
    const n = flowRecordsPerMessage[i] ?? 0
    expected = (expected + n) >>> 0
    if (n > 0) seenFlowData = true
  })
  return errors
}

// ---------------------------------------------------------------------------------------------------------
// tshark verbose decode -> records

export interface TsharkRecord {
  readonly frame: number
  readonly setId: number
  /**
   * Field label -> values, from `tshark -V -O cflow`. Reverse (PEN 29305) fields are stored as
   * "Reverse <Label>" (tshark prints them with the forward label and a "(Reverse Type N NAME)" suffix).
   */
  readonly fields: ReadonlyMap<string, readonly string[]>
}

/**
 * Every "Flow N" block of the verbose cflow decode, with its frame and set. Parsing the tree (rather than
 * `-T fields`) keeps fields attached to their record when records of different templates share a frame.
 */
export async function tsharkRecords(pcap: string, port: number): Promise<TsharkRecord[]> {
  const r = await runCommand([...tsharkBaseArgs(pcap, port), '-V', '-O', 'cflow'])
  if (r.code !== 0) throw new Error(`tshark failed (${r.code}): ${r.stderr}`)
  return parseTsharkVerbose(r.stdout)
}

export function parseTsharkVerbose(text: string): TsharkRecord[] {
  const out: TsharkRecord[] = []
  let frame = 0
  let setId = -1
  let flowIndent = -1
  let fields: Map<string, string[]> | undefined
  for (const line of text.split('\n')) {
    const fr = /^Frame (\d+):/.exec(line)
    if (fr) {
      frame = Number(fr[1])
      fields = undefined
      continue
    }
    const indent = line.length - line.trimStart().length
    const body = line.trim()
    const set = /^Set \d+ \[id=(\d+)\]/.exec(body)
    if (set) {
      setId = Number(set[1])
      fields = undefined
      continue
    }
    const flow = /^Flow \d+$/.exec(body)
    if (flow) {
      fields = new Map()
      flowIndent = indent
      out.push({ frame, setId, fields })
      continue
    }
    if (!fields) continue
    if (indent <= flowIndent) {
      fields = undefined
      continue
    }
    if (indent !== flowIndent + 4 || body.startsWith('[')) continue // Sub-trees and generated fields.
    const kv = /^([^:]+):\s?(.*)$/.exec(body)
    if (!kv || kv[1] === undefined) continue
    let label = kv[1]
    let value = kv[2] ?? ''
    const rev = /\s*\(Reverse Type \d+ [^)]*\)\s*$/.exec(value)
    if (rev) {
      label = `Reverse ${label}`
      value = value.slice(0, rev.index)
    }
    const list = fields.get(label)
    if (list) list.push(value)
    else fields.set(label, [value])
  }
  return out
}
