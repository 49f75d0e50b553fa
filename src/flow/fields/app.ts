/**
 * Field group `app`: application identification (RFC 6759). Every flow record gets `applicationId`
 * (IANA 95), four octets: Classification Engine ID then a 3-octet Selector ID.
 * - Engine 13 (PANA-L7): the stable id of a catalogue entry (src/appid/catalogue.ts).
 * - Engine 3 (IANA-L4): not in the catalogue; the responder's TCP/UDP port (the well-known port, if any).
 * - Engine 1 (IANA-L3): not in the catalogue and no ports; the IP protocol number.
 *
 * Classification, strongest evidence first (src/appid/classifier.ts): the server name (TLS SNI, QUIC SNI
 * from the decrypted client Initial, HTTP Host, DNS query name) against the catalogue's domains; the server
 * address named by a DNS answer seen earlier (only over TLS, HTTP or an unidentified protocol); the L7
 * parser that claimed the flow (src/l7) or a content signature (src/appid/signatures.ts) on the first payload
 * packets; the responder's port, then the initiator's; the IP protocol. Once a packet names a flow, the
 * parsers stop for it unless another group needs its transactions (./l7-hub.ts); the flow's end still gives
 * the transactions that were open then (a query without answer), and the last name given wins. Transactions
 * of later packets are not looked at, nor those of a parser the flow was handed to (TLS after SMTP STARTTLS
 * or in an HTTP CONNECT tunnel).
 *
 * The catalogue leaves as RFC 6759 options records (template 290, scope applicationId; applicationName,
 * applicationDescription, applicationCategoryName) after the templates, and again whenever the exporter
 * re-sends its templates, so a collector can always name what it receives. Off by default.
 */
import {
  AppCatalogue,
  DnsAnswerCache,
  Evidence,
  gateAdmits,
  gatedIndex,
  NO_APP,
  type GatedSignature,
} from '../../appid/classifier.js'
import type { PacketInfo } from '../../decode/packet.js'
import type { IpfixExporter } from '../../ipfix/exporter.js'
import type { RecordWriter } from '../../ipfix/record-writer.js'
import type { DhcpTx } from '../../l7/dhcp.js'
import type { DnsTx } from '../../l7/dns.js'
import type { FlowKey } from '../../l7/engine.js'
import type { HttpTx } from '../../l7/http.js'
import type { QuicTx } from '../../l7/quic.js'
import type { TlsTx } from '../../l7/tls.js'
import { ipv6Text } from '../../util/address-text.js'
import { resized } from '../../util/typed-arrays.js'
import { Dir, type FieldList, type FlowFeature, type FlowView } from '../feature.js'
import { AppCatalogueRecords, appCatalogueTemplate, ENGINE_PANA_L7 } from './app-catalogue-records.js'
import type { L7Consumer, L7Hub } from './l7-hub.js'

/**
 * Set in the engine octet of an applicationId a metering worker writes when the DNS answer cache may still
 * name the flow (see DnsAnswerSink): never on the wire, the record merger resolves it.
 */
export const DNS_LOOKUP_PENDING = 0x80000000

/**
 * Where a metering worker (src/probe/workers) sends what its DNS answer cache would do, so that the main
 * thread keeps the one cache of all workers (a flow's DNS answer is often metered by another worker: the
 * flows are shared out by address pair). With a sink, the group keeps no cache of its own.
 */
export interface DnsAnswerSink {
  /** A DNS answer at packet time `tUs` named `address` (text) as catalogue entry `entryId` (stable id). */
  answer(tUs: number, address: string, entryId: number): void
  /**
   * The record being written may be named by the cache: the responder `address` (IPv4 as a 32-bit number,
   * else text) as the cache held it at `dueUs` (FlowView.exportDueUs). Its applicationId carries
   * DNS_LOOKUP_PENDING over what it gets when the cache does not know the address.
   */
  lookup(dueUs: number, address: number | string): void
}
const ENGINE_IANA_L3 = 1
const ENGINE_IANA_L4 = 3
/** Payload packets (both directions) tried against the content signatures. */
const SIGNATURE_TRIES = 8
/** Parsers the group runs for names: server names and protocol identity. */
const PARSERS: readonly string[] = ['dns', 'http', 'tls', 'quic', 'dtls', 'dhcp']
/** Protocols over which a DNS-cache name wins (the name says more than "TLS"). */
const CARRIERS = ['TLS', 'HTTP', 'QUIC']

