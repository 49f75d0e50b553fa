// Settings validation: defaults, every limit with the exact message naming the key, collector addresses,
// field groups, unknown keys, the API token rule, TLS files, and a property: never throws on any JSON.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { SETTINGS_JSON_SCHEMA, validateSettings } from './schema.js'
import { DEFAULT_SETTINGS } from './settings.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-schema-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const C = ['192.0.2.1:4739']

function errorsOf(doc: unknown, opts = {}): string[] {
  const r = validateSettings(doc, opts)
  return r.ok ? [] : r.errors
}

describe('validateSettings', () => {
  it('fills every missing key with its default', () => {
    const r = validateSettings({ collectors: C, capture: { snaplen: 128 } })
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r.settings).toEqual({
      ...DEFAULT_SETTINGS,
      collectors: C,
      capture: { ...DEFAULT_SETTINGS.capture, snaplen: 128 },
    })
    // The defaults themselves are not shared with the result.
    r.settings.capture.snaplen = 1
    expect(DEFAULT_SETTINGS.capture.snaplen).toBe(262144)
  })

  it('rejects out-of-range or non-integer timeouts with the key, the range and the value', () => {
    expect(errorsOf({ collectors: C, activeTimeout: 0 })).toEqual([
      'activeTimeout: must be an integer from 1 to 86400 (got 0)',
    ])
    expect(errorsOf({ collectors: C, activeTimeout: 86401 })).toEqual([
      'activeTimeout: must be an integer from 1 to 86400 (got 86401)',
    ])
    expect(errorsOf({ collectors: C, inactiveTimeout: 1.5 })).toEqual([
      'inactiveTimeout: must be an integer from 1 to 86400 (got 1.5)',
    ])
    expect(errorsOf({ collectors: C, inactiveTimeout: '30' })).toEqual([
      'inactiveTimeout: must be an integer from 1 to 86400 (got "30")',
    ])
    expect(errorsOf({ collectors: C, activeTimeout: -5, inactiveTimeout: null })).toEqual([
      'activeTimeout: must be an integer from 1 to 86400 (got -5)',
      'inactiveTimeout: must be an integer from 1 to 86400 (got null)',
    ])
  })

  it('rejects an inactive timeout longer than the active one, accepts equal', () => {
    expect(errorsOf({ collectors: C, activeTimeout: 60, inactiveTimeout: 120 })).toEqual([
      'inactiveTimeout: must not be longer than activeTimeout (120 > 60): the active timeout would always end the flow first',
    ])
    expect(validateSettings({ collectors: C, activeTimeout: 60, inactiveTimeout: 60 }).ok).toBe(true)
  })

  it('checks the other numeric limits', () => {
    expect(errorsOf({ collectors: C, mtu: 575, workers: 65, observationDomainId: 2 ** 32 })).toEqual([
      'observationDomainId: must be an integer from 0 to 4294967295 (got 4294967296)',
      'mtu: must be an integer from 576 to 65535 (got 575)',
      'workers: must be an integer from 1 to 64 (got 65)',
    ])
    const ok = validateSettings({ collectors: C, mtu: 65535, workers: 64, observationDomainId: 0xffffffff })
    expect(ok.ok).toBe(true)
    expect(errorsOf({ collectors: C, capture: { snaplen: 63, promiscuous: 'yes' } })).toEqual([
      'capture.promiscuous: must be true or false (got "yes")',
      'capture.snaplen: must be an integer from 64 to 262144 (got 63)',
    ])
  })

  it('accepts the collector forms of the seed and rejects bad ones by index', () => {
    const good = ['1.1.1.1:2055', 'collector.local:3000', '[2001:db8::1]:4739']
    const r = validateSettings({ collectors: good })
    expect(r.ok).toBe(true)
    expect(
      errorsOf({
        collectors: [
          '1.1.1.1:2055',
          'collector.local',
          '2001:db8::1:4739',
          '1.1.1.1:0',
          '1.1.1.1:70000',
          'bad host:1',
          '1.1.1.1;id:2055',
          '-x.example:1',
          '999.1.1.1:2055',
          '[1.1.1.1]:2055',
        ],
      }),
    ).toEqual([
      'collectors[1]: expected host:port (got "collector.local")',
      'collectors[2]: write IPv6 addresses in brackets, e.g. [::1]:4739 (got "2001:db8::1:4739")',
      'collectors[3]: port 0 outside 1..65535 (got "1.1.1.1:0")',
      'collectors[4]: port 70000 outside 1..65535 (got "1.1.1.1:70000")',
      'collectors[5]: bad host "bad host" (got "bad host:1")',
      'collectors[6]: bad host "1.1.1.1;id" (got "1.1.1.1;id:2055")',
      `collectors[7]: "-x.example" is not an IP address or a host name (letters, digits, '-' and '.' only) in "-x.example:1"`,
      'collectors[8]: "999.1.1.1" is not a valid IPv4 address in "999.1.1.1:2055"',
      'collectors[9]: "1.1.1.1" is not an IPv6 address (got "[1.1.1.1]:2055")',
    ])
  })

  it('rejects duplicate collectors, also when an IPv6 address is written differently', () => {
    expect(
      errorsOf({ collectors: ['[2001:db8::1]:4739', 'c.example:1', '[2001:0DB8:0::1]:4739', 'C.example:1'] }),
    ).toEqual([
      'collectors[2]: duplicate of collectors[0] ([2001:db8::1]:4739)',
      'collectors[3]: duplicate of collectors[1] (c.example:1)',
    ])
    expect(validateSettings({ collectors: ['1.1.1.1:2055', '1.1.1.1:2056'] }).ok).toBe(true)
  })

  it('needs a collector for the service, not for a partial document', () => {
    expect(errorsOf({})).toEqual([
      'collectors: at least one collector is needed, e.g. collectors: ["192.0.2.10:4739"]',
    ])
    expect(validateSettings({}, { requireCollectors: false }).ok).toBe(true)
    expect(errorsOf({ collectors: new Array(17).fill('1.1.1.1:1') })).toEqual([
      'collectors: at most 16 entries (got 17)',
    ])
  })

  it('knows the field groups; core is implied; all and default expand', () => {
    expect(errorsOf({ collectors: C, fields: ['npm', 'l9'] })).toEqual([
      'fields[1]: unknown group "l9"; known: l2, tunnel, npm, tcpext, arp, dns, http, tls, dhcp (core is always on)',
    ])
    const r = validateSettings({ collectors: C, fields: ['npm', 'core', 'L2', 'npm'] })
    expect(r.ok && r.settings.fields).toEqual(['l2', 'npm'])
    const all = validateSettings({ collectors: C, fields: ['all'] })
    expect(all.ok && all.settings.fields).toEqual([
      'l2',
      'tunnel',
      'npm',
      'tcpext',
      'arp',
      'dns',
      'http',
      'tls',
      'dhcp',
    ])
    const def = validateSettings({ collectors: C, fields: ['default'] })
    expect(def.ok && def.settings.fields).toEqual(['l2', 'tunnel'])
    const none = validateSettings({ collectors: C, fields: [] })
    expect(none.ok && none.settings.fields).toEqual([])
  })

  it('rejects unknown keys, at the top and inside groups, with a suggestion', () => {
    expect(
      errorsOf({ collectors: C, active_timeout: 60, capture: { snap_len: 1 }, api: { key: 'x' } }),
    ).toEqual([
      'active_timeout: unknown key; did you mean "activeTimeout"? (known: collectors, exportProtocol, transport, tls, activeTimeout, inactiveTimeout, fields, interfaces, capture, sourceAddress, observationDomainId, mtu, workers, api)',
      'capture.snap_len: unknown key; did you mean "snaplen"? (known: promiscuous, snaplen, bufferBytes, filter)',
      'api.key: unknown key (known: listen, token, tokenFile)',
    ])
  })

  it('checks the enums and the protocol/transport pairs', () => {
    expect(errorsOf({ collectors: C, exportProtocol: 'netflow-v10', transport: 'sctp' })).toEqual([
      'exportProtocol: must be one of ipfix, netflow-v9, netflow-v5 (got "netflow-v10")',
      'transport: must be one of udp, tcp, tls (got "sctp")',
    ])
    expect(errorsOf({ collectors: C, exportProtocol: 'netflow-v9', transport: 'tcp' })).toEqual([
      'transport: netflow-v9 is exported over UDP only (got tcp); use ipfix for tcp or tls',
    ])
    const v5 = validateSettings({
      collectors: ['[2001:db8::1]:2055'],
      exportProtocol: 'netflow-v5',
      fields: [],
    })
    expect(v5).toEqual(
      expect.objectContaining({
        ok: true,
        warnings: expect.arrayContaining([
          'exportProtocol: netflow-v5 carries IPv4 flows only; IPv6 flows are not exported',
        ]) as unknown,
      }),
    )
  })

  it('requires a token of 16+ characters when the API listens beyond loopback', () => {
    const at = (api: object): string[] => errorsOf({ collectors: C, api })
    expect(at({ listen: '127.0.0.1:8765' })).toEqual([])
    expect(at({ listen: '[::1]:8765' })).toEqual([])
    expect(at({ listen: 'localhost:8765', token: 'short' })).toEqual([])
    expect(at({ listen: '0.0.0.0:8765' })).toEqual([
      'api.token: required when api.listen (0.0.0.0:8765) is not a loopback address; set api.token or api.tokenFile',
    ])
    expect(at({ listen: '[::]:8765' })).toHaveLength(1)
    expect(at({ listen: '192.0.2.5:8765', token: 'short' })).toEqual([
      'api.token: must be at least 16 characters when the API listens beyond loopback (got 5)',
    ])
    expect(at({ listen: '192.0.2.5:8765', token: 'a-long-enough-token' })).toEqual([])
    expect(at({ listen: '192.0.2.5:8765', token: 'has a space in it, long' })).toEqual([
      'api.token: must be printable ASCII without spaces (it goes in an HTTP header)',
    ])
    expect(at({ listen: 'api.example:8765' })).toEqual([
      'api.listen: host must be an IP address or localhost (got "api.example")',
    ])
    expect(at({ listen: '8765' })).toEqual(['api.listen: expected host:port or [IPv6]:port (got "8765")'])

    const tokenFile = join(dir, 'token')
    writeFileSync(tokenFile, 'abcdefghijklmnopqrstuvwxyz\n')
    expect(at({ listen: '0.0.0.0:8765', tokenFile })).toEqual([])
    expect(at({ listen: '0.0.0.0:8765', tokenFile, token: 'x' })).toEqual([
      'api: set token or tokenFile, not both',
    ])
    expect(at({ listen: '0.0.0.0:8765', tokenFile: join(dir, 'missing') })).toEqual([
      `api.tokenFile: file "${join(dir, 'missing')}" does not exist`,
    ])
    const shortFile = join(dir, 'short-token')
    writeFileSync(shortFile, 'abc\n')
    expect(at({ listen: '0.0.0.0:8765', tokenFile: shortFile })).toEqual([
      'api.tokenFile: must be at least 16 characters when the API listens beyond loopback (got 3)',
    ])
  })

  it('checks the TLS files when the transport is tls', () => {
    const ca = join(dir, 'ca.pem')
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n')
    expect(errorsOf({ collectors: C, transport: 'tls', tls: { caFile: ca } })).toEqual([])
    expect(errorsOf({ collectors: C, transport: 'tls', tls: { caFile: join(dir, 'nope.pem') } })).toEqual([
      `tls.caFile: file "${join(dir, 'nope.pem')}" does not exist`,
    ])
    expect(errorsOf({ collectors: C, transport: 'tls', tls: { caFile: dir } })).toEqual([
      `tls.caFile: "${dir}" is not a regular file`,
    ])
    expect(errorsOf({ collectors: C, transport: 'tls', tls: { certFile: ca } })).toEqual([
      'tls.keyFile: certFile and keyFile go together',
    ])
    // Not checked (only warned about) when the transport is not tls.
    const udp = validateSettings({ collectors: C, tls: { caFile: join(dir, 'nope.pem') } })
    expect(udp.ok).toBe(true)
    expect(udp.warnings).toContain('tls: ignored unless transport is tls (transport is udp)')
    if (process.getuid?.() !== 0) {
      chmodSync(ca, 0o000)
      expect(errorsOf({ collectors: C, transport: 'tls', tls: { caFile: ca } })).toEqual([
        `tls.caFile: file "${ca}" is not readable`,
      ])
    }
  })

  it('checks the source address, also against the collector address family', () => {
    expect(errorsOf({ collectors: C, sourceAddress: 'eth0' })).toEqual([
      `sourceAddress: must be an IP address or '' (got "eth0")`,
    ])
    expect(errorsOf({ collectors: C, sourceAddress: '0.0.0.0' })).toEqual([
      `sourceAddress: 0.0.0.0 is the unspecified address; use '' to let the OS choose`,
    ])
    expect(
      errorsOf({ collectors: ['[2001:db8::1]:4739', 'c.example:1'], sourceAddress: '192.0.2.2' }),
    ).toEqual(['sourceAddress: IPv4 address 192.0.2.2 cannot reach IPv6 collector collectors[0]'])
    expect(validateSettings({ collectors: C, sourceAddress: '192.0.2.2' }).ok).toBe(true)
  })

  it('checks interface names and hands each to the capture layer hook', () => {
    const asked: string[] = []
    const checkInterface = (name: string): string | undefined => {
      asked.push(name)
      return name === 'veth9' ? 'interface veth9 has no IP address' : undefined
    }
    expect(
      errorsOf(
        { collectors: C, interfaces: ['eth0', 'eth0.100', 'veth9', 'eth0', 'a/b', 'x'.repeat(16)] },
        { checkInterface },
      ),
    ).toEqual([
      'interfaces[2]: interface veth9 has no IP address',
      'interfaces[3]: duplicate of interfaces[0] (eth0)',
      `interfaces[4]: "a/b" is not an interface name (1 to 15 characters, no '/', ':' or spaces)`,
      `interfaces[5]: "${'x'.repeat(16)}" is not an interface name (1 to 15 characters, no '/', ':' or spaces)`,
    ])
    expect(asked).toEqual(['eth0', 'eth0.100', 'veth9'])
  })

  it('rejects a document that is not a mapping', () => {
    for (const doc of [null, undefined, 3, 'x', [], [1]])
      expect(errorsOf(doc)[0]).toMatch(/^settings must be a mapping of keys to values \(got /)
  })

  it('never throws on arbitrary JSON; every error names a key or the document', () => {
    const topKeys = Object.keys(SETTINGS_JSON_SCHEMA.properties)
    const anyDoc = fc.oneof(
      fc.jsonValue(),
      // Documents with real keys and random values reach the semantic checks.
      fc.dictionary(fc.constantFrom(...topKeys, 'bogus'), fc.jsonValue()),
      fc.record(
        {
          collectors: fc.array(fc.oneof(fc.string(), fc.constantFrom('1.1.1.1:1', '[::1]:2', 'a.b:3'))),
          activeTimeout: fc.integer({ min: -10, max: 100000 }),
          inactiveTimeout: fc.integer({ min: -10, max: 100000 }),
          fields: fc.array(fc.constantFrom('l2', 'npm', 'core', 'all', 'zz', '')),
          api: fc.record({ listen: fc.string(), token: fc.string() }, { requiredKeys: [] }),
          sourceAddress: fc.constantFrom('', '::1', '10.0.0.1', 'x'),
        },
        { requiredKeys: [] },
      ),
    )
    fc.assert(
      fc.property(anyDoc, (doc) => {
        const r = validateSettings(doc)
        if (r.ok) {
          // A valid result validates again to itself.
          const again = validateSettings(r.settings)
          expect(again.ok && again.settings).toEqual(r.settings)
          return
        }
        expect(r.errors.length).toBeGreaterThan(0)
        for (const e of r.errors) {
          expect(e).not.toMatch(/internal error/)
          expect(e).toMatch(
            /^(settings must be|([A-Za-z_][\w-]*|\[".*"\])(\.[A-Za-z_][\w-]*|\[\d+\]|\[".*"\])*: )/,
          )
        }
      }),
      { numRuns: 1500 },
    )
  })
})
