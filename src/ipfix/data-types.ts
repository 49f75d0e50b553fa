/**
 * The IPFIX abstract data types (RFC 7012 §3.1, RFC 6313 §4.5), with no dependencies so generators can use them.
 * In the order of IANA's "IPFIX Information Element Data Types" codes: the index is the RFC 5610 §3.1 code.
 */

export const IE_DATA_TYPES = [
  'octetArray',
  'unsigned8',
  'unsigned16',
  'unsigned32',
  'unsigned64',
  'signed8',
  'signed16',
  'signed32',
  'signed64',
  'float32',
  'float64',
  'boolean',
  'macAddress',
  'string',
  'dateTimeSeconds',
  'dateTimeMilliseconds',
  'dateTimeMicroseconds',
  'dateTimeNanoseconds',
  'ipv4Address',
  'ipv6Address',
  'basicList',
  'subTemplateList',
  'subTemplateMultiList',
] as const

export type IeDataType = (typeof IE_DATA_TYPES)[number]
