/**
 * The kernel's drop counter of one UDP socket, read from /proc/net/udp and /proc/net/udp6 (Linux, proc(5):
 * the last column, `drops`, is the socket's sk_drops: datagrams dropped because its receive buffer was full,
 * or for a bad checksum). Sockets are found by inode; Node's dgram does not give its descriptor, so its
 * socket's inode is found by the local port among this process's own sockets (/proc/self/fd).
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'

const TABLES = ['/proc/net/udp', '/proc/net/udp6']

interface UdpSocketLine {
  readonly port: number
  readonly inode: number
  readonly drops: number
}

function* socketLines(): Generator<UdpSocketLine> {
  for (const table of TABLES) {
    let text: string
    try {
      text = readFileSync(table, 'latin1')
    } catch {
      continue // no IPv6, or not Linux
    }
    const lines = text.split('\n')
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i]!.trim().split(/\s+/)
      if (f.length < 13) continue
      const local = f[1] ?? ''
      yield {
        port: parseInt(local.slice(local.lastIndexOf(':') + 1), 16),
        inode: Number(f[9]),
        drops: Number(f[12]),
      }
    }
  }
}

/** The socket's drops so far, or undefined when it is not found (closed, or no /proc). */
export function udpSocketDrops(inode: number): number | undefined {
  for (const l of socketLines()) if (l.inode === inode) return l.drops
  return undefined
}

/** Inodes of this process's sockets. */
function ownSocketInodes(): Set<number> {
  const inodes = new Set<number>()
  let fds: string[]
  try {
    fds = readdirSync('/proc/self/fd')
  } catch {
    return inodes
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))
      if (m !== null) inodes.add(Number(m[1]))
    } catch {
      // closed meanwhile
    }
  }
  return inodes
}

/** The inode of this process's UDP socket bound to `port`, or undefined when there is none or several. */
export function ownUdpSocketInode(port: number): number | undefined {
  const own = ownSocketInodes()
  const found = [...socketLines()].filter((l) => l.port === port && own.has(l.inode))
  return found.length === 1 ? found[0]?.inode : undefined
}
