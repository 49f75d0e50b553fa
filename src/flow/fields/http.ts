/**
 * Field group `http`: HTTP/1.x transactions (RFC 9110/9112; parser in src/l7/http.ts), one record each
 * (template 274 IPv4 / 275 IPv6, see ./l7-transactions.ts), on any port (content decides).
 *
 * Elements: IANA httpRequestMethod (459), httpRequestHost (460), httpRequestTarget (461),
 * httpMessageVersion (462), httpStatusCode (457; 0 without a response), httpReasonPhrase (470),
 * httpUserAgent (468), httpContentType (469); Flowmon httpReferer (PEN 39499 id 3); Flowtel
 * flowtelHttpServer, flowtelHttpLocation, flowtelHttpXForwardedFor, flowtelHttpContentLength,
 * flowtelHttpResponseTime and flowtelHttpUpgrade (websocket, h2c, h2 preface, connect). The flow record
 * gets flowtelHttpTransactions. Off by default.
 */
import type { RecordWriter } from '../../ipfix/record-writer.js'
import type { HttpTx } from '../../l7/http.js'
import type { FieldList } from '../feature.js'
import { clipAll, TransactionGroup } from './l7-transactions.js'

const TX_FIELDS: FieldList = [
  ['httpRequestMethod'],
  ['httpRequestHost'],
  ['httpRequestTarget'],
  ['httpMessageVersion'],
  ['httpStatusCode'],
  ['httpReasonPhrase'],
  ['httpUserAgent'],
  ['httpContentType'],
  ['httpReferer'],
  ['flowtelHttpServer'],
  ['flowtelHttpLocation'],
  ['flowtelHttpXForwardedFor'],
  ['flowtelHttpContentLength'],
  ['flowtelHttpResponseTime'],
  ['flowtelHttpUpgrade'],
]

export class HttpFields extends TransactionGroup<HttpTx> {
  readonly name = 'http'
  protected readonly countField = 'flowtelHttpTransactions'
  protected readonly txFields = TX_FIELDS
  protected readonly templateIds = [274, 275] as const

  constructor() {
    super('http')
  }

  protected txTimeUs(tx: HttpTx, tsUs: number): number {
    return tx.requestUs > 0 ? tx.requestUs : tx.responseUs > 0 ? tx.responseUs : tsUs
  }

  protected writeTx(tx: HttpTx, w: RecordWriter): void {
    const s = clipAll([
      tx.method,
      tx.host,
      tx.target,
      tx.version,
      tx.reason,
      tx.userAgent,
      tx.contentType,
      tx.referer,
      tx.server,
      tx.location,
      tx.xForwardedFor,
    ])
    w.string(s[0]!)
    w.string(s[1]!)
    w.string(s[2]!)
    w.string(s[3]!)
    w.u16(tx.status > 0 ? tx.status : 0)
    w.string(s[4]!)
    w.string(s[5]!)
    w.string(s[6]!)
    w.string(s[7]!)
    w.string(s[8]!)
    w.string(s[9]!)
    w.string(s[10]!)
    w.u64(tx.contentLength > 0 ? tx.contentLength : 0)
    const rt =
      tx.requestUs > 0 && tx.responseUs >= tx.requestUs ? Math.round(tx.responseUs - tx.requestUs) : 0
    w.u32(rt > 0xffffffff ? 0xffffffff : rt)
    w.string(tx.upgrade)
  }
}
