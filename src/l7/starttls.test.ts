// In-band TLS upgrades handed to the tls parser (src/l7/starttls.ts, src/l7/db-tls.ts): SMTP STARTTLS,
// IMAP STARTTLS, POP3 STLS, FTP AUTH TLS, PostgreSQL SSLRequest and MySQL CLIENT_SSL, each with every
// segment after the first cut at every byte boundary; refusals and plaintext sessions give no TLS; and real captures
// (test/fixtures/pcap/starttls, see SOURCES.md there) against the values Zeek and Arkime logged for them.
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PacketInfo } from '../decode/packet.js'
import { ascii } from '../../test/helpers/l7.js'
import { probeRecords } from '../../test/helpers/probe-run.js'
import { splitSegments, type Segment } from '../../test/helpers/tcp-conversation.js'
import { mysqlParser, postgresParser } from './db-tls.js'
import { L7Engine } from './engine.js'
import { L7Dir } from './parser.js'
import { ftpParser, imapParser, pop3Parser, smtpParser } from './starttls.js'
import { tlsParser, type TlsTx } from './tls.js'

const u16 = (v: number): number[] => [v >> 8, v & 0xff]
const vec16 = (b: number[]): number[] => [...u16(b.length), ...b]
const record = (type: number, body: number[]): number[] => [type, 3, 3, ...u16(body.length), ...body]
const hs = (type: number, body: number[]): number[] => record(22, [type, 0, ...u16(body.length), ...body])
const SNI = 'mail.example.org'
const CLIENT_HELLO = Uint8Array.from(
  hs(1, [
    ...u16(0x0303),
    ...new Array<number>(32).fill(7),
    0,
    ...vec16([...u16(0xc02f)]),
    1,
    0,
    ...vec16([0, 0, ...vec16(vec16([0, ...vec16([...ascii(SNI)])]))]), // server_name
  ]),
)
const SERVER_HELLO = Uint8Array.from(
  hs(2, [...u16(0x0303), ...new Array<number>(32).fill(9), 0, ...u16(0xc02f), 0, ...vec16([])]),
)
const TLS_TAIL: Segment[] = [
  { up: true, data: CLIENT_HELLO },
  { up: false, data: SERVER_HELLO },
  { up: true, data: Uint8Array.from(record(23, [1, 2, 3])) },
]

const text = (up: boolean, s: string): Segment => ({ up, data: ascii(s) })
const bytes = (up: boolean, b: number[]): Segment => ({ up, data: Uint8Array.from(b) })

/** MySQL packet: 3-byte little-endian length, sequence id, payload. */
const mysqlPacket = (seq: number, payload: number[]): number[] => [
  payload.length & 0xff,
  payload.length >> 8,
  0,
  seq,
  ...payload,
]
const MYSQL_GREETING = mysqlPacket(0, [
  0x0a,
  ...ascii('8.0.36'),
  0,
  1,
  0,
  0,
  0,
  ...new Array<number>(8).fill(0x41),
  0,
  0xff,
  0xff, // capabilities (lower): CLIENT_SSL (0x0800) among them
  0x21,
  2,
  0,
  0xff,
  0xdf,
  21,
  ...new Array<number>(10).fill(0),
  ...new Array<number>(13).fill(0x42),
])
const MYSQL_SSL_REQUEST = mysqlPacket(1, [
  0x05,
  0xae,
  0xff,
  0x01,
  0,
  0,
  0,
  1,
  0x21,
  ...new Array<number>(23).fill(0),
])

/** Each protocol's plaintext exchange up to and including the server's agreement. */
const UPGRADES: Record<string, Segment[]> = {
  smtp: [
    text(false, '220 mx.example.org ESMTP ready\r\n'),
    text(true, 'EHLO client.example\r\n'),
    text(false, '250-mx.example.org\r\n250-PIPELINING\r\n250 STARTTLS\r\n'),
    text(true, 'STARTTLS\r\n'),
    text(false, '220 2.0.0 Ready to start TLS\r\n'),
  ],
  imap: [
    text(false, '* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n'),
    text(true, 'a1 CAPABILITY\r\n'),
    text(false, '* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK done\r\n'),
    text(true, 'a2 STARTTLS\r\n'),
    text(false, 'a2 OK Begin TLS negotiation now\r\n'),
  ],
  pop3: [
    text(false, '+OK POP3 ready\r\n'),
    text(true, 'CAPA\r\n'),
    text(false, '+OK\r\nSTLS\r\nUSER\r\n.\r\n'),
    text(true, 'STLS\r\n'),
    text(false, '+OK Begin TLS\r\n'),
  ],
  ftp: [
    text(false, '220 ProFTPD Server ready\r\n'),
    text(true, 'AUTH TLS\r\n'),
    text(false, '234 AUTH TLS successful\r\n'),
  ],
  postgres: [bytes(true, [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]), bytes(false, [0x53])],
  mysql: [bytes(false, MYSQL_GREETING), bytes(true, MYSQL_SSL_REQUEST)],
}

