// The live probe service without root: fake captures fed from capture files, the real settings schema,
// real UDP export to our collector on loopback. Live apply of timeouts, field groups and collectors, and bad
// settings rejected whole with the keys named.
import { afterEach, describe, expect, it } from 'vitest'
import { CATALOGUE } from '../appid/catalogue.js'
import { checkMonitorable, type NetInterface } from '../capture/interfaces.js'
import { FlowCollector, type CollectedRecord, type TemplateEvent } from '../collector/decode-message.js'
import { listen, type Listener } from '../collector/listener.js'
import { validateSettings } from '../config/schema.js'
import { DEFAULT_SETTINGS, type ProbeSettings } from '../config/settings.js'
import { FakeCapture, readPackets, type FakePacket } from '../../test/helpers/fake-capture.js'
import { probeRecords } from '../../test/helpers/probe-run.js'
import { startApiServer } from '../api/server.js'
import { createExportTransport } from './service-deps.js'
import { ProbeService, type ServiceDeps } from './service.js'
import { liveWorkerThreads } from './workers/worker-pool.js'

const DNS = 'test/fixtures/pcap/interop/ipfixprobe-dns.pcap'
const HTTP = 'test/fixtures/pcap/interop/arkime-http-simple-get.pcap'
/** Four DNS answers in two IPv4 fragments each (see test/fixtures/pcap/ipv4/SOURCES.md). */
const EDNS_FRAGMENTS = 'test/fixtures/pcap/ipv4/zeek-dns-edns-ecs.pcap'
/** HTTP over IPv6 whose 3 responses have a status line the HTTP parser counts as bad (http_bad_status_line). */
const HTTP_BAD_STATUS = 'test/fixtures/pcap/ipv6/zeek-ipv6-http-atomic-frag.pcap'

interface Receiver {
  listener: Listener
  records: CollectedRecord[]
  events: TemplateEvent[]
  collector: FlowCollector
  address: string
}

async function receiver(): Promise<Receiver> {
  const collector = new FlowCollector()
  const records: CollectedRecord[] = []
  const events: TemplateEvent[] = []
  const listener = await listen({ protocol: 'udp', host: '127.0.0.1', port: 0 }, collector, (o) => {
    records.push(...o.records)
    events.push(...o.events)
  })
  return { listener, records, events, collector, address: `127.0.0.1:${listener.port}` }
}

const FAKE_INTERFACES: NetInterface[] = ['fake0', 'fake1', 'noaddr0'].map((name, i) => ({
  name,
  ifIndex: 10 + i,
  up: true,
  operState: 'up',
  loopback: false,
  addresses:
    name === 'noaddr0' ? [] : [{ address: `192.0.2.${i + 1}`, family: 'IPv4', cidr: null, linkLocal: false }],
  vlan: null,
  monitorable: name !== 'noaddr0',
  reason: name === 'noaddr0' ? 'no IP address (the probe monitors only interfaces with an address)' : null,
}))

function harness(): { deps: ServiceDeps; captures: Map<string, FakeCapture>; logs: string[] } {
  const captures = new Map<string, FakeCapture>()
  const logs: string[] = []
  const deps: ServiceDeps = {
    validateSettings: (doc) => {
      const v = validateSettings(doc)
      return v.ok ? { ok: true, settings: v.settings } : { ok: false, errors: v.errors }
    },
    checkInterfaces: (names) => void checkMonitorable(names, FAKE_INTERFACES),
    openCapture: (name) => {
      const itf = FAKE_INTERFACES.find((i) => i.name === name)
      const c = new FakeCapture(name, itf?.ifIndex ?? 0)
      captures.set(name, c)
      return Promise.resolve(c)
    },
    createTransport: createExportTransport,
    observationDomain: () => 77,
    ping: (address) => Promise.resolve({ address, resolved: address, reachable: true, rttMs: 1 }),
    log: (m) => logs.push(m),
  }
  return { deps, captures, logs }
}

const num = (r: CollectedRecord, name: string): number => {
  const v = r.fields.find((f) => f.name === name)?.value
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0
}
const has = (r: CollectedRecord, name: string): boolean => r.fields.some((f) => f.name === name)
const flowRecords = (rs: readonly CollectedRecord[]): CollectedRecord[] =>
  rs.filter((r) => !r.isOptions && has(r, 'packetDeltaCount'))
