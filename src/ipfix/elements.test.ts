// The IE table: generated IANA rows (RFC 7012 §4), reverse elements (RFC 5103 §6.1), registration, and a check
// that every element our templates use exists in the IANA table (ipfixprobe checkIpfixElements idea).
import { describe, expect, it } from 'vitest'
import {
  REVERSE_PEN,
  defaultLength,
  elementByName,
  isLegalLength,
  lookupElement,
  registerElements,
} from './elements.js'
import { IpfixExporter } from './exporter.js'
import { IANA_ELEMENTS } from './iana-elements.js'
import { MemoryTransport } from './testing.js'

/** Elements the probe's templates and the exporter's options templates use (reference/standards.md §3.2, §1.7). */
const USED = [
  'octetDeltaCount',
  'packetDeltaCount',
  'protocolIdentifier',
  'ipClassOfService',
  'tcpControlBits',
  'sourceTransportPort',
  'destinationTransportPort',
  'sourceIPv4Address',
  'destinationIPv4Address',
  'sourceIPv6Address',
  'destinationIPv6Address',
  'ingressInterface',
  'egressInterface',
  'icmpTypeCodeIPv4',
  'icmpTypeCodeIPv6',
  'sourceMacAddress',
  'destinationMacAddress',
  'vlanId',
  'dot1qVlanId',
  'ipVersion',
  'flowDirection',
  'flowEndReason',
  'flowId',
  'flowStartMilliseconds',
  'flowEndMilliseconds',
  'ipTTL',
  'biflowDirection',
  'ethernetType',
  'applicationId',
  'applicationName',
  'paddingOctets',
  'observationDomainId',
  'exportingProcessId',
  'exportedMessageTotalCount',
  'exportedFlowRecordTotalCount',
  'exportedOctetTotalCount',
  'notSentFlowTotalCount',
  'notSentPacketTotalCount',
  'notSentOctetTotalCount',
  'ignoredPacketTotalCount',
  'ignoredOctetTotalCount',
  'observationTimeMilliseconds',
]

describe('IANA element table', () => {
  it('is sorted, unique and has the registry’s well-known rows', () => {
    const ids = IANA_ELEMENTS.map((r) => r[0])
    expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b))
    expect(IANA_ELEMENTS.length).toBeGreaterThan(450)
    expect(lookupElement(0, 1)).toEqual({
      pen: 0,
      id: 1,
      name: 'octetDeltaCount',
      type: 'unsigned64',
      semantics: 'deltaCounter',
      units: 'octets',
    })
    expect(lookupElement(0, 6)?.type).toBe('unsigned16') // RFC 7125
    expect(lookupElement(0, 152)?.type).toBe('dateTimeMilliseconds')
  })

  it('contains every element our templates use', () => {
    const iana = new Set(IANA_ELEMENTS.map((r) => r[1]))
    expect(USED.filter((n) => !iana.has(n))).toEqual([])
    // The exporter's own statistics templates are built from the same table.
    expect(
      () =>
        new IpfixExporter(
          {
            observationDomainId: 1,
            maxMessageSize: 1472,
            templateRefreshSeconds: 600,
            templateRefreshMessages: 0,
            statsIntervalSeconds: 60,
            now: () => 0,
            meteringStats: () => ({
              ignoredPackets: 0,
              ignoredOctets: 0,
              firstIgnoredMs: 0,
              lastIgnoredMs: 0,
            }),
          },
          [new MemoryTransport()],
        ),
    ).not.toThrow()
  })
})

describe('reverse and registered elements', () => {
  it('maps PEN 29305 to reverse IANA elements (RFC 5103), except non-reversible ones', () => {
    expect(lookupElement(REVERSE_PEN, 1)?.name).toBe('reverseOctetDeltaCount')
    expect(elementByName('reverseTcpControlBits')).toMatchObject({
      pen: REVERSE_PEN,
      id: 6,
      type: 'unsigned16',
    })
    expect(lookupElement(REVERSE_PEN, 148)).toBeUndefined() // flowId
    expect(lookupElement(REVERSE_PEN, 239)).toBeUndefined() // biflowDirection
    expect(() => elementByName('reverseBiflowDirection')).toThrow(/not reversible/)
    expect(() => elementByName('fooBar')).toThrow(/unknown information element: fooBar/)
  })

  it('registers enterprise elements and refuses IANA ids under another name', () => {
    registerElements([{ pen: 32473, id: 500, name: 'flowtelExampleThing', type: 'string' }])
    expect(elementByName('flowtelExampleThing')).toMatchObject({ pen: 32473, id: 500 })
    expect(lookupElement(32473, 500)?.type).toBe('string')
    expect(() => registerElements([{ pen: 0, id: 1, name: 'bytes', type: 'unsigned64' }])).toThrow(/already/)
    expect(() => registerElements([{ pen: 1, id: 0, name: 'zero', type: 'unsigned8' }])).toThrow(/1\.\.32767/)
  })

  it('knows the length rules (RFC 7011 §6.2)', () => {
    expect(defaultLength('ipv6Address')).toBe(16)
    expect(defaultLength('string')).toBe(65535)
    expect(isLegalLength('unsigned64', 3)).toBe(true)
    expect(isLegalLength('float64', 4)).toBe(true)
    expect(isLegalLength('float64', 5)).toBe(false)
    expect(isLegalLength('unsigned8', 2)).toBe(false)
    expect(isLegalLength('macAddress', 4)).toBe(false)
    expect(isLegalLength('boolean', 0)).toBe(false)
    expect(isLegalLength('boolean', 0, true)).toBe(true)
  })
})
