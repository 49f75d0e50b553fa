// JsonTransport (RFC 7011 messages in, JSON lines out) in a thread that never built a template: the probe's
// main thread under --workers, where the worker threads register the enterprise elements for their own
// templates. Kept in its own file so no other test has registered them first (vitest isolates files).
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { FLOWTEL_ELEMENTS, FLOWTEL_PEN } from './enterprise/flowtel.js'
import { JsonTransport } from './transport-json.js'

/** One IPFIX message: a template (id 256) of sourceIPv4Address and one Flowtel unsigned32, and one record. */
function message(flowtelId: number): Uint8Array {
  const b = new Uint8Array(16 + 20 + 12)
  const v = new DataView(b.buffer)
  v.setUint16(0, 10) // version
  v.setUint16(2, b.byteLength)
  v.setUint32(4, 1_700_000_000) // export time
  // Template set: id 2, one template with two fields, the second enterprise-specific.
  v.setUint16(16, 2)
  v.setUint16(18, 20)
  v.setUint16(20, 256)
  v.setUint16(22, 2)
  v.setUint16(24, 8) // sourceIPv4Address
  v.setUint16(26, 4)
  v.setUint16(28, 0x8000 | flowtelId)
  v.setUint16(30, 4)
  v.setUint32(32, FLOWTEL_PEN)
  // Data set of template 256.
  v.setUint16(36, 256)
  v.setUint16(38, 12)
  v.setUint32(40, 0x0a000001)
  v.setUint32(44, 1234)
  return b
}

describe('JSON transport in a thread without templates of its own', () => {
  it('names the Flowtel elements (as with one thread), not PEN.id', async () => {
    const [id, name, type] = FLOWTEL_ELEMENTS[0]!
    expect(type).toBe('unsigned32')
    const out = new PassThrough()
    let text = ''
    out.on('data', (c: Buffer) => (text += c.toString()))
    const t = new JsonTransport('mem', { stream: out })
    await t.open()
    t.send([message(id)])
    await t.close()
    expect(JSON.parse(text)).toEqual({ sourceIPv4Address: '10.0.0.1', [name]: 1234 })
  })
})
