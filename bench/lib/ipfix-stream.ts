// A recorded IPFIX stream for the ingest benchmark (RFC 7011): one template (the probe's default biflow
// shape: times, IPv4 5-tuple, counters both ways, flags, VLAN, interface; 73-octet records) and data
// records varied by number, packed into datagrams of at most 1400 octets with the template first and
// repeated every 1000 datagrams (UDP template refresh). Built once in memory and replayed to each receiver.

const TEMPLATE_ID = 256
const REVERSE_PEN = 29305 // RFC 5103 reverse elements

/** [element id, length, PEN or 0] in record order. */
const FIELDS: ReadonlyArray<readonly [number, number, number]> = [
  [152, 8, 0], // flowStartMilliseconds
  [153, 8, 0], // flowEndMilliseconds
  [8, 4, 0], // sourceIPv4Address
  [12, 4, 0], // destinationIPv4Address
  [7, 2, 0], // sourceTransportPort
  [11, 2, 0], // destinationTransportPort
  [4, 1, 0], // protocolIdentifier
  [60, 1, 0], // ipVersion
  [1, 8, 0], // octetDeltaCount
  [2, 8, 0], // packetDeltaCount
  [1, 8, REVERSE_PEN], // reverseOctetDeltaCount
  [2, 8, REVERSE_PEN], // reversePacketDeltaCount
  [6, 2, 0], // tcpControlBits
  [6, 2, REVERSE_PEN], // reverseTcpControlBits
  [136, 1, 0], // flowEndReason
  [239, 1, 0], // biflowDirection
  [58, 2, 0], // vlanId
  [10, 4, 0], // ingressInterface
]
export const RECORD_LENGTH = FIELDS.reduce((n, [, len]) => n + len, 0)
const MAX_DATAGRAM = 1400
const HEADER = 16

function templateSet(): Buffer {
  const specs = FIELDS.map(([, , pen]) => (pen !== 0 ? 8 : 4)).reduce((a, b) => a + b, 0)
  const b = Buffer.alloc(4 + 4 + specs)
  b.writeUInt16BE(2, 0)
  b.writeUInt16BE(b.length, 2)
  b.writeUInt16BE(TEMPLATE_ID, 4)
  b.writeUInt16BE(FIELDS.length, 6)
  let p = 8
  for (const [id, len, pen] of FIELDS) {
    b.writeUInt16BE(pen !== 0 ? id | 0x8000 : id, p)
    b.writeUInt16BE(len, p + 2)
    p += 4
    if (pen !== 0) {
      b.writeUInt32BE(pen, p)
      p += 4
    }
  }
  return b
}

/** Writes flow number i at b[p] (varied values; IPv4 sources over 10.0.0.0/12, 16 destination ports). */
function writeRecord(b: Buffer, p: number, i: number, baseMs: number): void {
  const start = baseMs + i
  b.writeBigUInt64BE(BigInt(start), p)
  b.writeBigUInt64BE(BigInt(start + 1500), p + 8)
  b.writeUInt32BE(0x0a000000 + ((i * 2654435761) % 1048576), p + 16)
  b.writeUInt32BE(0xc6336400 + (i % 97), p + 20)
  b.writeUInt16BE(1024 + (i % 50000), p + 24)
  b.writeUInt16BE([443, 80, 53, 22][i % 4] ?? 443, p + 26)
  b.writeUInt8(i % 4 === 2 ? 17 : 6, p + 28)
  b.writeUInt8(4, p + 29)
  b.writeBigUInt64BE(BigInt(60 + (i % 9000)), p + 30)
  b.writeBigUInt64BE(BigInt(1 + (i % 40)), p + 38)
  b.writeBigUInt64BE(BigInt(i % 20000), p + 46)
  b.writeBigUInt64BE(BigInt(i % 30), p + 54)
  b.writeUInt16BE(0x1b, p + 62)
  b.writeUInt16BE(0x1a, p + 64)
  b.writeUInt8(3, p + 66)
  b.writeUInt8(1, p + 67)
  b.writeUInt16BE(i % 8, p + 68)
  b.writeUInt32BE(1, p + 70)
}

export interface IpfixStream {
  readonly datagrams: Buffer[]
  /** Data records in each datagram (0 for a template-only datagram). */
  readonly records: number[]
  readonly totalRecords: number
}

/** `flows` data records as IPFIX datagrams, observation domain 1, export time now. */
export function buildIpfixStream(flows: number, baseMs = Date.now() - 60_000): IpfixStream {
  const tpl = templateSet()
  const perDatagram = Math.floor((MAX_DATAGRAM - HEADER - tpl.length - 4) / RECORD_LENGTH)
  const datagrams: Buffer[] = []
  const records: number[] = []
  const exportTime = Math.floor(Date.now() / 1000)
  let i = 0
  while (i < flows) {
    const withTemplate = datagrams.length % 1000 === 0
    const n = Math.min(perDatagram, flows - i)
    const dataLen = 4 + n * RECORD_LENGTH
    const b = Buffer.alloc(HEADER + (withTemplate ? tpl.length : 0) + dataLen)
    b.writeUInt16BE(10, 0)
    b.writeUInt16BE(b.length, 2)
    b.writeUInt32BE(exportTime, 4)
    b.writeUInt32BE(i, 8) // sequence: data records sent before this message
    b.writeUInt32BE(1, 12)
    let p = HEADER
    if (withTemplate) {
      tpl.copy(b, p)
      p += tpl.length
    }
    b.writeUInt16BE(TEMPLATE_ID, p)
    b.writeUInt16BE(dataLen, p + 2)
    p += 4
    for (let k = 0; k < n; k++, p += RECORD_LENGTH) writeRecord(b, p, i + k, baseMs)
    datagrams.push(b)
    records.push(n)
    i += n
  }
  return { datagrams, records, totalRecords: flows }
}
