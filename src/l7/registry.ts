/**
 * @module l7/registry
 * The L7 parsers the probe knows, one line per protocol (Suricata's availableDecoders). Adding a protocol
 * is one file in src/l7 plus one line here; the field group that exports it lives in src/flow/fields.
 */
import { mysqlParser, postgresParser } from './db-tls.js'
import { dhcpParser } from './dhcp.js'
import { dnsParser } from './dns.js'
import { dtlsParser } from './dtls.js'
import { httpParser } from './http.js'
import type { AnyL7Parser } from './parser.js'
import { quicParser } from './quic.js'
import { ftpParser, imapParser, pop3Parser, smtpParser } from './starttls.js'
import { tlsParser } from './tls.js'

export const L7_PARSERS: Readonly<Record<string, AnyL7Parser>> = {
  dhcp: dhcpParser,
  dns: dnsParser,
  dtls: dtlsParser,
  http: httpParser,
  quic: quicParser,
  tls: tlsParser,
  // In-band TLS upgrades: they only lead a flow into `tls` (see `upgradesTo`).
  smtp: smtpParser,
  imap: imapParser,
  pop3: pop3Parser,
  ftp: ftpParser,
  postgres: postgresParser,
  mysql: mysqlParser,
}