export class AppFields implements FlowFeature, L7Consumer {
  readonly name = 'app'
  readonly l7Parsers = PARSERS
  /** Names come from the protocol that claimed the flow (a STARTTLS or CONNECT handshake is not looked at). */
  readonly l7Handoffs = false
  readonly catalogue: AppCatalogue
  readonly dnsCache = new DnsAnswerCache()
  private dnsSink: DnsAnswerSink | undefined
  private hub: L7Hub | undefined
  private app = new Int32Array(0)
  private evidence = new Uint8Array(0)
  private tries = new Uint8Array(0)
  /** When the flow got its name: the hub's packet number and the packet's capture time (µs). */
  private namedAt = new Float64Array(0)
  private namedUs = new Float64Array(0)
  /** Per catalogue entry: 1 for the CARRIERS. */
  private readonly carriers: Uint8Array
  /** Per catalogue entry: its stable id (the Selector ID). */
  private readonly entryIds: Int32Array
  private readonly dnsLike: { dns: number; mdns: number; llmnr: number; netbios: number }
  private readonly dhcp: [v4: number, v6: number]
  /** The entries of the protocols a transaction names when its server name is not in the catalogue. */
  private readonly protocols: { tls: number; quic: number; dtls: number; http: number }
  /**
   * One bit per TCP port (0-65535) and UDP port (65536 + port): set when the catalogue has an entry for it.
   * Most flows' client ports have none; this 16 kB map answers that without loading the catalogue's 512 kB
   * port table, whose lines for random ports are seldom in the cache.
   */
  private readonly portKnown: Uint8Array
  /** Per IP protocol number: catalogue.byIpProtocol (a Map lookup), for the flows no port names. */
  private readonly byProtocol = new Int32Array(256)
  /** The catalogue's signature lists by gatedIndex, and its gated ports (AppCatalogue.gated, gatePort). */
  private readonly gated: readonly (readonly GatedSignature[] | undefined)[]
  private readonly gatePort: Uint8Array
  /** The catalogue as RFC 6759 options records on the exporter (see attach). */
  private catalogueRecords: AppCatalogueRecords | undefined
  private readonly words = new Uint32Array(4)
  private readonly addrView = new DataView(new ArrayBuffer(16))
  /** Flows classified, by evidence (index: Evidence). */
  readonly classified = new Float64Array(6)

  constructor(catalogue = new AppCatalogue()) {
    this.catalogue = catalogue
    this.gated = catalogue.gated
    this.portKnown = catalogue.portKnown
    this.gatePort = catalogue.gatePort
    this.carriers = new Uint8Array(catalogue.entries.length)
    for (const n of CARRIERS) {
      const i = catalogue.named(n)
      if (i !== NO_APP) this.carriers[i] = 1
    }
    this.entryIds = Int32Array.from(catalogue.entries, (e) => e.id)
    this.dnsLike = {
      dns: catalogue.named('DNS'),
      mdns: catalogue.named('MDNS'),
      llmnr: catalogue.named('LLMNR'),
      netbios: catalogue.named('NetBIOS'),
    }
    this.dhcp = [catalogue.named('DHCP'), catalogue.named('DHCPV6')]
    this.protocols = {
      tls: catalogue.named('TLS'),
      quic: catalogue.named('QUIC'),
      dtls: catalogue.named('DTLS'),
      http: catalogue.named('HTTP'),
    }
    for (let proto = 0; proto < 256; proto++) this.byProtocol[proto] = catalogue.byIpProtocol(proto)
  }

  /** catalogue.byTransportPort, through portKnown. */
  private byPort(proto: number, port: number): number {
    if (proto !== 6 && proto !== 17) return NO_APP
    const k = (proto === 6 ? 0 : 65536) + (port & 0xffff)
    if ((this.portKnown[k >> 3]! & (1 << (k & 7))) === 0) return NO_APP
    return this.catalogue.byTransportPort(proto, port)
  }

