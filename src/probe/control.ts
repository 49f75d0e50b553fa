/**
 * The seam between the REST API / CLI and a running probe service: read and change settings, Validate a
 * collector address, read status counters, and run the troubleshooting capture of the export traffic.
 */
import type { ProbeSettings } from '../config/settings.js'
import type { ProbeStatus } from '../metrics/status.js'

/** Result of Validate: an ICMP echo to the collector host (seed: "Validate"). */
export interface ValidateResult {
  /** The address as given (host part of host:port). */
  address: string
  /** What the host resolved to, '' when resolution failed. */
  resolved: string
  reachable: boolean
  /** Round-trip time in milliseconds when reachable. */
  rttMs?: number
  /** Why not reachable (resolution failed, timeout, ...). */
  error?: string
}

/** A settings change is applied whole or not at all; `errors` name the key and the problem. */
export type ApplyResult = { ok: true; settings: ProbeSettings } | { ok: false; errors: string[] }

export interface DebugCaptureState {
  running: boolean
  /** Bytes and packets captured so far (the pcap of the export traffic). */
  bytes: number
  packets: number
  startedAt?: string
  /** When the last capture stopped (ISO 8601). */
  stoppedAt?: string
  /** Limits of the running or last capture. */
  maxBytes?: number
  maxSeconds?: number
  /** Why the last capture stopped: 'stopped', 'size-limit', 'time-limit'. */
  stopReason?: string
}

export interface TelemetryControl {
  getSettings(): ProbeSettings
  /** Validate and apply a full settings document live (no flow-cache drop). */
  applySettings(next: unknown): Promise<ApplyResult>
  validate(address: string): Promise<ValidateResult>
  /** The same figures as /metrics, as JSON (metrics/status.ts). */
  status(): ProbeStatus
  /** Starts (or restarts, discarding the previous pcap) the capture of the export traffic. */
  startDebugCapture(opts: { maxBytes?: number; maxSeconds?: number }): DebugCaptureState
  stopDebugCapture(): DebugCaptureState
  /** The state of the running or last capture. */
  debugCaptureState(): DebugCaptureState
  /** The .pcap bytes of the last (or running) debug capture. */
  debugCapturePcap(): Uint8Array
}
