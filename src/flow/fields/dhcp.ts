/**
 * Field group `dhcp`: DHCPv4 (RFC 2131/2132) and DHCPv6 (RFC 8415) messages (parser in src/l7/dhcp.ts),
 * one record each (template 278 IPv4 / 279 IPv6, see ./l7-transactions.ts).
 *
 * Elements: Flowmon (PEN 39499) dhcpType (option 53, or the DHCPv6 msg-type in IPv6 records),
 * dhcpHostMacAddr (chaddr, or the MAC inside a DHCPv6 DUID-LL/LLT), dhcpIpRequest, dhcpOfferedIp (yiaddr),
 * dhcpServerIp (option 54), dhcpIpLeaseTime (option 51 / the first IA's valid lifetime), dhcpHostName,
 * dhcpDomainName (option 15 / DHCPv6 domain search list); Flowtel's transaction id, DHCPv6 assigned
 * addresses and prefixes, server and client identifiers, client FQDN, vendor class, parameter request list
 * (the client fingerprint), relay address, relay agent information (option 82) and server message. The flow record gets flowtelDhcpTransactions.
 * Off by default.
 */
import type { RecordWriter } from '../../ipfix/record-writer.js'
import type { DhcpTx } from '../../l7/dhcp.js'
import type { FieldList } from '../feature.js'
import { clipAll, TransactionGroup } from './l7-transactions.js'

const TX_FIELDS: FieldList = [
  ['dhcpType'],
  ['flowtelDhcpTransactionId'],
  ['dhcpHostMacAddr'],
  ['dhcpIpRequest'],
  ['dhcpOfferedIp'],
  ['dhcpServerIp'],
  ['dhcpIpLeaseTime'],
  ['dhcpHostName'],
  ['dhcpDomainName'],
  ['flowtelDhcpAssigned'],
  ['flowtelDhcpServerId'],
  ['flowtelDhcpClientId'],
  ['flowtelDhcpClientFqdn'],
  ['flowtelDhcpVendorClass'],
  ['flowtelDhcpParamList'],
  ['flowtelDhcpRelay'],
  ['flowtelDhcpMessage'],
  ['flowtelDhcpRelayInfo'],
]

/** Dotted-quad text → number (0 for '' or anything else). */
function ipv4Number(s: string): number {
  if (s === '') return 0
  const p = s.split('.')
  if (p.length !== 4) return 0
  return p.reduce((v, o) => v * 256 + (Number(o) & 0xff), 0)
}

export class DhcpFields extends TransactionGroup<DhcpTx> {
  readonly name = 'dhcp'
  protected readonly countField = 'flowtelDhcpTransactions'
  protected readonly txFields = TX_FIELDS
  protected readonly templateIds = [278, 279] as const

  constructor() {
    super('dhcp')
  }

  protected txTimeUs(tx: DhcpTx): number {
    return tx.tsUs
  }

  protected writeTx(tx: DhcpTx, w: RecordWriter): void {
    const v4 = tx.version === 4
    w.u8(tx.msgType)
    w.u32(tx.xid)
    const mac = tx.clientMac
    w.mac(mac === '' ? 0 : parseInt(mac.slice(0, 4), 16), mac === '' ? 0 : parseInt(mac.slice(4), 16))
    w.ipv4(v4 ? ipv4Number(tx.requestedAddr) : 0)
    w.ipv4(v4 ? ipv4Number(tx.assignedAddr) : 0)
    w.ipv4(v4 ? ipv4Number(tx.serverId) : 0)
    w.u32(tx.leaseTime < 0 ? 0 : tx.leaseTime)
    const strings = clipAll([
      tx.hostName,
      tx.domain,
      v4 ? '' : tx.assignedAddr,
      v4 ? '' : tx.serverId,
      tx.clientId,
      tx.clientFqdn,
      tx.vendorClass,
      tx.paramList,
      tx.relayAddr,
      tx.message,
      tx.relayInfo,
    ])
    for (const s of strings) w.string(s)
  }
}
