// RFC 6313 basicList decoding from hand-annotated bytes, incl. the standards §5.3 #37/#38 loop guards.
import { describe, expect, it } from 'vitest'
import { hex } from '../ipfix/testing.js'
import { basicListToJson } from './structured.js'

describe('basicList (RFC 6313 §4.5.3)', () => {
  it('decodes fixed-length and variable-length elements', () => {
    const counts: string[] = []
    const ports = hex('03  000b 0002  0050 01bb 0035') // allOf, destinationTransportPort, 2 octets each
    expect(basicListToJson(ports, (n) => counts.push(n))).toEqual({
      semantic: 'allOf',
      element: 'destinationTransportPort',
      values: [80, 443, 53],
    })
    const names = hex('04  0052 ffff  03 657468 ff0002 6c6f') // ordered, interfaceName, varlen "eth", "lo"
    expect(basicListToJson(names, (n) => counts.push(n))?.values).toEqual(['eth', 'lo'])
    const enterprise = hex('ff  8001 0001 0001e240  aa bb') // undefined semantic, PEN 123456 id 1
    expect(basicListToJson(enterprise, (n) => counts.push(n))).toEqual({
      semantic: 'undefined',
      element: '123456.1',
      values: ['aa', 'bb'],
    })
    expect(counts).toEqual([])
  })

  it('refuses a zero element length with content and overruns (#37, #38)', () => {
    const counts: string[] = []
    expect(basicListToJson(hex('03 000b 0000 0050'), (n) => counts.push(n))).toBeUndefined()
    expect(basicListToJson(hex('03 0052 ffff 09 6574'), (n) => counts.push(n))).toBeUndefined()
    expect(basicListToJson(hex('03 0052 ffff ff00'), (n) => counts.push(n))).toBeUndefined()
    expect(counts).toEqual(['basic_list_zero_length', 'basic_list_overrun', 'basic_list_overrun'])
  })
})
