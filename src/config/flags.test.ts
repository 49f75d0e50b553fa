// CLI flags over file settings: given flags override, absent flags keep the base, --no-promisc, --fields
// shorthands, errors that name the flag, and coexistence with a command's own options.
import { Command } from 'commander'
import { describe, expect, it } from 'vitest'
import { addSettingsOptions, settingsFromFlags, type SettingsFlags } from './flags.js'
import { DEFAULT_SETTINGS, type ProbeSettings } from './settings.js'

function parse(args: string[], cmd = new Command('probe')): SettingsFlags {
  addSettingsOptions(cmd).exitOverride()
  cmd.parse(args, { from: 'user' })
  return cmd.opts<SettingsFlags>()
}

const base: ProbeSettings = {
  ...structuredClone(DEFAULT_SETTINGS),
  collectors: ['192.0.2.1:4739'],
  interfaces: ['eth1'],
  activeTimeout: 120,
  capture: { ...DEFAULT_SETTINGS.capture, promiscuous: false, filter: 'not port 22' },
  observationDomainId: 9,
}

describe('settingsFromFlags', () => {
  it('keeps the base where no flag is given', () => {
    const r = settingsFromFlags(parse([]), base)
    expect(r.ok && r.settings).toEqual(base)
  })

  it('sets every setting from its flag', () => {
    const flags = parse([
      '--interface',
      'eth0',
      '-i',
      'eth2,eth3',
      '--collector',
      '1.1.1.1:2055',
      '-c',
      'collector.example:4739',
      '--active-timeout',
      '600',
      '--inactive-timeout',
      '15',
      '--export-protocol',
      'netflow-v9',
      '--transport',
      'udp',
      '--fields',
      'l2,npm',
      '--source-address',
      '192.0.2.7',
      '--observation-domain',
      '77',
      '--mtu',
      '9000',
      '--workers',
      '4',
      '--api-listen',
      '192.0.2.7:8765',
      '--api-token',
      '0123456789abcdef0123',
      '--bpf',
      'udp or tcp',
      '--snaplen',
      '256',
      '--promisc',
      '--buffer-size',
      '8388608',
    ])
    const r = settingsFromFlags(flags, base)
    if (!r.ok) throw new Error(r.errors.join('\n'))
    expect(r.settings).toEqual({
      ...base,
      interfaces: ['eth0', 'eth2', 'eth3'],
      collectors: ['1.1.1.1:2055', 'collector.example:4739'],
      activeTimeout: 600,
      inactiveTimeout: 15,
      exportProtocol: 'netflow-v9',
      transport: 'udp',
      fields: ['l2', 'npm'],
      sourceAddress: '192.0.2.7',
      observationDomainId: 77,
      mtu: 9000,
      workers: 4,
      api: { listen: '192.0.2.7:8765', token: '0123456789abcdef0123' },
      capture: { promiscuous: true, snaplen: 256, bufferBytes: 8388608, filter: 'udp or tcp' },
    })
  })

  it('--no-promisc turns promiscuous mode off; --fields none/all; --observation-domain auto unsets', () => {
    const r = settingsFromFlags(parse(['--no-promisc', '--fields', 'none', '--observation-domain', 'auto']), {
      ...base,
      capture: { ...base.capture, promiscuous: true },
    })
    if (!r.ok) throw new Error(r.errors.join('\n'))
    expect(r.settings.capture.promiscuous).toBe(false)
    expect(r.settings.fields).toEqual([])
    expect(r.settings.observationDomainId).toBeUndefined()
    const all = settingsFromFlags(parse(['--fields', 'all']), base)
    expect(all.ok && all.settings.fields).toHaveLength(9)
  })

  it('names the flag in errors about values it set, the key for the rest', () => {
    const r = settingsFromFlags(
      parse(['--active-timeout', 'soon', '--collector', 'nohost', '--fields', 'l2,l9', '--snaplen', '10']),
      { ...base, mtu: 1 },
    )
    expect(!r.ok && r.errors).toEqual([
      '--active-timeout: must be an integer from 1 to 86400 (got "soon")',
      '--snaplen: must be an integer from 64 to 262144 (got 10)',
      'mtu: must be an integer from 576 to 65535 (got 1)',
      '--collector [0]: expected host:port (got "nohost")',
      '--fields [1]: unknown group "l9"; known: l2, tunnel, npm, tcpext, arp, dns, http, tls, dhcp (core is always on)',
    ])
  })

  it('works over a raw file document and over nothing', () => {
    const r = settingsFromFlags(parse(['-c', '192.0.2.9:2055']), { activeTimeout: 50, inactiveTimeout: 5 })
    expect(r.ok && [r.settings.collectors, r.settings.activeTimeout]).toEqual([['192.0.2.9:2055'], 50])
    const d = settingsFromFlags(parse(['-c', '192.0.2.9:2055']))
    expect(d.ok && d.settings).toEqual({ ...DEFAULT_SETTINGS, collectors: ['192.0.2.9:2055'] })
  })
})

describe('addSettingsOptions', () => {
  it('adds every flag to --help', () => {
    const cmd = addSettingsOptions(new Command('probe'))
    const help = cmd.helpInformation()
    for (const f of [
      '--config',
      '--interface',
      '--collector',
      '--active-timeout',
      '--no-promisc',
      '--buffer-size',
    ])
      expect(help).toContain(f)
  })

  it("leaves a command's own options alone and drops a short letter already taken", () => {
    const cmd = new Command('probe')
      .option('-c, --collector <a>', 'own collector option')
      .option('-i, --input <x>', 'x')
    const flags = parse(['-c', '192.0.2.3:1', '-i', 'in.pcap', '--interface', 'eth5'], cmd)
    expect(flags).toEqual(
      expect.objectContaining({ collector: '192.0.2.3:1', input: 'in.pcap', interface: ['eth5'] }),
    )
    const r = settingsFromFlags(flags, base)
    expect(r.ok && [r.settings.collectors, r.settings.interfaces]).toEqual([['192.0.2.3:1'], ['eth5']])
  })
})
