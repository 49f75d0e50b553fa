/**
 * The seam between the flow cache and what a flow record carries (ipfixprobe's process-plugin idea).
 *
 * A feature keeps its own per-flow state in typed arrays indexed by flow id, is told about every packet
 * of the flows it serves, and writes its information elements into the exported record. Field groups
 * (`core`, `l2`, `tunnel`, later `npm`, `dns`, ...) are features; a disabled group is simply not in the
 * list, so it costs nothing on the packet path.
 */
import type { PacketInfo } from '../decode/packet.js'
import type { IpfixExporter } from '../ipfix/exporter.js'
import type { RecordWriter } from '../ipfix/record-writer.js'

/** Packet direction relative to the flow's initiator. */
export const enum Dir {
  Forward = 0, // initiator → responder
  Reverse = 1, // responder → initiator
}

/** Why a flow record was exported: IANA flowEndReason (RFC 5102 §5.11.3). */
export const enum EndReason {
  IdleTimeout = 1,
  ActiveTimeout = 2,
  EndOfFlow = 3,
  ForcedEnd = 4,
  LackOfResources = 5,
}

export const END_REASON_NAMES: Readonly<Record<number, string>> = {
  1: 'idleTimeout',
  2: 'activeTimeout',
  3: 'endOfFlow',
  4: 'forcedEnd',
  5: 'lackOfResources',
}

/** Read-only facts about a flow that the cache owns and features may use when writing a record. */
export interface FlowView {
  /** Flow start and end (first and last packet) in µs since the epoch. */
  startUs(id: number): number
  endUs(id: number): number
  endReason(id: number): number
  /**
   * During an export: when the record fell due (µs), which is when the one-thread probe writes it (before
   * the first packet at or after that time): its timeout's due time; the packet's time for an eviction
   * (cache full) or a closed connection whose ports a new SYN reuses; Infinity when every flow is flushed.
   */
  exportDueUs(): number
  ipVersion(id: number): number
  protocol(id: number): number
  /** Writes the initiator's (dir 0) or responder's (dir 1) address words into `out`; returns ipVersion. */
  address(id: number, dir: Dir, out: Uint32Array): number
  port(id: number, dir: Dir): number
  vlanId(id: number): number
  innerVlanId(id: number): number
  tunnelType(id: number): number
  tunnelId(id: number): number
}

/**
 * Which optional fields a record carries, and in what size (bit set): fields that are always zero for most
 * flows have their own templates, and so do counters that fit in 32 bits, so the common record is smaller.
 */
export const enum RecordKind {
  Plain = 0,
  /** A tunnelled flow (tunnelType not None): the `tunnel` group's layer2SegmentId. */
  Tunnel = 1,
  /** An ICMP or ICMPv6 flow: the per-direction ICMP type and code. */
  Icmp = 2,
  /**
   * L7 transaction records were written for the flow since its last record: the transaction groups'
   * count fields (flowtelDnsTransactions, ...). A record without them means none. Never with Icmp (the L7
   * engine sees only TCP and UDP payloads), so kinds 6 and 7 do not exist.
   */
  Transactions = 4,
  /**
   * The flow's octet and packet counters (both directions) all fit in 32 bits: the `core` group writes
   * them in 4 octets instead of 8 (reduced-size encoding, RFC 7011 §6.2). Most flows are small, and this
   * takes 16 octets off their record.
   */
  Counters32 = 8,
}

/**
 * Kinds as a number of templates per IP version: 0-15, of which 6, 7, 14 and 15 never occur (see
 * RecordKind.Transactions).
 */
export const RECORD_KINDS = 16

/** False for the kinds that never occur (ICMP with transactions). */
export function isRecordKind(kind: number): boolean {
  return (kind & (RecordKind.Icmp | RecordKind.Transactions)) !== (RecordKind.Icmp | RecordKind.Transactions)
}

/** The record kind of flow `id`. */
export function recordKind(id: number, flow: FlowView): number {
  const proto = flow.protocol(id)
  return (
    (flow.tunnelType(id) !== 0 ? RecordKind.Tunnel : 0) | (proto === 1 || proto === 58 ? RecordKind.Icmp : 0)
  )
}

export type FieldList = ReadonlyArray<readonly [name: string, length?: number]>

export interface FlowFeature {
  /** Field-group name as the operator selects it (`--fields core,l2`). */
  readonly name: string
  /**
   * Information elements this feature writes, in order, for IPv4 or IPv6 records of a kind (RecordKind
   * bits); `write` must write exactly these for a flow of that kind (see recordKind).
   */
  fields(ipVersion: 4 | 6, kind: number): FieldList
  /** Upper bound of the bytes the variable-length fields of `write` add (0 or absent for fixed fields). */
  readonly varLengthBound?: number
  /** True when onPacket does nothing: the cache then leaves the feature out of the per-packet loop. */
  readonly noPacketWork?: boolean
  /**
   * RecordKind bits this feature adds for flow `id` when its record is written (after beforeExport-style
   * hooks ran), for optional fields that only the feature knows about (RecordKind.Transactions).
   */
  recordKind?(id: number): number
  /** True when onCreate, onReset and onSwap do nothing (no per-flow state): the cache skips those calls. */
  readonly noFlowState?: boolean
  /** Make per-flow arrays hold at least `capacity` flows, keeping the first `used` entries. */
  resize(capacity: number, used: number): void
  /** A new flow starts with packet `p`, which travels in direction `dir` (a SYN/ACK seen first is Reverse). */
  onCreate(id: number, p: PacketInfo, dir: Dir, tsUs: number, ifIndex: number): void
  /** Every packet of the flow, the first one included (after onCreate). */
  onPacket(id: number, p: PacketInfo, dir: Dir, tsUs: number): void
  /** Counters restart after an active-timeout export; the flow itself goes on. */
  onReset(id: number): void
  /** The initiator turned out to be the other side (a SYN seen late): swap per-direction state. */
  onSwap(id: number): void
  /**
   * Write this feature's fields for flow `id`. `kind`: the record's RecordKind bits (fields(v, kind) are the
   * fields to write); not called for a record in which the feature has no fields.
   */
  write(id: number, flow: FlowView, w: RecordWriter, kind: number): void
  /**
   * Called before each record of flow `id` is built (before any recordKind or write), with its end
   * reason set: the L7 hub emits the flow's open transactions here on its last record.
   */
  beforeExport?(id: number, flow: FlowView): void
  /** Groups that write records of their own (L7 transactions, the application catalogue) get the exporter. */
  attach?(exporter: IpfixExporter): void
}