  /** Metering workers: the DNS answer cache is kept by the main thread (see DnsAnswerSink). */
  shareDnsAnswers(sink: DnsAnswerSink): void {
    this.dnsSink = sink
  }

  useHub(hub: L7Hub): void {
    this.hub = hub
  }

  /** Transactions still count until the flow is named. */
  wantsFlow(id: number): boolean {
    return this.evidence[id]! < Evidence.Name
  }

  onL7Tx(key: FlowKey, tx: unknown, tsUs: number, parser: string): void {
    const id = key.flowId
    if (id < 0 || id >= this.app.length) return
    if (this.evidence[id]! >= Evidence.Name) {
      // Named already: only what came with the naming packet, and at the end what was open then, counts.
      const hub = this.hub
      if (hub === undefined) return
      if (hub.finishing ? beginUs(tx, parser, tsUs) > this.namedUs[id]! : hub.packets !== this.namedAt[id])
        return
    }
    this.onTx(key, tx, parser, tsUs)
  }

  fields(): FieldList {
    return [['applicationId', 4]]
  }

  /** Adds the catalogue's options template and sends the catalogue. */
  attach(exporter: IpfixExporter): void {
    this.catalogueRecords = new AppCatalogueRecords(exporter, appCatalogueTemplate(), this.catalogue.entries)
    this.catalogueRecords.start()
  }

  resize(capacity: number, used: number): void {
    this.app = resized(this.app, capacity, used)
    this.evidence = resized(this.evidence, capacity, used)
    this.tries = resized(this.tries, capacity, used)
    this.namedAt = resized(this.namedAt, capacity, used)
    this.namedUs = resized(this.namedUs, capacity, used)
  }

  onCreate(id: number): void {
    // The hub (in front of this group) has emitted the open transactions of the flow that had this id. The
    // flow's state is set up at its first payload (onFirstPayload): until then it has none (fresh).
    if (this.hub === undefined) this.onFirstPayload(id)
    // The exporter sent its templates again (refresh, new session): the catalogue follows them. The first
    // round carries the catalogue queued by attach().
    this.catalogueRecords?.followTemplates()
  }

  /** Flow `id` brings its first payload (the hub calls this before the parsers see it). */
  onFirstPayload(id: number): void {
    this.app[id] = NO_APP
    this.evidence[id] = Evidence.None
    this.tries[id] = 0
  }

  /** False while flow `id` has had no payload: its state is not set up (see onFirstPayload). */
  private hasState(id: number): boolean {
    return this.hub === undefined || this.hub.hasPayload(id)
  }

  /** The content signatures run from the hub (onPayload): no per-packet call from the flow cache. */
  readonly noPacketWork = true

  onPacket(): void {}

  /** A packet with payload, after the hub gave it to the parsers (see L7Consumer.onPayload). */
  onPayload(id: number, p: PacketInfo, dir: Dir): void {
    const n = p.payloadCaptured
    if (n === 0 || this.evidence[id]! >= Evidence.Signature || this.tries[id]! >= SIGNATURE_TRIES) return
    this.tries[id]! += 1
    const proto = p.protocol
    if (proto !== 6 && proto !== 17) return
    const o = p.payloadOffset
    const b = p.buf
    if (o >= b.byteLength) return // no signature matches an empty payload
    // Only the signatures that can match a payload of this transport, direction, ports and first octet.
    const gp = this.gatePort
    const way = (proto === 6 ? 0 : 2) | (dir === Dir.Forward ? 0 : 1)
    const k = gatedIndex(way, gp[p.srcPort]! | gp[p.dstPort]!, b[o]!)
    const sigs = this.gated[k] ?? this.catalogue.gatedList(k)
    if (sigs.length > 0) this.trySignatures(id, p, dir, sigs)
  }

  /**
   * The first of `sigs` that matches the payload of `p` names flow `id`. Each is called only when the
   * payload passes its gate (length, length field, anchor), tested here on the packet buffer.
   */
  private trySignatures(id: number, p: PacketInfo, dir: Dir, sigs: readonly GatedSignature[]): void {
    const o = p.payloadOffset
    const b = p.buf
    const len = Math.min(o + p.payloadCaptured, b.byteLength) - o
    let bytes: Uint8Array | undefined
    for (let i = 0; i < sigs.length; i++) {
      const s = sigs[i]!
      if (len < s.minLength || !gateAdmits(s, b, o, len)) continue
      // A plain view (cheaper to make than b.subarray, which builds a Buffer through its species constructor).
      bytes ??= new Uint8Array(b.buffer, b.byteOffset + o, len)
      if (s.test(bytes, p.protocol === 6 ? 'tcp' : 'udp', dir === Dir.Forward, p.srcPort, p.dstPort)) {
        this.set(id, s.entry, Evidence.Signature)
        return
      }
    }
  }

