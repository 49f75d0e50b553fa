// Options records → option rows: each kind (interfaces incl. NetFlow v9 scopeInterface, RFC 6759
// applications, VRFs, sampling rates in their RFC 5477 / NetFlow forms, exporter statistics, the rest), and
// the recorder's de-duplication and refresh.
import { describe, expect, it } from 'vitest'
import type { CollectedRecord, DecodeOutput } from '../collector/decode-message.js'
import type { DecodedField } from '../ipfix/decoder.js'
import { OptionsRecorder, optionRows } from './options-rows.js'

const f = (name: string, type: DecodedField['type'], value: DecodedField['value']): DecodedField => ({
  pen: 0,
  id: 0,
  name,
  type,
  value,
})
const opt = (fields: DecodedField[], scopeCount = 1): CollectedRecord => ({
  version: 10,
  exporter: '192.0.2.1',
  exportTime: 0,
  sequence: 0,
  deferred: false,
  odid: 3,
  templateId: 300,
  isOptions: true,
  scopeCount,
  fields,
})
const pick = (r: CollectedRecord): Array<[string, string, string, string, bigint]> =>
  optionRows(r, 5n).map((x) => [x.kind, x.key, x.name, x.description, x.rate])

describe('option rows', () => {
  it('classifies each kind of options record', () => {
    expect(
      pick(
        opt([
          f('ingressInterface', 'unsigned32', 7),
          f('interfaceName', 'string', 'Gi0/0/1'),
          f('interfaceDescription', 'string', 'uplink'),
        ]),
      ),
    ).toEqual([['interface', '7', 'Gi0/0/1', 'uplink', 0n]])
    expect(
      pick(opt([f('scopeInterface', 'unsigned32', 9), f('interfaceName', 'string', 'xe-0/0/0')])),
    ).toEqual([['interface', '9', 'xe-0/0/0', '', 0n]])
    expect(
      pick(
        opt([
          f('applicationId', 'octetArray', Uint8Array.from([13, 0, 0, 42])),
          f('applicationName', 'string', 'YouTube'),
          f('applicationDescription', 'string', 'video'),
        ]),
      ),
    ).toEqual([['application', '0d00002a', 'YouTube', 'video', 0n]])
    expect(
      pick(
        opt([
          f('ingressVRFID', 'unsigned32', 1),
          f('egressVRFID', 'unsigned32', 2),
          f('VRFname', 'string', 'A4'),
        ]),
      ),
    ).toEqual([
      ['vrf', '1', 'A4', '', 0n],
      ['vrf', '2', 'A4', '', 0n],
    ])
    const rate = (fields: DecodedField[]): bigint | undefined =>
      optionRows(opt(fields), 0n).find((r) => r.kind === 'sampling')?.rate
    expect(rate([f('samplingInterval', 'unsigned32', 512)])).toBe(512n)
    expect(rate([f('samplerId', 'unsigned8', 1), f('samplerRandomInterval', 'unsigned32', 1000)])).toBe(1000n)
    expect(
      rate([f('samplingPacketInterval', 'unsigned32', 1), f('samplingPacketSpace', 'unsigned32', 99)]),
    ).toBe(100n)
    expect(rate([f('samplingSize', 'unsigned32', 1), f('samplingPopulation', 'unsigned32', 4096)])).toBe(
      4096n,
    )
    expect(rate([f('samplingProbability', 'float64', 0.001)])).toBe(1000n)
    const nOfN = [f('samplingPacketInterval', 'unsigned32', 1), f('samplingSize', 'unsigned32', 2)]
    nOfN.push(f('samplingPopulation', 'unsigned32', 2000))
    expect(rate(nOfN)).toBe(1n) // systematic count-based reading (interval 1, no space)
    expect(rate([...nOfN, f('selectorAlgorithm', 'unsigned8', 3)])).toBe(1000n) // random n-out-of-N
    expect(rate([f('samplingInterval', 'unsigned32', 0)])).toBeUndefined()
    // A rate that is no integer a column can hold is no rate (it threw, and stopped the collector's store).
    expect(rate([f('samplingProbability', 'float64', 5e-324)])).toBeUndefined() // 1 / p is Infinity
    expect(rate([f('samplingProbability', 'float64', 1e-300)])).toBeUndefined()
    expect(rate([f('samplingInterval', 'unsigned64', 2n ** 64n - 1n)])).toBeUndefined()
    expect(
      pick(
        opt([
          f('selectorId', 'unsigned64', 14n),
          f('samplingPacketInterval', 'unsigned32', 1),
          f('selectorName', 'string', 'sel'),
        ]),
      ),
    ).toEqual([['sampling', '14', 'sel', '', 1n]])
    expect(
      pick(
        opt([f('exportingProcessId', 'unsigned32', 11), f('exportedFlowRecordTotalCount', 'unsigned64', 5n)]),
      ),
    ).toEqual([['stats', '11', '', '', 0n]])
    expect(
      pick(opt([f('templateId', 'unsigned16', 300), f('informationElementId', 'unsigned16', 1)])),
    ).toEqual([['other', 'templateId=300', '', '', 0n]])
    expect(optionRows({ ...opt([]), isOptions: false }, 0n)).toEqual([])
    const row = optionRows(opt([f('samplingInterval', 'unsigned32', 8)]), 5n)[0]
    expect(row).toMatchObject({ exporter: '192.0.2.1', observation_domain: 3, time_received: 5n })
    expect(JSON.parse(row!.data)).toEqual({ samplingInterval: 8 })
  })

  it('stores a fact again only when it changes or the refresh period passed', () => {
    const rec = new OptionsRecorder({ refreshMs: 60_000 })
    const out = (name: string): DecodeOutput => ({
      records: [opt([f('ingressInterface', 'unsigned32', 1), f('interfaceName', 'string', name)])],
      events: [],
    })
    expect(rec.add(out('eth0'), 0)).toBe(1)
    expect(rec.add(out('eth0'), 30_000)).toBe(0)
    expect(rec.add(out('eth1'), 40_000)).toBe(1)
    expect(rec.add(out('eth1'), 90_000)).toBe(0)
    expect(rec.add(out('eth1'), 100_001)).toBe(1)
    expect(rec.take().map((r) => [r.name, r.time_received])).toEqual([
      ['eth0', 0n],
      ['eth1', 40_000_000n],
      ['eth1', 100_001_000n],
    ])
    expect(rec.take()).toEqual([])
    expect(rec.stats).toEqual({ rows: 3, repeats: 2 })
  })
})
