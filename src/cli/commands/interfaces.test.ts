// `flowtel interfaces`: the table, --json and --check (which names an interface that cannot be monitored).
import { afterEach, describe, expect, it, vi } from 'vitest'
import { listInterfaces } from '../../capture/interfaces.js'
import { formatInterfaces, interfacesCommand } from './interfaces.js'

async function run(args: string[]): Promise<{ out: string; err: string; code: number | undefined }> {
  let out = ''
  let err = ''
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c) => ((out += String(c)), true))
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c) => ((err += String(c)), true))
  process.exitCode = undefined
  try {
    await interfacesCommand().parseAsync(args, { from: 'user' })
  } finally {
    o.mockRestore()
    e.mockRestore()
  }
  const code = process.exitCode as number | undefined
  process.exitCode = undefined
  return { out, err, code }
}

describe('flowtel interfaces', () => {
  afterEach(() => {
    process.exitCode = undefined
  })

  it('prints a table with the loopback, its index and address', async () => {
    const { out, code } = await run([])
    expect(code).toBeUndefined()
    const lines = out.split('\n')
    expect(lines[0]).toMatch(/^index\s+name\s+state\s+vlan\s+monitorable\s+addresses$/)
    expect(lines.find((l) => /^1\s+lo\s/.test(l))).toMatch(/127\.0\.0\.1\/8/)
    expect(out).toMatch(/^live capture: /m)
  })

  it('prints JSON equal to listInterfaces()', async () => {
    const { out } = await run(['--json'])
    expect(JSON.parse(out)).toEqual(JSON.parse(JSON.stringify(listInterfaces())))
  })

  it('--check fails naming a missing interface, passes for the loopback', async () => {
    const bad = await run(['--check', 'lo', 'nope0'])
    expect(bad.code).toBe(1)
    expect(bad.err).toBe('flowtel: interface "nope0": no such interface\n')
    const good = await run(['--check', 'lo'])
    expect(good.code).toBeUndefined()
  })

  it('formats VLAN, state and non-monitorable rows', () => {
    const text = formatInterfaces([
      {
        name: 'eth0.100',
        ifIndex: 12,
        up: false,
        operState: 'down',
        loopback: false,
        addresses: [],
        vlan: { id: 100, parent: 'eth0' },
        monitorable: false,
        reason: 'no IP address',
      },
    ])
    expect(text.split('\n')[1]).toMatch(/^12\s+eth0\.100\s+down\s+eth0\.100\s+no$/)
  })
})
