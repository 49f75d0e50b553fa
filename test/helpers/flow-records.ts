// Decoded records for store tests, in the collector's output form (CollectedRecord): one field, one record
// with the metadata every store test uses unless it says otherwise (IPFIX, exporter 192.0.2.1, domain 7,
// template 256). Shared by test/store/store-suite.ts, src/store/duckdb.test.ts and record-plan.test.ts.
import type { CollectedRecord } from '../../src/collector/decode-message.js'
import type { IeDataType } from '../../src/ipfix/data-types.js'
import type { DecodedField } from '../../src/ipfix/decoder.js'

export const field = (name: string, type: IeDataType, value: DecodedField['value']): DecodedField => ({
  pen: 0,
  id: 0,
  name,
  type,
  value,
})

export function record(fields: DecodedField[], over: Partial<CollectedRecord> = {}): CollectedRecord {
  return {
    version: 10,
    exporter: '192.0.2.1',
    exportTime: 0,
    sequence: 0,
    deferred: false,
    odid: 7,
    templateId: 256,
    isOptions: false,
    scopeCount: 0,
    fields,
    ...over,
  }
}
