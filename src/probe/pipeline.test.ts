import { describe, expect, it } from 'vitest'
import { PacketBatch } from '../capture/batch.js'
import { IpfixExporter } from '../ipfix/exporter.js'
import { MemoryTransport } from '../ipfix/testing.js'
import { eth, ipv4, LINKTYPE, PROTO, udp } from '../../test/helpers/packet-builder.js'
import { MeteringPipeline } from './pipeline.js'

const S = 1e6

function pipelineWith(active: number, inactive: number): MeteringPipeline {
  const mem = new MemoryTransport('mem', true)
  return new MeteringPipeline(
    { activeTimeout: active, inactiveTimeout: inactive, tcpEndLinger: 2, maxFlows: 100 },
    (hooks) =>
      new IpfixExporter(
        {
          observationDomainId: 1,
          maxMessageSize: 1472,
          templateRefreshSeconds: 600,
          templateRefreshMessages: 0,
          statsIntervalSeconds: 0,
          ...hooks,
        },
        [mem],
      ),
  )
}

/** One UDP packet 10.0.0.1:1000 → 10.0.0.2:53 at `tsUs` in a fresh batch. */
function batchAt(tsUs: number): PacketBatch {
  const frame = eth(
    {},
    ipv4({ proto: PROTO.UDP }, udp({ sport: 1000, dport: 53, payload: new Uint8Array(20) })),
  )
  const b = new PacketBatch(4)
  b.setBuffer(frame)
  b.push(0, frame.length, frame.length, tsUs, LINKTYPE.ETHERNET, 3)
  return b
}

describe('MeteringPipeline', () => {
  it('expires an idle flow when time advances without packets (live capture on a quiet link)', () => {
    const p = pipelineWith(300, 30)
    p.processBatch(batchAt(1000 * S))
    expect(p.cache.size).toBe(1)
    p.advanceTo(1029 * S)
    expect(p.cache.size).toBe(1)
    p.advanceTo(1030 * S)
    expect(p.cache.size).toBe(0)
    expect(p.endReasons()).toEqual({ idleTimeout: 1 })
  })

  it('applies shorter timeouts live without dropping the flows it holds', () => {
    const p = pipelineWith(300, 30)
    p.processBatch(batchAt(1000 * S))
    p.advanceTo(1004 * S)
    p.setTimeouts({ activeTimeout: 300, inactiveTimeout: 5 })
    expect(p.cache.size).toBe(1)
    p.advanceTo(1005 * S)
    expect(p.cache.size).toBe(0)
    expect(p.endReasons()).toEqual({ idleTimeout: 1 })
    expect(p.core.packets).toBe(1)
  })

  it('ignores time that goes back', () => {
    const p = pipelineWith(300, 30)
    p.processBatch(batchAt(1000 * S))
    p.advanceTo(999 * S)
    expect(p.nowUs).toBe(1000 * S)
  })
})
