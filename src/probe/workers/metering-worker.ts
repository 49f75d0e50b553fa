/**
 * Entry point of one metering worker thread (node:worker_threads): reads slots from its packet ring
 * (packet-ring.ts), meters them with its own MeteringPipeline (decoder, fragment cache, flow cache), and
 * relays the IPFIX messages its exporter writes to the main thread (record-relay.ts), which exports them as
 * one Exporting Process.
 *
 * Messages to the main thread (WorkerMessage): `out` after every slot (relayed messages, counters), `warning`
 * once per unsupported link type, `final` after Finish (the summary parts). An exception is not caught here:
 * the thread ends with an `error` event that the pool reports.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { PacketBatch } from '../../capture/batch.js'
import { EndReason } from '../../flow/feature.js'
import { IpfixExporter } from '../../ipfix/exporter.js'
import { MeteringPipeline, type PipelineOptions } from '../pipeline.js'
import { RingReader, SlotCommand, type RingMemory } from './packet-ring.js'
import { RelayTransport, WORKER_EXPORTER_OPTIONS } from './record-relay.js'
import type { WorkerCounters, WorkerFinal, WorkerInit, WorkerMessage } from './worker-protocol.js'

function post(m: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(m, transfer)
}

function run(init: WorkerInit): void {
  const ring: RingMemory = init.ring
  const reader = new RingReader(ring)
  const relay = new RelayTransport()
  const opts: PipelineOptions = {
    ...init.pipeline,
    onWarning: (message) => post({ type: 'warning', worker: init.index, message }),
  }
  const pipeline = new MeteringPipeline(
    opts,
    (hooks) => new IpfixExporter({ ...WORKER_EXPORTER_OPTIONS, ...hooks }, [relay]),
  )
  const exporter = pipeline.exporter
  // A private copy of each slot: the slot goes back to the dispatcher before the metering starts.
  const batch = new PacketBatch(ring.packetCapacity)
  batch.setBuffer(new Uint8Array(ring.byteCapacity))
  let slots = 0

  const counters = (): WorkerCounters => {
    const c = pipeline.counters
    return {
      packets: c.packets,
      nonIp: c.nonIp,
      malformed: c.malformed,
      unsupported: c.unsupported,
      ignoredOctets: c.ignoredOctets,
      firstIgnoredUs: c.firstIgnoredUs,
      lastIgnoredUs: c.lastIgnoredUs,
      droppedRecords: exporter.stats.droppedRecords,
    }
  }
  const sendOut = (): void => {
    exporter.flush()
    const bytes = relay.take()
    post(
      { type: 'out', worker: init.index, counters: counters(), ...(bytes ? { bytes } : {}) },
      bytes ? [bytes] : [],
    )
  }

  for (;;) {
    const slot = reader.next()
    const command = slot.command
    if (command === SlotCommand.Packets) {
      const n = slot.packets
      batch.count = n
      batch.offset.set(slot.offset.subarray(0, n))
      batch.caplen.set(slot.caplen.subarray(0, n))
      batch.origlen.set(slot.origlen.subarray(0, n))
      batch.tsUs.set(slot.tsUs.subarray(0, n))
      batch.linkType.set(slot.linkType.subarray(0, n))
      batch.ifIndex.set(slot.ifIndex.subarray(0, n))
      batch.buf.set(slot.data.subarray(0, slot.dataBytes))
      const advanceUs = slot.advanceUs
      reader.release()
      if (init.faultAtSlot !== undefined && slots === init.faultAtSlot)
        throw new Error(`injected fault in metering worker ${init.index} (test)`)
      slots++
      pipeline.processBatch(batch)
      pipeline.advanceTo(advanceUs)
      sendOut()
    } else if (command === SlotCommand.SetTimeouts) {
      const [a, i, l] = [slot.arg(0), slot.arg(1), slot.arg(2)]
      reader.release()
      pipeline.setTimeouts({
        activeTimeout: a,
        inactiveTimeout: i,
        ...(Number.isNaN(l) ? {} : { tcpEndLinger: l }),
      })
    } else if (command === SlotCommand.Finish) {
      const advanceUs = slot.advanceUs
      reader.release()
      pipeline.advanceTo(advanceUs)
      pipeline.flush(EndReason.ForcedEnd)
      sendOut()
      const l7 = pipeline.l7Summary()
      const final: WorkerFinal = {
        type: 'final',
        worker: init.index,
        counters: counters(),
        ipPackets: pipeline.core.packets,
        ipBytes: pipeline.core.octets,
        flows: pipeline.cache.counters.flowsCreated,
        peakActiveFlows: pipeline.cache.counters.peakActiveFlows,
        endReasons: pipeline.endReasons(),
        anomalies: pipeline.anomalies.toObject(),
        ...(l7 !== undefined ? { l7 } : {}),
      }
      post(final)
      return
    } else {
      reader.release()
      throw new Error(`metering worker ${init.index}: unknown slot command ${String(command)}`)
    }
  }
}

run(workerData as WorkerInit)
