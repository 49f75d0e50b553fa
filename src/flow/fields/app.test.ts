// Application identification (RFC 6759): the catalogue's integrity, name and signature lookups, the
// bounded DNS answer cache, the applicationId encoding per engine, and whole-probe runs over real and
// synthetic captures whose applicationId must resolve through the probe's own options records.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AppCatalogue, DnsAnswerCache, NO_APP } from '../../appid/classifier.js'
import { CATALOGUE } from '../../appid/catalogue.js'
import fc from 'fast-check'
import {
  SIGNATURE_FIRST_OCTETS,
  SIGNATURE_TRANSPORTS,
  SIGNATURES,
  type Transport,
} from '../../appid/signatures.js'
import { dnsMessage } from '../../../test/helpers/l7.js'
import { extended, SIGNATURE_OPENINGS } from '../../../test/helpers/signature-openings.js'
import { eth, ipv4, LINKTYPE, pcapFile, PROTO, TCP, tcp, udp } from '../../../test/helpers/packet-builder.js'
import { probeRecords, type JsonRecord } from '../../../test/helpers/probe-run.js'
import { withoutPort } from './app.js'

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/pcap/app')
/** Signatures served by the L7 parsers of src/l7 rather than by src/appid/signatures.ts. */
const PARSER_BACKED = new Set(['dns', 'http', 'tls', 'dhcp', 'dhcp6', 'mdns', 'llmnr'])

/** Runs the probe with the app group; returns flow records with the name the options records give. */
async function appRun(file: string): Promise<(JsonRecord & { app: string })[]> {
  const { records } = await probeRecords([file], { fields: ['app'] }, [], true)
  const names = new Map<string, string>()
  for (const r of records)
    if (typeof r.applicationName === 'string') names.set(String(r.applicationId), r.applicationName)
  return records
    .filter((r) => 'applicationId' in r && !('applicationName' in r))
    .map((r) => ({ ...r, app: names.get(String(r.applicationId)) ?? `unnamed:${String(r.applicationId)}` }))
}

describe('application catalogue', () => {
  it('holds at least 250 entries with unique ids and names, valid ports and known signatures', () => {
    expect(CATALOGUE.length).toBeGreaterThanOrEqual(250)
    expect(() => new AppCatalogue()).not.toThrow()
    for (const e of CATALOGUE) {
      expect(e.category, e.name).not.toBe('')
      expect(e.description, e.name).not.toBe('')
      if (e.signature !== '')
        expect(e.signature in SIGNATURES || PARSER_BACKED.has(e.signature), e.name).toBe(true)
    }
    const dup = [...CATALOGUE, { ...CATALOGUE[0]!, name: 'Other' }]
    expect(() => new AppCatalogue(dup)).toThrow(/id 1 used twice/)
  })

  it('names servers by the longest domain suffix at a label boundary', () => {
    const c = new AppCatalogue()
    const name = (h: string): string => (c.byHost(h) === NO_APP ? '' : c.entries[c.byHost(h)]!.name)
    expect(name('www.youtube.com')).toBe('YouTube')
    expect(name('r4---sn-4g5e6nz7.googlevideo.com')).toBe('YouTube')
    expect(name('YOUTUBE.COM.')).toBe('YouTube')
    expect(name('notyoutube.com')).toBe('')
    expect(name('maps.google.com')).toBe('GoogleMaps')
    expect(name('www.google.com')).toBe('Google')
    expect(name('localhost')).toBe('')
  })

  it('answers a name asked again (memoised, also past the memo bound) as it did the first time', () => {
    const hosts = ['www.youtube.com', 'YOUTUBE.COM.', 'notyoutube.com', 'maps.google.com', 'localhost']
    const first = hosts.map((h) => new AppCatalogue().byHost(h))
    const c = new AppCatalogue()
    for (let round = 0; round < 3; round++) {
      expect(hosts.map((h) => c.byHost(h))).toEqual(first)
      for (let i = 0; i < 5000; i++) c.byHost(`h${i}.example.net`)
    }
    expect(first.slice(0, 3).map((e) => (e === NO_APP ? '' : c.entries[e]!.name))).toEqual([
      'YouTube',
      'YouTube',
      '',
    ])
  })

  it('keeps the DNS answer cache bounded, dropping the oldest address', () => {
    const cache = new DnsAnswerCache(3)
    for (let i = 1; i <= 4; i++) cache.set(`192.0.2.${i}`, i)
    expect(cache.size).toBe(3)
    expect(cache.get('192.0.2.1')).toBe(NO_APP)
    expect(cache.get('192.0.2.4')).toBe(4)
  })
})

