// Tests for the LINKTYPE_* registry constants and the DLT_* normalizer (draft-ietf-opsawg-pcaplinktype).
import { describe, expect, it } from 'vitest'
import {
  LINKTYPE_ATM_RFC1483,
  LINKTYPE_ETHERNET,
  LINKTYPE_IPV4,
  LINKTYPE_IPV6,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_LINUX_SLL2,
  LINKTYPE_LOOP,
  LINKTYPE_NULL,
  LINKTYPE_PPP,
  LINKTYPE_RAW,
  linkTypeName,
  normalizeLinkType,
} from './link-types.js'

describe('link types', () => {
  it('has the registry values', () => {
    expect([LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_PPP, LINKTYPE_RAW, LINKTYPE_LOOP]).toEqual([
      0, 1, 9, 101, 108,
    ])
    expect([LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2]).toEqual([
      113, 228, 229, 276,
    ])
  })

  it('maps platform DLT_RAW values (12, 14) to LINKTYPE_RAW', () => {
    expect(normalizeLinkType(12)).toBe(LINKTYPE_RAW)
    expect(normalizeLinkType(14)).toBe(LINKTYPE_RAW)
    expect(normalizeLinkType(11)).toBe(LINKTYPE_ATM_RFC1483)
  })

  it('passes registry and unknown values through', () => {
    for (const v of [0, 1, 9, 101, 108, 113, 228, 229, 276, 160, 65535]) expect(normalizeLinkType(v)).toBe(v)
  })

  it('names link types for logs', () => {
    expect(linkTypeName(1)).toBe('ethernet')
    expect(linkTypeName(276)).toBe('linux_sll2')
    expect(linkTypeName(149)).toBe('user2')
    expect(linkTypeName(9999)).toBe('linktype_9999')
  })
})
