/**
 * Turns flows leaving the cache into IPFIX data records: one template per IP version and record kind
 * (tunnelled or not, ICMP or not, with L7 transactions or not, counters in 4 or 8 octets: see RecordKind),
 * built from the enabled field groups in order, and each group writing its own fields (RFC 7011 §3.4.1,
 * §3.4.3; reduced-size encoding §6.2).
 *
 * The plain IPv4 and IPv6 templates (256, 257, and 296, 297 with 32-bit counters) are announced from the
 * start; a kind's template is added to the exporter when its first record leaves (the exporter sends it
 * before that record's message). Kinds that would give the same fields as a smaller kind (e.g. tunnelled
 * flows without the `tunnel` group) use that kind's template.
 */
import { Template } from '../ipfix/template.js'
import type { IpfixExporter } from '../ipfix/exporter.js'
import {
  isRecordKind,
  RECORD_KINDS,
  RecordKind,
  recordKind,
  type FieldList,
  type FlowFeature,
  type FlowView,
} from './feature.js'

/**
 * Template IDs of flow records: 256 + 2·kind + (IPv6 ? 1 : 0) for the kinds with 8-octet counters (256-267),
 * and 40 more for the same kinds with 32-bit counters (296-307), leaving 270-295 to the ARP, transaction
 * and application templates.
 */
export const TEMPLATE_ID_IPV4 = 256
export const TEMPLATE_ID_IPV6 = 257
/** How far the templates of the RecordKind.Counters32 kinds are from their 8-octet counterparts. */
export const COUNTERS32_ID_OFFSET = 40

/** Template ID of the records of IP version `v` and record kind `kind`. */
export function flowTemplateId(v: 4 | 6, kind: number): number {
  const offset = (kind & RecordKind.Counters32) !== 0 ? COUNTERS32_ID_OFFSET : 0
  return TEMPLATE_ID_IPV4 + offset + 2 * (kind & ~RecordKind.Counters32) + (v === 6 ? 1 : 0)
}

const sameFields = (a: FieldList, b: FieldList): boolean =>
  a.length === b.length && a.every(([n, l], i) => b[i]?.[0] === n && b[i]?.[1] === l)

export class FlowRecords {
  readonly v4: Template
  readonly v6: Template
  /** The plain templates with 32-bit counters (RecordKind.Counters32), the common case. */
  readonly v4Counters32: Template
  readonly v6Counters32: Template
  /** Per slot 2·kind + (IPv6 ? 1 : 0): the template and its record length bound, once added. */
  private readonly templates: (Template | undefined)[] = []
  private readonly maxLengths: number[] = []
  /** The kind whose template a kind uses (itself, or a smaller kind with the same fields). */
  private readonly kindUsed: number[] = []
  private readonly varBound: number
  /** The features that add RecordKind bits of their own (see FlowFeature.recordKind). */
  private readonly kindFeatures: readonly FlowFeature[]
  /**
   * Per slot 2·kind + (IPv6 ? 1 : 0): the features with fields in such a record, in order (a feature with
   * none writes nothing: most flows carry no transaction count, and the L7 hub has no fields).
   */
  private readonly writers: (readonly FlowFeature[])[] = []

  /**
   * `templateIdBase` moves the template IDs (default 256): the live probe's next settings generation uses
   * other IDs while the previous one's flows still leave with their own templates (probe/pipeline.ts).
   */
  constructor(
    private readonly features: readonly FlowFeature[],
    private readonly exporter: IpfixExporter,
    private readonly templateIdBase = TEMPLATE_ID_IPV4,
  ) {
    this.varBound = features.reduce((n, f) => n + (f.varLengthBound ?? 0), 0)
    this.kindFeatures = features.filter((f) => f.recordKind !== undefined)
    const fieldsOf = (v: 4 | 6, kind: number): FieldList => features.flatMap((f) => f.fields(v, kind))
    for (let kind = 0; kind < RECORD_KINDS; kind++) {
      let used = kind
      // The smallest kind (fewest bits) with the same fields for both IP versions.
      for (let k = 0; k < kind && isRecordKind(kind); k++) {
        if ((k & kind) !== k) continue
        if (sameFields(fieldsOf(4, k), fieldsOf(4, kind)) && sameFields(fieldsOf(6, k), fieldsOf(6, kind))) {
          used = k
          break
        }
      }
      this.kindUsed.push(used)
      for (const v of [4, 6] as const) this.writers.push(features.filter((f) => f.fields(v, kind).length > 0))
    }
    this.v4 = this.add(0)
    this.v6 = this.add(1)
    const small = 2 * this.kindUsed[RecordKind.Counters32]!
    this.v4Counters32 = this.templates[small] ?? this.add(small)
    this.v6Counters32 = this.templates[small + 1] ?? this.add(small + 1)
  }

  private add(slot: number): Template {
    const v6 = (slot & 1) === 1
    const kind = slot >> 1
    const t = Template.fromNames(
      flowTemplateId(v6 ? 6 : 4, kind) - TEMPLATE_ID_IPV4 + this.templateIdBase,
      this.features.flatMap((f) => f.fields(v6 ? 6 : 4, kind)),
    )
    this.templates[slot] = t
    this.maxLengths[slot] = t.fixedLength + this.varBound
    this.exporter.addTemplate(t)
    return t
  }

  /** The cache's expire handler: write flow `id` as one record. */
  readonly write = (id: number, flow: FlowView): void => {
    let kind = recordKind(id, flow)
    // The first feature of each list (`core`) has a call site of its own, which sees one class and is
    // inlined; the L7 groups go through the loops (see FlowCache.packetFirst).
    const kf = this.kindFeatures
    if (kf.length > 0) kind |= kf[0]!.recordKind!(id)
    for (let i = 1; i < kf.length; i++) kind |= kf[i]!.recordKind!(id)
    // No ICMP kind with RecordKind.Transactions: an ICMP flow never reaches an L7 parser.
    if (!isRecordKind(kind)) kind &= ~RecordKind.Transactions
    const v6 = flow.ipVersion(id) === 6 ? 1 : 0
    const slot = 2 * this.kindUsed[kind]! + v6
    const t = this.templates[slot] ?? this.add(slot)
    const w = this.exporter.beginRecord(t, this.maxLengths[slot]!)
    const features = this.writers[2 * kind + v6]!
    if (features.length > 0) features[0]!.write(id, flow, w, kind)
    for (let i = 1; i < features.length; i++) features[i]!.write(id, flow, w, kind)
    this.exporter.endRecord()
  }
}