  /** Signatures are tried no more on flow `id` (named by them or better, or out of tries). */
  payloadDone(id: number): boolean {
    return this.evidence[id]! >= Evidence.Signature || this.tries[id]! >= SIGNATURE_TRIES
  }

  onReset(): void {}

  onSwap(): void {}

  write(id: number, flow: FlowView, w: RecordWriter): void {
    // On the flow's last record, open transactions (a DNS query without answer) still name it: the hub's
    // beforeExport has emitted them already. A flow without payload has no state: nothing named it.
    const fresh = !this.hasState(id)
    let entry = fresh ? NO_APP : this.app[id]!
    let ev: number = fresh ? Evidence.None : this.evidence[id]!
    let pending = 0
    if (ev < Evidence.DnsCache && (entry === NO_APP || this.carriers[entry] === 1)) {
      if (this.dnsSink !== undefined) {
        this.dnsSink.lookup(flow.exportDueUs(), this.responderKey(flow, id))
        pending = DNS_LOOKUP_PENDING
      } else if (this.dnsCache.size !== 0) {
        const named = this.serverNamed(flow, id)
        if (named !== NO_APP) {
          entry = named
          ev = Evidence.DnsCache
        }
      }
    }
    const proto = flow.protocol(id)
    if (entry === NO_APP) {
      entry = this.byPort(proto, flow.port(id, Dir.Reverse))
      if (entry === NO_APP) entry = this.byPort(proto, flow.port(id, Dir.Forward))
      if (entry !== NO_APP) ev = Evidence.Port
      else {
        entry = this.byProtocol[proto & 0xff]!
        if (entry !== NO_APP) ev = Evidence.IpProtocol
      }
    }
    this.classified[ev]! += 1
    // One 4-octet write: the engine ID in the top octet, the 3-octet selector below it (RFC 6759 §4.1).
    const appId =
      entry !== NO_APP
        ? (ENGINE_PANA_L7 << 24) | (this.entryIds[entry]! & 0xffffff)
        : proto === 6 || proto === 17 || proto === 132
          ? (ENGINE_IANA_L4 << 24) | (flow.port(id, Dir.Reverse) & 0xffff)
          : (ENGINE_IANA_L3 << 24) | (proto & 0xffff)
    w.u32((appId | pending) >>> 0)
  }

  /** The catalogue entry name flow `id` has now ('' when none yet); for tests and the scorer. */
  nameOf(id: number): string {
    if (!this.hasState(id)) return ''
    const e = this.app[id]!
    return e === NO_APP ? '' : this.catalogue.entries[e]!.name
  }

  private set(id: number, entry: number, ev: number, tsUs = 0): void {
    if (entry === NO_APP || ev < this.evidence[id]!) return
    if (ev >= Evidence.Name && this.evidence[id]! < Evidence.Name) {
      this.namedAt[id] = this.hub?.packets ?? 0
      this.namedUs[id] = tsUs
    }
    this.app[id] = entry
    this.evidence[id] = ev
  }

