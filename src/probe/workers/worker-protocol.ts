/** The messages between the worker pool (main thread) and its metering workers (metering-worker.ts). */
import type { IpReassemblyStats } from '../../decode/ip-reassembly.js'
import type { L7Summary } from '../../flow/fields/l7-transactions.js'
import type { PipelineOptions } from '../pipeline.js'
import type { DnsShareReport } from './dns-answer-share.js'
import type { RingMemory } from './packet-ring.js'

/** workerData of a metering worker. */
export interface WorkerInit {
  index: number
  ring: RingMemory
  pipeline: Omit<PipelineOptions, 'onWarning'>
  /** The main exporter's maxRecordLength: records are fitted (strings cut) to what it can write again. */
  maxRecordLength: number
  /** Tests only: throw before metering the slot with this number (0-based), to test failure handling. */
  faultAtSlot?: number
}

/** Payload of a SetFields slot: the new generation's field groups (see probe/service.ts). */
export interface FieldChange {
  fields: string[]
  /** First flow template ID of the new generation (the two generations alive use different ones). */
  flowTemplateIdBase: number
  /** The previous generation is ended (forcedEnd) at the latest this long after the change (µs). */
  drainUs: number
}

/** Running counters of one worker (totals since its start, over every settings generation). */
export interface WorkerCounters {
  packets: number
  nonIp: number
  malformed: number
  unsupported: number
  ignoredOctets: number
  firstIgnoredUs: number
  lastIgnoredUs: number
  /** Records the worker's exporter dropped (longer than the main exporter's maxRecordLength). */
  droppedRecords: number
  /** Flows created, held now, and records exported per flowEndReason (index = reason). */
  flowsCreated: number
  activeFlows: number
  exportedByReason: number[]
  /** Decoder anomalies by name. */
  anomalies: Record<string, number>
  /** IP reassembly for the L7 groups, over every generation; undefined while no generation had an L7 group. */
  ipReassembly?: IpReassemblyStats
  /** The L7 groups' anomalies by `<group>.<name>`, over every generation (empty while none had an L7 group). */
  l7Anomalies: Record<string, number>
  /** Settings generations alive in the worker (2 while the previous one drains). */
  generationsAlive: number
}

/**
 * After every slot: the IPFIX messages the worker's exporter wrote (one buffer), its counters, what its DNS
 * answer cache did (dns-answer-share.ts) and the time it has metered up to (Infinity once it has finished).
 */
export interface WorkerOut {
  type: 'out'
  worker: number
  counters: WorkerCounters
  bytes?: ArrayBuffer
  dns?: DnsShareReport
  progressUs: number
}

export interface WorkerWarning {
  type: 'warning'
  worker: number
  message: string
}

/** After Finish, once every flow is exported: the worker's part of the probe summary. */
export interface WorkerFinal {
  type: 'final'
  worker: number
  counters: WorkerCounters
  ipPackets: number
  ipBytes: number
  flows: number
  peakActiveFlows: number
  endReasons: Record<string, number>
  anomalies: Record<string, number>
  /** When the worker metered with an L7 group (see WorkerCounters). */
  ipReassembly?: IpReassemblyStats
  l7?: Record<string, L7Summary>
}

export type WorkerMessage = WorkerOut | WorkerWarning | WorkerFinal
