/**
 * Field group `quic`: QUIC handshakes (RFC 9000, RFC 9001, RFC 9369; parser in src/l7/quic.ts), one record
 * per connection (template 280 IPv4 / 281 IPv6, see ./l7-transactions.ts), on any UDP port (content
 * decides). The record carries the QUIC version and connection IDs (Flowtel flowtelQuicVersion,
 * flowtelQuicDcid, flowtelQuicScid, flowtelQuicServerScid), then exactly the fields of a `tls` record
 * (./tls.ts TLS_TX_FIELDS: versions, SNI, ALPN, cipher suites, extensions, groups, JA3/JA3S, JA4 with the 'q'
 * prefix, setup time), so a collector reads a QUIC handshake the way it reads a TLS one. The certificate
 * fields stay empty: in QUIC the certificate travels in Handshake packets, whose keys an observer cannot
 * derive. The flow record gets flowtelQuicTransactions.
 *
 * Why a group of its own rather than QUIC records in the `tls` group: the QUIC version and connection IDs
 * need fields a TLS record does not have, and adding them to template 276/277 would change every TLS record;
 * a separate template keeps TLS records as they were and lets the operator switch QUIC off alone. Off by
 * default.
 */
import type { RecordWriter } from '../../ipfix/record-writer.js'
import type { QuicTx } from '../../l7/quic.js'
import type { FieldList } from '../feature.js'
import { TransactionGroup } from './l7-transactions.js'
import { helloListsCut, TLS_TX_FIELDS, tlsRecordParts, writeTlsTx, type TlsRecordParts } from './tls.js'

const TX_FIELDS: FieldList = [
  ['flowtelQuicVersion'],
  ['flowtelQuicDcid'],
  ['flowtelQuicScid'],
  ['flowtelQuicServerScid'],
  ...TLS_TX_FIELDS,
]

export class QuicFields extends TransactionGroup<QuicTx> {
  readonly name = 'quic'
  protected readonly countField = 'flowtelQuicTransactions'
  protected readonly txFields = TX_FIELDS
  protected readonly templateIds = [280, 281] as const
  constructor() {
    super('quic')
  }

  protected txTimeUs(tx: QuicTx, tsUs: number): number {
    return tx.clientHelloUs > 0 ? tx.clientHelloUs : tsUs
  }

  /** The TLS parts of the transaction being written (fitTx fits them to the room; writeTx writes them). */
  private parts: { tx: QuicTx; parts: TlsRecordParts } | undefined

  /** Connection IDs are at most 20 octets (RFC 9000 §17.2): one length octet each. */
  private static cidLength(tx: QuicTx): number {
    return [tx.dcid, tx.scid, tx.serverScid].reduce((n, c) => n + 1 + Math.min(c.byteLength, 20), 0)
  }

  protected override fitTx(tx: QuicTx, room: number): void {
    const parts = tlsRecordParts(tx, room - QuicFields.cidLength(tx))
    this.parts = { tx, parts }
    if (helloListsCut(tx, parts.listCap)) this.countAnomaly('tls_record_list_cut')
  }

  protected override doneTx(): void {
    this.parts = undefined
  }

  protected writeTx(tx: QuicTx, w: RecordWriter): void {
    const p = this.parts?.tx === tx ? this.parts.parts : tlsRecordParts(tx, Infinity)
    w.u32(tx.quicVersion)
    w.varlen(tx.dcid.subarray(0, 20))
    w.varlen(tx.scid.subarray(0, 20))
    w.varlen(tx.serverScid.subarray(0, 20))
    writeTlsTx(tx, w, p)
  }
}