const packetsIn = (rs: readonly CollectedRecord[]): number =>
  flowRecords(rs).reduce((n, r) => n + num(r, 'packetDeltaCount') + num(r, 'reversePacketDeltaCount'), 0)

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** IP packets the offline probe accounts for in these files (the number every record set must add up to). */
async function ipPackets(files: string[]): Promise<number> {
  return (await probeRecords(files)).summary.ipPackets
}

function settings(over: Partial<ProbeSettings>): ProbeSettings {
  return { ...structuredClone(DEFAULT_SETTINGS), interfaces: ['fake0'], ...over }
}

const cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

async function started(s: ProbeSettings): Promise<{ svc: ProbeService; h: ReturnType<typeof harness> }> {
  const h = harness()
  const svc = new ProbeService(h.deps)
  await svc.start(s)
  cleanup.push(() => svc.stop())
  return { svc, h }
}

describe('ProbeService (fake capture, UDP export on loopback)', () => {
  it('applies new timeouts live without dropping the flow cache; every packet is in a record', async () => {
    const rx = await receiver()
    cleanup.push(() => rx.listener.close())
    const { svc, h } = await started(settings({ collectors: [rx.address] }))
    const pkts = await readPackets([DNS])
    const cap = h.captures.get('fake0')!
    cap.feed(pkts.slice(0, 20))
    await cap.drained()
    const activeBefore = svc.status().flows.active
    expect(activeBefore).toBeGreaterThan(0)
    const r = await svc.applySettings({ ...svc.getSettings(), activeTimeout: 120, inactiveTimeout: 10 })
    expect(r.ok).toBe(true)
    expect(svc.getSettings()).toMatchObject({ activeTimeout: 120, inactiveTimeout: 10 })
    const st = svc.status()
    expect(st.settingsGeneration).toBe(1)
    expect(st.flows.active).toBe(activeBefore) // nothing flushed by the change
    expect(st.generationsAlive).toBe(1)
    cap.feed(pkts.slice(20), Date.now() * 1000)
    await cap.drained()
    await svc.stop()
    const want = await ipPackets([DNS])
    await waitFor(() => packetsIn(rx.records) === want)
    expect(packetsIn(rx.records)).toBe(want)
    expect(svc.status().flows.exportedByEndReason['forcedEnd']).toBeGreaterThan(0)
  })

  it('changes field groups without dropping flows: old flows keep their groups, new flows get the new ones', async () => {
    const rx = await receiver()
    cleanup.push(() => rx.listener.close())
    const { svc, h } = await started(settings({ collectors: [rx.address], fields: ['l2'] }))
    const http = await readPackets([HTTP])
    const dns = await readPackets([DNS])
    const cap = h.captures.get('fake0')!
    const base = Date.now() * 1000
    const half = Math.floor(http.length / 2)
    const at = (p: FakePacket): number => base + (p.tsUs - http[0]!.tsUs)
    cap.feed(http.slice(0, half), at(http[0]!))
    await cap.drained()
    const r = await svc.applySettings({ ...svc.getSettings(), fields: ['l2', 'tcpext'] })
    expect(r.ok).toBe(true)
    expect(svc.status().generationsAlive).toBe(2)
    cap.feed(http.slice(half), at(http[half]!))
    cap.feed(dns, at(http[http.length - 1]!) + 1000)
    await cap.drained()
    await svc.stop()
    const want = (await ipPackets([HTTP])) + (await ipPackets([DNS]))
    await waitFor(() => packetsIn(rx.records) === want)
    const flows = flowRecords(rx.records)
    // The HTTP connection began before the change: one record, old groups, old template IDs (256..).
    const httpFlows = flows.filter((f) => num(f, 'destinationTransportPort') === 80)
    expect(httpFlows).toHaveLength(1)
    expect(httpFlows[0]!.templateId).toBeLessThan(320)
    expect(has(httpFlows[0]!, 'tcpSynSize')).toBe(false)
    expect(num(httpFlows[0]!, 'packetDeltaCount') + num(httpFlows[0]!, 'reversePacketDeltaCount')).toBe(
      http.length,
    )
    // DNS flows began after it: the new groups under the new template IDs (320..).
    const dnsFlows = flows.filter((f) => num(f, 'destinationTransportPort') === 53)
    expect(dnsFlows.length).toBeGreaterThan(0)
    for (const f of dnsFlows) expect(f.templateId).toBeGreaterThanOrEqual(320)
    const tcpextNames = rx.events
      .filter((e) => e.templateId >= 320 && e.templateId < 330)
      .flatMap((e) => e.fields?.map((f) => f.name) ?? [])
    expect(tcpextNames).toContain('tcpSynSize')
    expect(packetsIn(rx.records)).toBe(want)
  })

  it('moves the export to a new collector: templates first there, no record lost or duplicated', async () => {
    const a = await receiver()
    const b = await receiver()
    cleanup.push(
      () => a.listener.close(),
      () => b.listener.close(),
    )
    const { svc, h } = await started(settings({ collectors: [a.address], inactiveTimeout: 1 }))
    const dns = await readPackets([DNS])
    const cap = h.captures.get('fake0')!
    // Ten seconds ago: on the quiet link the wall-clock tick expires these flows (inactive 1 s) to collector A.
    cap.feed(dns.slice(0, 10), Date.now() * 1000 - 10e6)
    await cap.drained()
    await waitFor(() => packetsIn(a.records) > 0)
    const r = await svc.applySettings({ ...svc.getSettings(), collectors: [b.address] })
    expect(r.ok).toBe(true)
    cap.feed(dns.slice(10), Date.now() * 1000)
    await cap.drained()
    await svc.stop()
    const want = await ipPackets([DNS])
    await waitFor(() => packetsIn(a.records) + packetsIn(b.records) === want)
    expect(packetsIn(a.records)).toBeGreaterThan(0)
    expect(packetsIn(b.records)).toBeGreaterThan(0)
    // Collector B learnt the templates before any data: nothing waited for a template.
    expect(b.events.some((e) => e.event === 'template')).toBe(true)
    expect(b.records.every((x) => !x.deferred)).toBe(true)
    expect(b.collector.pending.counters['pending_added'] ?? 0).toBe(0)
    expect(svc.status().collectors.map((c) => c.collector)).toEqual([b.address])
  })

  it('rejects bad settings whole, naming the keys, and keeps the running ones', async () => {
    const rx = await receiver()
    cleanup.push(() => rx.listener.close())
    const { svc } = await started(settings({ collectors: [rx.address] }))
    const before = svc.getSettings()
    const bad = await svc.applySettings({
      ...before,
      activeTimeout: 0,
      fields: ['l2', 'bogus'],
      collectors: ['1.1.1.1;id'],
    })
    expect(bad.ok).toBe(false)
    const errors = bad.ok ? [] : bad.errors.join('\n')
    expect(errors).toMatch(/activeTimeout/)
    expect(errors).toMatch(/fields/)
    expect(errors).toMatch(/collectors/)
    const noIp = await svc.applySettings({ ...before, interfaces: ['fake0', 'noaddr0'] })
    expect(noIp.ok).toBe(false)
    expect(noIp.ok ? '' : noIp.errors.join('\n')).toMatch(/noaddr0.*no IP address/)
    const restart = await svc.applySettings({ ...before, mtu: 9000 })
    expect(restart.ok ? '' : restart.errors.join('\n')).toMatch(/^mtu: /)
    expect(svc.getSettings()).toEqual(before)
    expect(svc.status().settingsGeneration).toBe(0)
  })

  it('adds and removes interfaces live; ingressInterface is the interface index', async () => {
    const rx = await receiver()
    cleanup.push(() => rx.listener.close())
    const { svc, h } = await started(settings({ collectors: [rx.address], fields: ['l2'] }))
    const r = await svc.applySettings({ ...svc.getSettings(), interfaces: ['fake1'] })
    expect(r.ok).toBe(true)
    expect(h.captures.get('fake0')!.isClosed).toBe(true)
    const cap = h.captures.get('fake1')!
    cap.feed(await readPackets([HTTP]))
    await cap.drained()
    expect(svc.status().interfaces.map((i) => i.name)).toEqual(['fake1'])
    await svc.stop()
    await waitFor(() => flowRecords(rx.records).length > 0)
    expect(flowRecords(rx.records).every((f) => num(f, 'ingressInterface') === 11)).toBe(true)
  })

  it('refuses to start on an interface without an IP address, naming it', async () => {
    const h = harness()
    const svc = new ProbeService(h.deps)
    await expect(
      svc.start(settings({ collectors: ['127.0.0.1:9'], interfaces: ['noaddr0'] })),
    ).rejects.toThrow(/noaddr0.*no IP address/)
  })

  it('applies settings PUT through the REST API (keys left out keep their running values)', async () => {
    const rx = await receiver()
    cleanup.push(() => rx.listener.close())
    const { svc } = await started(settings({ collectors: [rx.address] }))
    const api = await startApiServer({ control: svc, listen: '127.0.0.1:0' })
    cleanup.push(() => api.close())
    const put = await fetch(`${api.url}/api/v1/telemetry/settings`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inactiveTimeout: 7, fields: ['l2', 'npm'] }),
    })
    expect(put.status).toBe(200)
    expect(svc.getSettings()).toMatchObject({
      inactiveTimeout: 7,
      fields: ['l2', 'npm'],
      collectors: [rx.address],
    })
    const status = (await (await fetch(`${api.url}/api/v1/telemetry/status`)).json()) as {
      settingsGeneration: number
    }
    expect(status.settingsGeneration).toBe(1)
    const bad = await fetch(`${api.url}/api/v1/telemetry/settings`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inactiveTimeout: -1 }),
    })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { errors: string[] }).errors.join('\n')).toMatch(/inactiveTimeout/)
    expect(svc.getSettings().inactiveTimeout).toBe(7)
  })
})

