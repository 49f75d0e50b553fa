/** Shape of the generated vendor dictionaries (RFC 7012 §4 enterprise-specific Information Elements). */
import type { IeDataType } from '../elements.js'

export type EnterpriseRow = readonly [number, string, IeDataType, string?, string?]

export interface EnterpriseTable {
  readonly pen: number
  readonly rows: readonly EnterpriseRow[]
}