  private onTx(key: FlowKey, tx: unknown, parser: string, tsUs: number): void {
    const id = key.flowId
    const c = this.catalogue
    const protocols = this.protocols
    switch (parser) {
      case 'tls':
        this.nameOr(id, (tx as TlsTx).sni, protocols.tls, tsUs)
        break
      // QUIC SNI (the ClientHello in the client's Initial packets, src/l7/quic.ts). Unlike TLS and HTTP, QUIC
      // and DTLS names are set without their time (namedUs 0), as they always were.
      case 'quic':
        this.nameOr(id, (tx as QuicTx).sni, protocols.quic, 0)
        break
      // DTLS (WebRTC after STUN, VPNs): a server name when the ClientHello has one, else DTLS over STUN.
      case 'dtls':
        this.nameOr(id, (tx as TlsTx).sni, protocols.dtls, 0)
        break
      case 'http':
        this.nameOr(id, withoutPort((tx as HttpTx).host), protocols.http, tsUs)
        break
      case 'dns': {
        const d = tx as DnsTx
        const byName = d.qname !== '' ? c.byHost(d.qname) : NO_APP
        for (const a of d.answers) {
          if (a.type !== 1 && a.type !== 28) continue
          const e = byName !== NO_APP ? byName : c.byHost(a.name)
          if (e === NO_APP || a.data === '') continue
          if (this.dnsSink !== undefined) this.dnsSink.answer(tsUs, a.data, this.entryIds[e]!)
          else this.dnsCache.set(a.data, e)
        }
        // NetBIOS name service (RFC 1002) shares the DNS message layout; mDNS and LLMNR too.
        const port = key.dstPort
        const l = this.dnsLike
        const proto = port === 5353 ? l.mdns : port === 5355 ? l.llmnr : port === 137 ? l.netbios : l.dns
        if (byName !== NO_APP && proto === this.dnsLike.dns) this.set(id, byName, Evidence.Name, tsUs)
        else this.set(id, proto, Evidence.Signature)
        break
      }
      case 'dhcp':
        this.set(id, this.dhcp[(tx as DhcpTx).version === 6 ? 1 : 0], Evidence.Signature)
        break
    }
  }

  /**
   * Names flow `id` by `host` when the catalogue knows it, else marks it as the protocol of catalogue entry
   * `protocol` (by signature).
   */
  private nameOr(id: number, host: string, protocol: number, tsUs: number): void {
    const byName = host !== '' ? this.catalogue.byHost(host) : NO_APP
    if (byName !== NO_APP) this.set(id, byName, Evidence.Name, tsUs)
    else this.set(id, protocol, Evidence.Signature)
  }

  /** The catalogue entry a DNS answer seen earlier gave the flow's responder address (NO_APP if none). */
  private serverNamed(flow: FlowView, id: number): number {
    const words = this.words
    if (flow.address(id, Dir.Reverse, words) === 4) return this.dnsCache.getIpv4(words[0]!)
    if (!this.dnsCache.holdsText) return NO_APP // an IPv6 address would be text
    return this.dnsCache.get(this.wordsText())
  }

  /** The flow's responder address as DnsAnswerCache keys it: IPv4 as a number, IPv6 as text. */
  private responderKey(flow: FlowView, id: number): number | string {
    const words = this.words
    if (flow.address(id, Dir.Reverse, words) === 4) return words[0]! | 0
    return this.wordsText()
  }

  /** The IPv6 address flow.address left in `words`, as text (how DnsAnswerCache keys it). */
  private wordsText(): string {
    const v = this.addrView
    for (let i = 0; i < 4; i++) v.setUint32(i * 4, this.words[i]!)
    return ipv6Text(v, 0)
  }
}

/**
 * `host` without a trailing `:port` (a colon and ASCII digits at the end; what `host.replace(/:\d+$/, '')`
 * gives, without a regular expression per HTTP transaction).
 */
export function withoutPort(host: string): string {
  let i = host.length
  while (i > 0) {
    const c = host.charCodeAt(i - 1)
    if (c < 0x30 || c > 0x39) break
    i--
  }
  return i < host.length && i > 0 && host.charCodeAt(i - 1) === 0x3a ? host.slice(0, i - 1) : host
}

/** When transaction `tx` of parser `parser` began (its first message; µs). */
function beginUs(tx: unknown, parser: string, tsUs: number): number {
  let a = 0
  let b = 0
  switch (parser) {
    case 'dns':
      a = (tx as DnsTx).queryUs
      b = (tx as DnsTx).responseUs
      break
    case 'http':
      a = (tx as HttpTx).requestUs
      b = (tx as HttpTx).responseUs
      break
    case 'tls':
      a = (tx as TlsTx).clientHelloUs
      b = (tx as TlsTx).serverHelloUs
      break
    case 'dhcp':
      a = (tx as DhcpTx).tsUs
      break
  }
  return a > 0 ? a : b > 0 ? b : tsUs
}
