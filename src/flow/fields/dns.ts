/**
 * Field group `dns`: DNS transactions (RFC 1035; parser in src/l7/dns.ts), one record each (template 272
 * IPv4 / 273 IPv6, see ./l7-transactions.ts), over UDP and TCP, mDNS (RFC 6762) and LLMNR (RFC 4795) too.
 *
 * Elements: Flowmon (PEN 39499) dnsId, dnsFlagsCodes (the response's header flags when there was one, so
 * QR = 1 tells a transaction was answered and the low 4 bits are its rcode), the four section counts,
 * dnsQname/dnsQtype/dnsQclass (the query's question; type and class 0 without one), and the first answer
 * as dnsCrrName/Type/Class/Ttl; Flowtel's flowtelDnsResponseTime and every answer as text
 * (flowtelDnsAnswers, flowtelDnsAnswerTtls, comma separated as in Zeek's dns.log). The flow record gets
 * flowtelDnsTransactions. Off by default.
 */
import type { RecordWriter } from '../../ipfix/record-writer.js'
import type { DnsTx } from '../../l7/dns.js'
import type { FieldList } from '../feature.js'
import { clipAll, mayClip, TransactionGroup } from './l7-transactions.js'

const TX_FIELDS: FieldList = [
  ['dnsId'],
  ['dnsFlagsCodes'],
  ['dnsQuestionCount'],
  ['dnsAnswrecCount'],
  ['dnsAuthrecCount'],
  ['dnsAddtrecCount'],
  ['dnsQname'],
  ['dnsQtype'],
  ['dnsQclass'],
  ['dnsCrrName'],
  ['dnsCrrType'],
  ['dnsCrrClass'],
  ['dnsCrrTtl'],
  ['flowtelDnsResponseTime'],
  ['flowtelDnsAnswers'],
  ['flowtelDnsAnswerTtls'],
]

export class DnsFields extends TransactionGroup<DnsTx> {
  readonly name = 'dns'
  protected readonly countField = 'flowtelDnsTransactions'
  protected readonly txFields = TX_FIELDS
  protected readonly templateIds = [272, 273] as const

  constructor() {
    super('dns')
  }

  protected txTimeUs(tx: DnsTx, tsUs: number): number {
    return tx.queryUs > 0 ? tx.queryUs : tx.responseUs > 0 ? tx.responseUs : tsUs
  }

  protected writeTx(tx: DnsTx, w: RecordWriter): void {
    w.u16(tx.id)
    w.u16(tx.flags)
    w.u16(tx.qdcount)
    w.u16(tx.ancount)
    w.u16(tx.nscount)
    w.u16(tx.arcount)
    const first = tx.answers[0]
    // The answers with data, and their TTLs, comma separated (one pass, no intermediate lists).
    let data = ''
    let dataTtls = ''
    for (const a of tx.answers) {
      if (a.data === '') continue
      if (data !== '' || dataTtls !== '') {
        data += ','
        dataTtls += ','
      }
      data += a.data
      dataTtls += a.ttl
    }
    let qname = tx.qname
    let crrName = first?.name ?? ''
    let answers = data
    let ttls = dataTtls
    if (mayClip(qname.length + crrName.length + answers.length + ttls.length))
      [qname = '', crrName = '', answers = '', ttls = ''] = clipAll([qname, crrName, answers, ttls])
    w.string(qname)
    w.u16(tx.qtype < 0 ? 0 : tx.qtype)
    w.u16(tx.qclass < 0 ? 0 : tx.qclass)
    w.string(crrName)
    w.u16(first?.type ?? 0)
    w.u16(first?.class ?? 0)
    w.u32(first?.ttl ?? 0)
    const rt = tx.queryUs > 0 && tx.responseUs >= tx.queryUs ? Math.round(tx.responseUs - tx.queryUs) : 0
    w.u32(rt > 0xffffffff ? 0xffffffff : rt)
    w.string(answers)
    w.string(ttls)
  }
}