describe('HTTP Host without its port', () => {
  it('drops a trailing colon and digits, as /:\\d+$/ does', () => {
    expect(withoutPort('example.com:8080')).toBe('example.com')
    expect(withoutPort('[::1]:80')).toBe('[::1]')
    expect(withoutPort('a:1:2')).toBe('a:1')
    expect(withoutPort('a::5')).toBe('a:')
    expect(withoutPort(':80')).toBe('')
    for (const same of ['example.com', 'host:', 'host:8a', '8080', '', 'x:\u0661'])
      expect(withoutPort(same)).toBe(same)
  })

  it('agrees with the regular expression on any host text', () => {
    const chars = fc.constantFrom(...'ab.:09[]\u0661 -')
    fc.assert(
      fc.property(
        fc.array(chars, { maxLength: 12 }).map((a) => a.join('')),
        (h) => {
          expect(withoutPort(h)).toBe(h.replace(/:\d+$/, ''))
        },
      ),
      { numRuns: 2000 },
    )
  })
})

describe('content signatures', () => {
  const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))
  it('recognise real protocol openings', () => {
    expect(SIGNATURES.ssh!(bytes('SSH-2.0-OpenSSH_9.2\r\n'), 'tcp', false, 22, 50000)).toBe(true)
    const wg = new Uint8Array(148)
    wg[0] = 1
    expect(SIGNATURES.wireguard!(wg, 'udp', true, 40000, 51820)).toBe(true)
    const stun = new Uint8Array(20)
    stun.set([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42])
    expect(SIGNATURES.stun!(stun, 'udp', true, 40000, 3478)).toBe(true)
    const bt = Uint8Array.from([19, ...bytes('BitTorrent protocol'), ...new Array<number>(48).fill(0)])
    expect(SIGNATURES.bittorrent!(bt, 'tcp', true, 40000, 6881)).toBe(true)
    const pg = new Uint8Array(8)
    new DataView(pg.buffer).setUint32(0, 8)
    new DataView(pg.buffer).setUint32(4, 80877103)
    expect(SIGNATURES.postgres!(pg, 'tcp', true, 40000, 5432)).toBe(true)
  })

  it('do not claim other traffic', () => {
    const http = bytes('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n')
    for (const [name, sig] of Object.entries(SIGNATURES))
      expect(sig(http, 'tcp', true, 40000, 80), name).toBe(false)
    const wg = new Uint8Array(147)
    wg[0] = 1
    expect(SIGNATURES.wireguard!(wg, 'udp', true, 40000, 51820)).toBe(false)
    // NTP's few bits of structure count only on port 123.
    const ntp = new Uint8Array(48)
    ntp[0] = 0x23
    expect(SIGNATURES.ntp!(ntp, 'udp', true, 40000, 123)).toBe(true)
    expect(SIGNATURES.ntp!(ntp, 'udp', true, 40000, 40001)).toBe(false)
  })
})

