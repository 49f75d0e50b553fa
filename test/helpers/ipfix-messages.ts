// Small IPFIX messages for tests (RFC 7011 §3): one template (set 2) and/or one data set of records given as
// raw field octets, with padding after the data records shorter than a record.

/** A field of the template: element id, enterprise number (0: IANA), length on the wire. */
export interface IpfixFieldSpec {
  readonly id: number
  readonly pen: number
  readonly length: number
}

export function ipfixMessage(opts: {
  templateId: number
  fields: readonly IpfixFieldSpec[]
  /** Per record, per field: its octets (each of its field's length). */
  records: readonly (readonly Uint8Array[])[]
  withTemplate: boolean
  sequence?: number
  domain?: number
  exportTime?: number
}): Buffer {
  const { templateId, fields } = opts
  const parts: Buffer[] = []
  if (opts.withTemplate) {
    const specLen = fields.reduce((n, f) => n + (f.pen !== 0 ? 8 : 4), 0)
    const t = Buffer.alloc(8 + specLen)
    t.writeUInt16BE(2, 0)
    t.writeUInt16BE(t.length, 2)
    t.writeUInt16BE(templateId, 4)
    t.writeUInt16BE(fields.length, 6)
    let p = 8
    for (const f of fields) {
      t.writeUInt16BE(f.pen !== 0 ? f.id | 0x8000 : f.id, p)
      t.writeUInt16BE(f.length, p + 2)
      p += 4
      if (f.pen !== 0) {
        t.writeUInt32BE(f.pen, p)
        p += 4
      }
    }
    parts.push(t)
  }
  if (opts.records.length > 0) {
    const body = Buffer.concat(opts.records.flat())
    // Padding shorter than a record (RFC 7011 §3.3.1).
    const pad = Math.max(0, Math.min(3, fields.reduce((n, f) => n + f.length, 0) - 1))
    const d = Buffer.alloc(4)
    d.writeUInt16BE(templateId, 0)
    d.writeUInt16BE(4 + body.length + pad, 2)
    parts.push(d, body, Buffer.alloc(pad))
  }
  const h = Buffer.alloc(16)
  h.writeUInt16BE(10, 0)
  h.writeUInt16BE(16 + parts.reduce((n, b) => n + b.length, 0), 2)
  h.writeUInt32BE(opts.exportTime ?? 1_700_000_000, 4)
  h.writeUInt32BE(opts.sequence ?? 0, 8)
  h.writeUInt32BE(opts.domain ?? 7, 12)
  return Buffer.concat([h, ...parts])
}
