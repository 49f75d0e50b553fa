/**
 * What decoding one export message gives back (records, template events, the fault that ended it), and the
 * services the per-version message decoders (ipfix-message.ts, netflow-v9.ts, sflow.ts) call on the
 * collector. FlowCollector (decode-message.ts) provides them; the decoders depend on this file only, so
 * the dispatcher and the decoders it dispatches to do not import each other.
 */
import type { DecodedRecord } from '../ipfix/decoder.js'
import type { CollectorTemplate } from './data-set.js'
import type { MessageContext } from './pending.js'
import type { TransportProtocol } from './session.js'
import type { SetResult, TemplateStore } from './template-store.js'

export type FlowVersion = 5 | 9 | 10

export interface CollectedRecord extends DecodedRecord {
  readonly version: FlowVersion | 'sflow'
  readonly exporter: string
  readonly exportTime: number
  readonly sequence: number
  /** Decoded from the pending buffer when its template arrived. */
  readonly deferred: boolean
  /**
   * RFC 6313 lists of the record decoded as JSON (structured.ts), by field index; a malformed or undecodable
   * list is absent here (counted) and stays hex in the field.
   */
  structured?: Map<number, unknown>
}

export interface TemplateEvent {
  readonly event: 'template' | 'options-template' | 'withdrawal' | 'withdrawal-all'
  readonly version: 9 | 10
  readonly exporter: string
  readonly domain: number
  readonly templateId: number
  readonly status?: SetResult
  readonly scopeCount?: number
  readonly fields?: ReadonlyArray<{ name: string; pen: number; id: number; length: number }>
}

export interface DecodeOutput {
  readonly records: CollectedRecord[]
  readonly events: TemplateEvent[]
  /** Data records a ColumnSink took straight from their data sets (not in `records`). */
  columnar?: number
  /** The counter of the fault that ended the message, if any (records before it are kept). */
  error?: string
}

/**
 * Takes data sets straight into storage columns (store/fast-plan.ts), without record objects. Set on the
 * collector only when nothing else needs the records (storing, no JSON output).
 */
export interface ColumnSink {
  /**
   * The records of data set bytes[p, end) by template `t`, stored; returns how many, or undefined when the
   * sink does not take this template (the collector then decodes records as usual).
   */
  takeDataSet(
    t: CollectorTemplate,
    ctx: MessageContext,
    bytes: Uint8Array,
    p: number,
    end: number,
  ): number | undefined
}

/** The collector as the message decoders see it. */
export interface MessageDecoderHost {
  /** Template state per transport session (RFC 7011 §8). */
  readonly templates: TemplateStore
  /** Adds `n` (default 1) to the named counter. */
  readonly count: (name: string, n?: number) => void
  /** Counts `name` and records it as the fault that ended the message. */
  fail(out: DecodeOutput, name: string): void
  defineTemplate(
    ctx: MessageContext,
    protocol: TransportProtocol,
    t: CollectorTemplate,
    now: number,
    out: DecodeOutput,
  ): void
  withdraw(ctx: MessageContext, id: number, options: boolean, out: DecodeOutput): void
  withdrawAll(ctx: MessageContext, options: boolean, out: DecodeOutput): void
  /** Decodes one data set (or keeps it until its template arrives); the octets used, or undefined on a fault. */
  dataSet(
    ctx: MessageContext,
    setId: number,
    bytes: Uint8Array,
    p: number,
    end: number,
    now: number,
    out: DecodeOutput,
  ): number | undefined
}