const PORTS: Record<string, number> = { smtp: 25, imap: 143, pop3: 110, ftp: 21, postgres: 5432, mysql: 3306 }

/** Feeds the segments (consecutive sequence numbers per direction) to an engine; returns TLS transactions. */
function run(segs: readonly Segment[], port: number): { txs: TlsTx[]; e: L7Engine<TlsTx> } {
  const txs: TlsTx[] = []
  const e = new L7Engine<TlsTx>(
    [tlsParser, smtpParser, imapParser, pop3Parser, ftpParser, postgresParser, mysqlParser],
    (_k, tx) => txs.push(tx),
  )
  e.resize(4, 0)
  e.onCreate(0, 0)
  const seq = [1000, 5000]
  let t = 1
  for (const s of segs) {
    const p = new PacketInfo()
    const d = s.up ? 0 : 1
    p.buf = s.data
    p.payloadOffset = 0
    p.payloadCaptured = s.data.byteLength
    p.payloadLength = s.data.byteLength
    p.protocol = 6
    p.ipVersion = 4
    p.srcPort = s.up ? 40000 : port
    p.dstPort = s.up ? port : 40000
    p.tcpSeq = seq[d]!
    p.tcpFlags = 0x18
    seq[d]! += s.data.byteLength
    e.onPacket(0, p, s.up ? L7Dir.ToServer : L7Dir.ToClient, t++)
  }
  e.end(0)
  return { txs, e }
}

describe('TLS after an in-band upgrade', () => {
  it.each(Object.keys(UPGRADES))('%s: the handshake is recorded, every segment cut at every byte', (name) => {
    const segs = [...UPGRADES[name]!, ...TLS_TAIL]
    const longest = Math.max(...segs.map((s) => s.data.byteLength))
    for (let cut = 0; cut < longest; cut++) {
      // The first segment stays whole: the protocol is recognised on one packet's payload (src/l7/engine.ts).
      const { txs, e } = run([segs[0]!, ...splitSegments(segs.slice(1), cut)], PORTS[name]!)
      expect(
        txs.map((t) => [t.sni, t.cipherSuite, t.serverVersion]),
        `cut ${cut}`,
      ).toEqual([[SNI, 0xc02f, 0x0303]])
      expect(e.counters.byParser.get(name)!.flowsClaimed, `cut ${cut}`).toBe(1)
      expect(e.counters.byParser.get('tls')!.handoffs, `cut ${cut}`).toBe(1)
      expect(e.counters.parserErrors).toBe(0)
    }
  })

  it('holds client bytes sent before the server agreed, and hands them over', () => {
    const smtp = UPGRADES['smtp']!
    // The ClientHello is captured before the 220 (the client did not wait).
    const segs = [...smtp.slice(0, 4), TLS_TAIL[0]!, smtp[4]!, ...TLS_TAIL.slice(1)]
    expect(run(segs, 25).txs.map((t) => t.sni)).toEqual([SNI])
  })

  it.each([
    [
      'smtp',
      [text(false, '220 mx ESMTP\r\n'), text(true, 'STARTTLS\r\n'), text(false, '454 TLS not available\r\n')],
    ],
    ['smtp', [text(false, '220 mx ESMTP\r\n'), text(true, 'EHLO a\r\n'), text(true, 'MAIL FROM:<a@b>\r\n')]],
    ['imap', [text(false, '* OK ready\r\n'), text(true, 'a STARTTLS\r\n'), text(false, 'a NO not now\r\n')]],
    ['pop3', [text(false, '+OK ready\r\n'), text(true, 'STLS\r\n'), text(false, '-ERR no\r\n')]],
    ['ftp', [text(false, '220 FTP ready\r\n'), text(true, 'USER anonymous\r\n')]],
    ['postgres', [bytes(true, [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]), bytes(false, [0x4e])]],
    ['mysql', [bytes(false, MYSQL_GREETING), bytes(true, mysqlPacket(1, new Array<number>(60).fill(1)))]],
  ] as const)(
    '%s: a refused upgrade or a plaintext session gives no TLS and frees the flow',
    (name, plain) => {
      const { txs, e } = run([...plain, ...TLS_TAIL], PORTS[name]!)
      expect(txs).toEqual([])
      expect(e.counters.byParser.get(name)!.flowsClaimed).toBe(1)
      expect(e.counters.handoffs).toBe(0)
      expect(e.activeFlows).toBe(0)
    },
  )
})

