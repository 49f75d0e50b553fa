/**
 * `flowtel probe` without `--read`: the live probe service (probe/service.ts) on network interfaces, with
 * the REST API and /metrics (api/server.ts) on the service.
 *
 * Settings come from `--config FILE` (YAML, config/load.ts) with the flags given on the command line over
 * it (config/flags.ts), or from the flags alone. A flag's default never overrides the file: only flags
 * actually given count. Signals: SIGTERM/SIGINT stop gracefully (every flow exported, exit 0); SIGHUP
 * re-reads the config file (with the same command-line flags over it) and applies it live. Settings changed
 * through the REST API are written back to the config file when there is one. A metering failure (a worker
 * thread died) stops the service and the command exits 1, so a service manager restarts the probe.
 */
import type { Command } from 'commander'
import { startApiServer, type ApiServer } from '../../api/server.js'
import { resolveApiToken } from '../../api/auth.js'
import { SETTINGS_FLAGS, settingsFromFlags, type SettingsFlags } from '../../config/flags.js'
import { loadSettings, saveSettings } from '../../config/load.js'
import type { ProbeSettings } from '../../config/settings.js'
import type { TelemetryControl } from '../../probe/control.js'
import { ProbeService, type ServiceOptions } from '../../probe/service.js'
import { systemServiceDeps } from '../../probe/service-deps.js'

const log = (m: string): void => void process.stderr.write(`flowtel: ${m}\n`)

/** The flags the user actually gave (not commander defaults), as config/flags.ts reads them. */
function givenFlags(cmd: Command): SettingsFlags {
  const all = cmd.opts<Record<string, unknown>>()
  const out: Record<string, unknown> = {}
  for (const def of SETTINGS_FLAGS) {
    const long = /--([a-z-]+)/.exec(def.flags)?.[1]
    if (long === undefined) continue
    const key = long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
    const src = cmd.getOptionValueSource(key)
    if (src === 'cli' || src === 'env') out[key] = all[key]
  }
  return out
}

/** The config file (when given) with the command-line flags over it, validated; throws with every error. */
function resolveSettings(cmd: Command): ProbeSettings {
  const flags = givenFlags(cmd)
  let base: unknown = undefined
  if (flags.config !== undefined) {
    const file = loadSettings(flags.config, { requireCollectors: false })
    for (const w of file.warnings) log(`warning: ${w}`)
    if (!file.ok) throw new Error(`invalid config file:\n  ${file.errors.join('\n  ')}`)
    base = file.settings
  }
  const r = settingsFromFlags(flags, base)
  if (!r.ok) throw new Error(`invalid settings:\n  ${r.errors.join('\n  ')}`)
  for (const w of r.warnings) log(`warning: ${w}`)
  return r.settings
}

/** Probe knobs that are not part of the operator settings (`--tcp-end-timeout`, `--max-flows`, ...). */
function serviceOptions(cmd: Command): ServiceOptions {
  const o = cmd.opts<Record<string, unknown>>()
  const given = (k: string): number | undefined =>
    cmd.getOptionValueSource(k) === 'cli' && typeof o[k] === 'number' ? o[k] : undefined
  const out: ServiceOptions = {}
  const linger = given('tcpEndTimeout')
  if (linger !== undefined) out.tcpEndLinger = linger
  const maxFlows = given('maxFlows')
  if (maxFlows !== undefined) out.maxFlows = maxFlows
  const refresh = given('templateRefresh')
  if (refresh !== undefined) out.templateRefreshSeconds = refresh
  const stats = given('statsInterval')
  if (stats !== undefined) out.statsIntervalSeconds = stats
  return out
}

/** Runs until SIGTERM/SIGINT; resolves after a graceful stop. */
export async function runLiveProbe(cmd: Command): Promise<void> {
  const settings = resolveSettings(cmd)
  const configFile = givenFlags(cmd).config
  const service = new ProbeService(systemServiceDeps(), serviceOptions(cmd))
  await service.start(settings)
  // The API's view of the service: settings it applies are also written to the config file.
  const control: TelemetryControl = {
    getSettings: () => service.getSettings(),
    applySettings: async (doc) => {
      const r = await service.applySettings(doc)
      if (r.ok && configFile !== undefined)
        try {
          saveSettings(configFile, r.settings)
        } catch (err) {
          log(`settings applied but not saved to ${configFile}: ${(err as Error).message}`)
        }
      return r
    },
    validate: (address) => service.validate(address),
    status: () => service.status(),
    startDebugCapture: (o) => service.startDebugCapture(o),
    stopDebugCapture: () => service.stopDebugCapture(),
    debugCaptureState: () => service.debugCaptureState(),
    debugCapturePcap: () => service.debugCapturePcap(),
  }
  let api: ApiServer
  try {
    const token = await resolveApiToken(settings.api)
    api = await startApiServer({
      control,
      listen: settings.api.listen,
      ...(token !== undefined ? { token } : {}),
      log: (m, err) =>
        log(
          `api: ${m}${err !== undefined ? `: ${err instanceof Error ? err.message : JSON.stringify(err)}` : ''}`,
        ),
    })
  } catch (err) {
    await service.stop()
    throw err
  }
  log(`api: listening on ${api.url}`)

  const failure = await new Promise<Error | undefined>((resolve) => {
    let stopping = false
    const stop = (why: string, err?: Error): void => {
      if (stopping) return
      stopping = true
      log(`${why}: stopping`)
      void (async () => {
        try {
          await api.close()
        } finally {
          await service.stop()
          resolve(err)
        }
      })()
    }
    void service.failed.then((err) => stop('metering failure', err))
    const reload = (): void => {
      if (configFile === undefined) {
        log('SIGHUP: no --config file to reload')
        return
      }
      let next: ProbeSettings
      try {
        next = resolveSettings(cmd)
      } catch (err) {
        log(`SIGHUP: config not applied: ${(err as Error).message}`)
        return
      }
      void service
        .applySettings(next)
        .then((r) =>
          log(r.ok ? 'SIGHUP: config reloaded' : `SIGHUP: config not applied:\n  ${r.errors.join('\n  ')}`),
        )
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', reload)
  })
  // Exit non-zero so that systemd (Restart=on-failure) starts a probe that meters again.
  if (failure !== undefined) throw new Error(`the probe stopped: metering failed: ${failure.message}`)
}
