/**
 * Turns flows leaving the cache into IPFIX data records: one template per IP version, built from the
 * enabled field groups in order, and each group writing its own fields (RFC 7011 §3.4.1, §3.4.3).
 */
import { Template } from '../ipfix/template.js'
import type { IpfixExporter } from '../ipfix/exporter.js'
import type { FlowFeature, FlowView } from './feature.js'

/** Template IDs of flow records; options templates use IDs from 400 up (see the exporter). */
export const TEMPLATE_ID_IPV4 = 256
export const TEMPLATE_ID_IPV6 = 257

export class FlowRecords {
  readonly v4: Template
  readonly v6: Template
  private readonly v4Max: number
  private readonly v6Max: number

  constructor(
    private readonly features: readonly FlowFeature[],
    private readonly exporter: IpfixExporter,
  ) {
    this.v4 = Template.fromNames(
      TEMPLATE_ID_IPV4,
      features.flatMap((f) => f.fields(4)),
    )
    this.v6 = Template.fromNames(
      TEMPLATE_ID_IPV6,
      features.flatMap((f) => f.fields(6)),
    )
    const varBound = features.reduce((n, f) => n + (f.varLengthBound ?? 0), 0)
    this.v4Max = this.v4.fixedLength + varBound
    this.v6Max = this.v6.fixedLength + varBound
    exporter.addTemplate(this.v4)
    exporter.addTemplate(this.v6)
  }

  /** The cache's expire handler: write flow `id` as one record. */
  readonly write = (id: number, flow: FlowView): void => {
    const v6 = flow.ipVersion(id) === 6
    const w = this.exporter.beginRecord(v6 ? this.v6 : this.v4, v6 ? this.v6Max : this.v4Max)
    const features = this.features
    for (let i = 0; i < features.length; i++) features[i]!.write(id, flow, w)
    this.exporter.endRecord()
  }
}