describe('signatures by first octet', () => {
  const port = fc.constantFrom(
    21,
    25,
    69,
    88,
    123,
    137,
    138,
    139,
    161,
    389,
    500,
    514,
    1194,
    4500,
    6379,
    6667,
    11211,
    40000,
  )
  const payload = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 160 }),
    fc.tuple(fc.constantFrom(...SIGNATURE_OPENINGS), fc.uint8Array({ maxLength: 40 })).map(extended),
    fc.constantFrom(...SIGNATURE_OPENINGS),
  )

  it('a signature never matches with a first octet outside its declared set', () => {
    // Each payload with every first octet in turn.
    fc.assert(
      fc.property(payload, fc.boolean(), port, port, (b, toServer, sport, dport) => {
        const v = b.slice()
        for (let octet = 0; octet < 256; octet++) {
          v[0] = octet
          for (const [name, first] of Object.entries(SIGNATURE_FIRST_OCTETS)) {
            if (first.includes(octet)) continue
            for (const t of ['tcp', 'udp'] as Transport[])
              if (SIGNATURES[name]!(v, t, toServer, sport, dport))
                expect.fail(`${name} matched with ${octet}`)
          }
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('signatures by transport', () => {
  const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))
  it('every signature declares its transports; the per-transport lists keep catalogue order', () => {
    expect(Object.keys(SIGNATURE_TRANSPORTS).sort()).toEqual(Object.keys(SIGNATURES).sort())
    const c = new AppCatalogue()
    for (const [t, list] of [
      ['tcp', c.tcpSignatures],
      ['udp', c.udpSignatures],
    ] as const)
      expect(list).toEqual(
        c.signatures.filter((x) => SIGNATURE_TRANSPORTS[c.entries[x.entry]!.signature]!.includes(t)),
      )
    expect(c.tcpSignatures.length + c.udpSignatures.length).toBeGreaterThan(c.signatures.length)
  })

  it('a signature never matches on a transport it does not declare', () => {
    // Openings of the signatures' protocols (each may match on its own transport), cut and varied at random,
    // on the ports the signatures look for.
    const openings = [
      'SSH-2.0-x\r\n',
      'USER a\r\n',
      '220 x SMTP\r\n',
      '+OK\r\n',
      '* OK\r\n',
      'INVITE sip:a SIP/2.0\r\n',
      'M-SEARCH * HTTP/1.1\r\n',
      'd1:ad2:id20:',
      'AMQP',
      '@RSYNCD:',
      '<stream:stream',
      'NICK a\r\n',
      'get a\r\n',
      'OPTIONS rtsp://a',
    ].map(bytes)
    const payload = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 160 }),
      fc.tuple(fc.constantFrom(...openings), fc.uint8Array({ maxLength: 40 })).map(([a, b]) => {
        const out = new Uint8Array(a.length + b.length)
        out.set(a)
        out.set(b, a.length)
        return out
      }),
    )
    const port = fc.constantFrom(
      22,
      53,
      69,
      88,
      123,
      137,
      138,
      139,
      161,
      389,
      500,
      514,
      1194,
      4500,
      5060,
      6379,
      6667,
      11211,
      40000,
    )
    fc.assert(
      fc.property(payload, fc.boolean(), port, port, (b, toServer, sport, dport) => {
        for (const [name, sig] of Object.entries(SIGNATURES))
          for (const t of ['tcp', 'udp'] as Transport[])
            if (!SIGNATURE_TRANSPORTS[name]!.includes(t))
              expect(sig(b, t, toServer, sport, dport), name).toBe(false)
      }),
      { numRuns: 3000 },
    )
  })
})

describe('app field group (whole probe)', () => {
  it('names a TLS flow by its SNI and resolves the id through the options records', async () => {
    const recs = await appRun(join(FIXTURES, 'arkime-tls13.pcap'))
    expect(recs.map((r) => r.app)).toEqual(['Cloudflare'])
    expect(recs[0]!.applicationId).toBe('0d0000c2') // engine 13 (PANA-L7), selector 194
  })

  it('falls back to the protocol: DNS, and TLS to a name outside the catalogue', async () => {
    const recs = await appRun(join(FIXTURES, 'arkime-curl-enabled-tls13.pcap'))
    expect(recs.map((r) => r.app).sort()).toEqual(['DNS', 'TLS'])
  })

  it('names a QUIC flow by the SNI of its decrypted client Initial, else calls it QUIC', async () => {
    const quic = join(FIXTURES, '../quic')
    // www.google.de (QUIC v1, Zeek) and www.google.com (draft-29, ipfixprobe): without the Initial's SNI
    // both would only be "QUIC" (the long-header signature).
    for (const f of [
      'zeek-quic-curl-8.1.2-dev-http3-www-google-de.pcap',
      'ipfixprobe-quic_initial-sample.pcap',
    ])
      expect((await appRun(join(quic, f))).map((r) => r.app)).toEqual(['Google'])
    // config.edge.skype.com in two Initials; Initials that do not decrypt and Google QUIC Q043 stay QUIC.
    const recs = await appRun(join(quic, 'arkime-synthetic-quic.pcap'))
    expect(recs.map((r) => `${String(r.sourceTransportPort)} ${r.app}`).sort()).toEqual([
      '10000 Skype_Teams',
      '52001 QUIC',
      '54345 QUIC',
      '56005 QUIC',
    ])
  })

  it('names WebRTC DTLS after its STUN checks DTLS (the dtls parser follows the flow past STUN)', async () => {
    const recs = await appRun(join(FIXTURES, '../dtls/zeek-tls-webrtc-stun.pcap'))
    expect(recs.map((r) => r.app)).toEqual(['DTLS'])
  })

  it('recognises RDP by its X.224 connection request', async () => {
    const recs = await appRun(join(FIXTURES, 'zeek-rdp-rdp-x509.pcap'))
    expect(recs.map((r) => r.app)).toEqual(['RDP'])
  })

  it('names a flow by a DNS answer seen earlier; encodes unknown ports (IANA-L4) and protocols (IANA-L3)', async () => {
    const client = { src: '10.0.0.1', dst: '10.0.0.53' }
    const answer = dnsMessage({
      id: 7,
      flags: 0x8180,
      questions: [{ name: 'www.netflix.com', type: 1 }],
      answers: [{ name: [0xc0, 12], type: 1, ttl: 60, data: [192, 0, 2, 10] }],
    })
    const query = dnsMessage({ id: 7, flags: 0x0100, questions: [{ name: 'www.netflix.com', type: 1 }] })
    const frames = [
      eth({}, ipv4({ ...client, proto: PROTO.UDP }, udp({ sport: 33000, dport: 53, payload: query }))),
      eth(
        {},
        ipv4(
          { src: client.dst, dst: client.src, proto: PROTO.UDP },
          udp({ sport: 53, dport: 33000, payload: answer }),
        ),
      ),
      // A TCP SYN to the address the answer named: no payload, so only the DNS answer can name it.
      eth(
        {},
        ipv4({ src: '10.0.0.1', dst: '192.0.2.10' }, tcp({ sport: 40000, dport: 443, flags: TCP.SYN })),
      ),
      eth(
        {},
        ipv4({ src: '10.0.0.1', dst: '192.0.2.99' }, tcp({ sport: 40001, dport: 5555, flags: TCP.SYN })),
      ),
      eth({}, ipv4({ src: '10.0.0.1', dst: '192.0.2.99', proto: 253 }, new Uint8Array(8))),
    ]
    const dir = mkdtempSync(join(tmpdir(), 'flowtel-app-'))
    const file = join(dir, 'dns-then-tls.pcap')
    writeFileSync(
      file,
      pcapFile(
        LINKTYPE.ETHERNET,
        frames.map((data) => ({ data })),
      ),
    )
    const recs = await appRun(file)
    const byDst = new Map(
      recs.map((r) => [`${String(r.destinationIPv4Address)}:${Number(r.destinationTransportPort ?? 0)}`, r]),
    )
    expect(byDst.get('10.0.0.53:53')?.app).toBe('NetFlix') // DNS query named by its qname
    expect(byDst.get('192.0.2.10:443')?.app).toBe('NetFlix')
    expect(byDst.get('192.0.2.99:5555')?.applicationId).toBe('030015b3')
    expect(recs.find((r) => r.protocolIdentifier === 253)?.applicationId).toBe('010000fd')
  })
})
