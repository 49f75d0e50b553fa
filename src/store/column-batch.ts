/**
 * Rows held by column, as the batch writer (./store.ts) hands them to a backend: `columns[name][i]` is row
 * i's value. A column array may be shorter than `length` (or absent): the cells past its end are NULL
 * (record-plan.ts fills columns lazily, so a record's absent elements cost nothing).
 */
import type { RowValue } from './normalize.js'

export interface ColumnBatch {
  length: number
  readonly columns: Record<string, RowValue[]>
}