describe('TLS after an in-band upgrade in real captures', () => {
  const dir = join(import.meta.dirname, '../../test/fixtures/pcap/starttls')
  const tlsRecords = async (file: string): Promise<Record<string, unknown>[]> =>
    (await probeRecords([join(dir, file)], { fields: ['core', 'tls'] })).records.filter(
      (r) => 'tlsClientVersion' in r,
    )

  it('SMTP STARTTLS (Zeek ssl.log and x509.log)', async () => {
    const recs = await tlsRecords('zeek-tls-smtp-starttls.pcap')
    expect(recs).toHaveLength(1)
    expect(recs[0]).toMatchObject({
      destinationTransportPort: 25,
      tlsServerVersion: 0x0303, // TLSv12
      tlsCipherSuite: 0xc02f, // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
      flowtelTlsSubject: 'CN=mx.google.com,O=Google Inc,L=Mountain View,ST=California,C=US',
      flowtelTlsSerial: '325D8297987D50B0',
    })
  })

  it('SMTP STARTTLS and MySQL SSL (Arkime ja3)', async () => {
    const smtp = await tlsRecords('arkime-smtp-starttls.pcap')
    expect(smtp.map((r) => r['tlsJa3Fingerprint'])).toEqual(['fab507fe132c544e8a0eb7c394affeae'])
    const mysql = await tlsRecords('arkime-mysql-tls.pcap')
    expect(mysql.map((r) => [r['destinationTransportPort'], r['tlsJa3Fingerprint']])).toEqual([
      [3306, '3509fd9d38bde48d8abc69cd321c0ba0'],
    ])
    expect(await tlsRecords('zeek-mysql-encrypted.pcap')).toHaveLength(1)
  })

  it('PostgreSQL SSLRequest (Zeek ssl.log)', async () => {
    const recs = await tlsRecords('zeek-postgresql-psql-aws-ssl-require.pcap')
    expect(recs.map((r) => [r['destinationTransportPort'], r['tlsSni'], r['tlsCipherSuite']])).toEqual([
      [5432, 'database-1.cyx4x7yvdoay.us-east-1.rds.amazonaws.com', 0xc030], // ECDHE_RSA_AES_256_GCM_SHA384
    ])
  })
})

describe('line upgrade probes: the first-character test', () => {
  // The probes' patterns as they were before the first-character test, on the decoded first 256 octets.
  const firstLine = (t: string): string => t.split('\n')[0] ?? ''
  const reference: Record<string, (t: string, toServer: boolean) => boolean> = {
    smtp: (t, s) => (s ? /^(EHLO|HELO) /i.test(t) : /^220[ -]/.test(t) && /SMTP/i.test(firstLine(t))),
    imap: (t, s) => (s ? /^[A-Za-z0-9.]+ (CAPABILITY|STARTTLS)\r?$/im.test(t) : /^\* (OK|PREAUTH)/.test(t)),
    pop3: (t, s) => (s ? /^(CAPA|STLS)\r?$/im.test(t) : /^\+OK/.test(t)),
    ftp: (t, s) =>
      s ? /^(AUTH (TLS|SSL)|FEAT)\r?$/im.test(t) : /^220[ -]/.test(t) && /FTP/i.test(firstLine(t)),
  }
  const parsers = [smtpParser, imapParser, pop3Parser, ftpParser]

  it('accepts exactly what the patterns accept', () => {
    const line = fc.constantFrom(
      'EHLO a',
      'helo b',
      '220 mail SMTP ready',
      '220-ftp FTP',
      'a1 CAPABILITY',
      'x.y starttls',
      '* OK ready',
      '* PREAUTH',
      '+OK',
      'CAPA',
      'stls',
      'AUTH TLS',
      'auth ssl',
      'FEAT',
      'x',
      '',
    )
    const junk = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1'))
    const text = fc
      .array(fc.oneof(line, junk), { minLength: 1, maxLength: 6 })
      .chain((parts) =>
        fc.tuple(
          fc.constant(parts),
          fc.array(fc.constantFrom('\r\n', '\n', '\r', ' '), {
            minLength: parts.length,
            maxLength: parts.length,
          }),
        ),
      )
      .map(([parts, seps]) => parts.map((p, i) => p + seps[i]!).join(''))
    // A long prefix moves lines across the 256 octets the probes look at.
    const prefix = fc.oneof(
      fc.constant(''),
      fc.integer({ min: 200, max: 270 }).map((n) => 'x'.repeat(n)),
      fc.uint8Array({ minLength: 230, maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
    )
    fc.assert(
      fc.property(prefix, text, fc.boolean(), (pre, body, toServer) => {
        const t = pre + body
        const b = Uint8Array.from(t, (c) => c.charCodeAt(0) & 0xff)
        const decoded = Buffer.from(b.subarray(0, 256)).toString('latin1')
        for (const p of parsers)
          expect(
            p.probe(b, toServer ? L7Dir.ToServer : L7Dir.ToClient, 'tcp'),
            `${p.name} ${JSON.stringify(t)}`,
          ).toBe(reference[p.name]!(decoded, toServer))
      }),
      { numRuns: 3000 },
    )
  })
})
