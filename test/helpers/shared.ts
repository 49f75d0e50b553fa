// Locates ../shared (the read-only corpus beside the checkout) and lists its captures. Corpus sweeps
// skip when it is absent, so `npm test` passes on a fresh clone alone.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '../../..')
export const SHARED = resolve(REPO_ROOT, '../shared')
export const SHARED_PCAPS = join(SHARED, 'pcaps')
export const HAVE_SHARED_PCAPS = existsSync(SHARED_PCAPS)

const CAPTURE_EXT = /\.(pcap|pcapng|cap)$/i

/** Capture files under `dir` (recursive, sorted), relative paths. */
export function listCaptures(dir: string): string[] {
  const out: string[] = []
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = join(rel, name)
      const st = statSync(join(dir, p))
      if (st.isDirectory()) walk(p)
      else if (CAPTURE_EXT.test(name)) out.push(p)
    }
  }
  walk('')
  return out
}