describe('ProbeService with worker threads (workers: 2)', () => {
  /** Flow records as sorted JSON of their fields (a multiset independent of record order). */
  const flowSet = (rs: readonly CollectedRecord[]): string[] =>
    flowRecords(rs)
      .map((r) => JSON.stringify(r.fields.map((f) => [f.name, String(f.value)])))
      .sort()

  async function meter(
    workers: number,
    files: string[][],
    startUs: number,
  ): Promise<{ rx: Receiver; svc: ProbeService }> {
    const rx = await receiver()
    cleanup.push(() => rx.listener.close())
    const { svc, h } = await started(
      settings({ collectors: [rx.address], workers, fields: ['l2', 'dns', 'http'] }),
    )
    const cap = h.captures.get('fake0')!
    let at = startUs
    for (const f of files) at = cap.feed(await readPackets(f), at) + 1000
    await cap.drained()
    await svc.stop()
    return { rx, svc }
  }

  it('exports the same flow records and L7 transactions as one thread, through one exporter (one domain)', async () => {
    const files = [[DNS], [HTTP], [EDNS_FRAGMENTS]]
    const want = (await ipPackets([DNS])) + (await ipPackets([HTTP])) + (await ipPackets([EDNS_FRAGMENTS]))
    // The same packet times in both runs.
    const startUs = Date.now() * 1000
    const one = await meter(1, files, startUs)
    const two = await meter(2, files, startUs)
    await waitFor(() => packetsIn(one.rx.records) === want && packetsIn(two.rx.records) === want)
    expect(flowSet(two.rx.records)).toEqual(flowSet(one.rx.records))
    expect(flowSet(two.rx.records).length).toBeGreaterThan(5)
    // The L7 transaction records too (DNS queries, the HTTP request).
    const tx = (rs: readonly CollectedRecord[]): number =>
      rs.filter((r) => has(r, 'dnsQname') || has(r, 'httpRequestHost')).length
    expect(tx(two.rx.records)).toBe(tx(one.rx.records))
    expect(tx(two.rx.records)).toBeGreaterThan(0)
    // One Exporting Process: one domain, and no sequence gap or template-less record at the collector.
    expect(new Set(two.rx.records.map((r) => r.odid))).toEqual(new Set([77]))
    expect(two.rx.records.every((r) => !r.deferred)).toBe(true)
    const st = two.svc.status()
    expect(st.packets).toBe(one.svc.status().packets)
    expect(st.flows.created).toBe(one.svc.status().flows.created)
    expect(st.flows.active).toBe(0)
    expect(st.flows.exportedByEndReason).toEqual(one.svc.status().flows.exportedByEndReason)
    // The status counts the datagrams rebuilt for the L7 groups, summed over the workers.
    const rebuilt = { reassembled: 4, timedOut: 0, evicted: 0, dropped: 0 }
    expect(one.svc.status().ipReassembly).toEqual(rebuilt)
    expect(st.ipReassembly).toEqual(rebuilt)
    expect(liveWorkerThreads()).toBe(0)
  })

  it("counts the L7 groups' anomalies in the status, summed over the workers as in one thread", async () => {
    const startUs = Date.now() * 1000
    const one = await meter(1, [[HTTP_BAD_STATUS]], startUs)
    const two = await meter(2, [[HTTP_BAD_STATUS]], startUs)
    // What `flowtel probe --read` prints in its summary's l7 anomalies for this capture.
    expect(one.svc.status().l7Anomalies).toEqual({ 'http.http_bad_status_line': 3 })
    expect(two.svc.status().l7Anomalies).toEqual({ 'http.http_bad_status_line': 3 })
    expect(liveWorkerThreads()).toBe(0)
  })

  it("keeps the L7 groups' anomalies of a retired generation in the status, in one thread and in workers", async () => {
    for (const workers of [1, 2]) {
      const rx = await receiver()
      cleanup.push(() => rx.listener.close())
      const { svc, h } = await started(settings({ collectors: [rx.address], workers, fields: ['http'] }))
      const cap = h.captures.get('fake0')!
      const at = cap.feed(await readPackets([HTTP_BAD_STATUS]), Date.now() * 1000)
      await cap.drained()
      const counted = (): boolean => svc.status().l7Anomalies['http.http_bad_status_line'] === 3
      await waitFor(counted)
      expect((await svc.applySettings({ ...svc.getSettings(), fields: ['l2'] })).ok).toBe(true)
      // An hour later (past any drain deadline) the previous generation is retired with its figures.
      cap.feed(await readPackets([DNS]), at + 3600e6)
      await cap.drained()
      await waitFor(() => svc.status().generationsAlive === 1)
      expect(svc.status().l7Anomalies, `workers: ${workers}`).toEqual({ 'http.http_bad_status_line': 3 })
      await svc.stop()
    }
    expect(liveWorkerThreads()).toBe(0)
  })

  it('applies timeouts, field groups and a collector change live in every worker', async () => {
    const a = await receiver()
    const b = await receiver()
    cleanup.push(
      () => a.listener.close(),
      () => b.listener.close(),
    )
    const { svc, h } = await started(settings({ collectors: [a.address], fields: ['l2'], workers: 2 }))
    const http = await readPackets([HTTP])
    const dns = await readPackets([DNS])
    const cap = h.captures.get('fake0')!
    const base = Date.now() * 1000
    const half = Math.floor(http.length / 2)
    const at = (p: FakePacket): number => base + (p.tsUs - http[0]!.tsUs)
    cap.feed(http.slice(0, half), at(http[0]!))
    await cap.drained()
    const r = await svc.applySettings({
      fields: ['l2', 'tcpext'],
      activeTimeout: 120,
      inactiveTimeout: 10,
      collectors: [b.address],
    })
    expect(r.ok).toBe(true)
    // The HTTP connection still runs in the previous generation of its worker.
    await waitFor(() => svc.status().generationsAlive === 2)
    cap.feed(http.slice(half), at(http[half]!))
    cap.feed(dns, at(http[http.length - 1]!) + 1000)
    await cap.drained()
    await svc.stop()
    const want = (await ipPackets([HTTP])) + (await ipPackets([DNS]))
    await waitFor(() => packetsIn(a.records) + packetsIn(b.records) === want)
    const flows = flowRecords([...a.records, ...b.records])
    const httpFlows = flows.filter((f) => num(f, 'destinationTransportPort') === 80)
    expect(httpFlows).toHaveLength(1)
    expect(has(httpFlows[0]!, 'tcpSynSize')).toBe(false)
    const dnsFlows = flows.filter((f) => num(f, 'destinationTransportPort') === 53)
    expect(dnsFlows.length).toBeGreaterThan(0)
    for (const f of dnsFlows) expect(has(f, 'tcpSynSize') || num(f, 'protocolIdentifier') === 17).toBe(true)
    expect(dnsFlows.every((f) => f.templateId >= 320)).toBe(true)
    // Collector B learnt the templates first; nothing waited for a template there.
    expect(b.records.every((x) => !x.deferred)).toBe(true)
    expect(b.collector.pending.counters['pending_added'] ?? 0).toBe(0)
    expect(svc.getSettings()).toMatchObject({ activeTimeout: 120, inactiveTimeout: 10, workers: 2 })
    expect(liveWorkerThreads()).toBe(0)
  })

  it('sends the application catalogue again at a field-group change that keeps `app`, as one thread does', async () => {
    // One thread sets the new generation's `app` group up, which sends the catalogue; with workers the
    // workers' copies are dropped and the record merger sent it once only (its next round of templates
    // could come as late as the final flush, with no catalogue after it).
    const catalogueRecords = async (workers: number): Promise<number> => {
      const rx = await receiver()
      cleanup.push(() => rx.listener.close())
      const { svc, h } = await started(settings({ collectors: [rx.address], fields: ['l2', 'app'], workers }))
      const http = await readPackets([HTTP])
      const cap = h.captures.get('fake0')!
      const base = Date.now() * 1000
      cap.feed(http, base)
      await cap.drained()
      expect((await svc.applySettings({ ...svc.getSettings(), fields: ['l2', 'app', 'tcpext'] })).ok).toBe(
        true,
      )
      cap.feed(http, base + 10_000_000)
      await cap.drained()
      await svc.stop()
      const want = 2 * (await ipPackets([HTTP]))
      await waitFor(() => packetsIn(rx.records) === want)
      return rx.records.filter((r) => r.isOptions && has(r, 'applicationName')).length
    }
    const one = await catalogueRecords(1)
    expect(one).toBe(2 * CATALOGUE.length)
    expect(await catalogueRecords(2)).toBe(one)
    expect(liveWorkerThreads()).toBe(0)
  })

  it('stops by itself and reports `failed` when a metering worker dies, instead of metering nothing', async () => {
    const rx = await receiver()
    cleanup.push(() => rx.listener.close())
    const h = harness()
    const svc = new ProbeService(h.deps, { meteringFault: { worker: 0, slot: 0 } })
    await svc.start(settings({ collectors: [rx.address], workers: 2 }))
    cleanup.push(() => svc.stop())
    let failedWith: Error | undefined
    void svc.failed.then((e) => (failedWith = e))
    const cap = h.captures.get('fake0')!
    // Packets of many flows, so that worker 0 gets some (both fixtures, several times over).
    let at = Date.now() * 1000
    for (let i = 0; i < 4; i++) at = cap.feed(await readPackets([DNS, HTTP]), at) + 1000
    await waitFor(() => failedWith !== undefined)
    expect(failedWith?.message).toMatch(/metering worker 0 failed: injected fault/)
    await waitFor(() => !svc.running)
    await svc.stop()
    expect(h.logs.some((m) => /^metering failed: .*injected fault.*; stopping the probe$/.test(m))).toBe(true)
    expect(h.logs.some((m) => m.startsWith('capture on fake0 failed'))).toBe(false)
    expect(h.logs).toContain(
      'probe: stopped after a metering failure; flows the failed metering held are lost',
    )
    expect(liveWorkerThreads()).toBe(0)
  })

  it('does not report `failed` on a graceful stop', async () => {
    const rx = await receiver()
    cleanup.push(() => rx.listener.close())
    const { svc } = await started(settings({ collectors: [rx.address], workers: 2 }))
    let failedWith: Error | undefined
    void svc.failed.then((e) => (failedWith = e))
    await svc.stop()
    await new Promise((r) => setTimeout(r, 50))
    expect(failedWith).toBeUndefined()
  })
})
