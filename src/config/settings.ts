/**
 * The probe's settings: the "Network Telemetry" screen of the seed product, point by point.
 *
 * One shape for the YAML config file, the REST API (`GET`/`PUT /api/v1/telemetry/settings`) and the CLI
 * flags. Validation against the schema lives in config/schema.ts; this file holds only the types and
 * the defaults, so every consumer (loader, API, service) agrees on them. Keys, limits and defaults are
 * documented in docs/settings.md.
 */

/** Flow export format. NetFlow v9/v5 carry only the fields those formats can. */
export type ExportProtocol = 'ipfix' | 'netflow-v9' | 'netflow-v5'

/** Export transport (RFC 7011 §10). */
export type ExportTransport = 'udp' | 'tcp' | 'tls'

export interface TlsSettings {
  /** PEM file of the CA that signs the collector's certificate (system CAs when absent). */
  caFile?: string
  /** Client certificate and key (PEM) for mutual TLS. */
  certFile?: string
  keyFile?: string
  /** Name checked against the collector's certificate (defaults to the collector host). */
  serverName?: string
}

export interface CaptureSettings {
  promiscuous: boolean
  /** Bytes kept of each packet. */
  snaplen: number
  /** Kernel capture buffer in bytes, per interface. */
  bufferBytes: number
  /** BPF filter expression (tcpdump syntax), '' for everything. */
  filter: string
}

export interface ApiSettings {
  /** host:port the REST API and /metrics listen on; loopback by default. */
  listen: string
  /** Bearer token; required when `listen` is not a loopback address. */
  token?: string
  /** File holding the token (first line), instead of `token`. */
  tokenFile?: string
}

export interface ProbeSettings {
  /** Collector addresses: `1.1.1.1:2055`, `collector.local:3000`, `[2001:db8::1]:4739`. At least one. */
  collectors: string[]
  exportProtocol: ExportProtocol
  transport: ExportTransport
  tls: TlsSettings
  /** Seconds (1..86400); a flow longer than this is exported and continues. */
  activeTimeout: number
  /** Seconds (1..86400) without packets after which a flow is exported. */
  inactiveTimeout: number
  /**
   * Field groups on beyond `core`, which is always on (see flow/fields/index.ts); [] = core only. Pass
   * `['core', ...fields]` to createFieldGroups: an empty list there means the default groups.
   */
  fields: string[]
  /** Interfaces to monitor; each must have an IP address. */
  interfaces: string[]
  capture: CaptureSettings
  /** Local address the export leaves from ('' = chosen by the OS). In an HA pair each node sets its own. */
  sourceAddress: string
  /**
   * IPFIX observation domain; undefined = derived per node from the source address / host so HA nodes
   * differ (config/observation-domain.ts: observationDomainFor).
   */
  observationDomainId?: number
  /** Link MTU the export datagrams must fit. */
  mtu: number
  /** Worker threads sharing the flow work by a symmetric hash of the flow key. */
  workers: number
  api: ApiSettings
}

export const DEFAULT_SETTINGS: ProbeSettings = {
  collectors: [],
  exportProtocol: 'ipfix',
  transport: 'udp',
  tls: {},
  activeTimeout: 300,
  inactiveTimeout: 30,
  fields: ['l2', 'tunnel'],
  interfaces: [],
  capture: { promiscuous: true, snaplen: 262144, bufferBytes: 4 * 1024 * 1024, filter: '' },
  sourceAddress: '',
  mtu: 1500,
  workers: 1,
  api: { listen: '127.0.0.1:8765' },
}
