// Interop: ipfixDump (libfixbuf, reference/standards.md §6.2) decodes the Flowmon (PEN 39499) and Flowtel
// enterprise elements of the npm/tcpext/arp groups by name, (1) given their definitions in an IANA-registry
// style XML file (--element-file, as libfixbuf reads cert.xml) generated from our tables, and (2) learning
// them from the RFC 5610 Information Element Type Records the exporter sends with the templates (--rfc5610).
// Skipped when ipfixDump is absent.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FLOWMON_ELEMENTS, FLOWMON_PEN } from '../../src/ipfix/enterprise/flowmon.js'
import { FLOWTEL_ELEMENTS, FLOWTEL_PEN } from '../../src/ipfix/enterprise/flowtel.js'
import { FileTransport } from '../../src/ipfix/transport-file.js'
import { DEFAULT_PROBE_OPTIONS, runProbe } from '../../src/probe/probe.js'
import { ETH, LINKTYPE, TCP, arp, eth, hex, ipv4, pcapFile, tcp } from '../helpers/packet-builder.js'

const hasIpfixDump = spawnSync('ipfixDump', ['--version']).error === undefined
const dir = mkdtempSync(path.join(tmpdir(), 'flowtel-npm-interop-'))
afterAll(() => {
  if (process.env.KEEP !== '1') rmSync(dir, { recursive: true, force: true })
})

const USED = [
  'npnRoundTripTime',
  'npmServerResponseTime',
  'npmTcpRetransmission',
  'npmJitterAvg',
  'npmDelayMax',
  'tcpSynTtl',
  'tcpSynSize',
  'arpHrd',
  'arpOp',
  'flowtelTcpRttServer',
  'flowtelTcpRttClient',
  'flowtelSrtCount',
  'flowtelReverseRetransOctets',
  'flowtelTcpMss',
  'flowtelTcpSackPermitted',
  'flowtelArpSenderIPv4',
  'flowtelArpTargetMac',
]

function elementXml(): string {
  const rec = (pen: number, id: number, name: string, type: string): string =>
    `<record><name>${name}</name><dataType>${type}</dataType><cert:enterpriseId>${pen}</cert:enterpriseId><elementId>${id}</elementId><status>current</status></record>`
  const rows = [
    ...FLOWMON_ELEMENTS.filter(([, name]) => /^(npm|npn|tcpSyn|arp)/.test(name)).map(([id, name, type]) =>
      rec(FLOWMON_PEN, id, name, type),
    ),
    ...FLOWTEL_ELEMENTS.map(([id, name, type]) => rec(FLOWTEL_PEN, id, name, type)),
  ]
  return `<?xml version="1.0" encoding="UTF-8"?>
<registry xmlns="http://www.iana.org/assignments" xmlns:cert="http://www.cert.org/ipfix" id="flowtel_ipfix">
<registry id="flowtel-information-elements">
${rows.join('\n')}
</registry>
</registry>
`
}

let exportFile = ''

beforeAll(async () => {
  if (!hasIpfixDump) return
  const C = '10.0.0.1'
  const S = '10.0.0.2'
  const t = (up: boolean, o: Parameters<typeof tcp>[0]): Uint8Array =>
    eth({}, ipv4({ src: up ? C : S, dst: up ? S : C }, tcp(o)))
  const packets = [
    t(true, { sport: 40000, dport: 80, seq: 1, flags: TCP.SYN, options: hex('02 04 05 b4 04 02') }),
    t(false, { sport: 80, dport: 40000, seq: 9, ack: 2, flags: TCP.SYN | TCP.ACK }),
    t(true, { sport: 40000, dport: 80, seq: 2, ack: 10 }),
    t(true, { sport: 40000, dport: 80, seq: 2, ack: 10, payload: new Uint8Array(20) }),
    t(false, { sport: 80, dport: 40000, seq: 10, ack: 22, payload: new Uint8Array(30) }),
    eth({ dst: 'ff:ff:ff:ff:ff:ff', type: ETH.ARP }, arp()),
  ]
  const pcap = path.join(dir, 'in.pcap')
  writeFileSync(
    pcap,
    pcapFile(
      LINKTYPE.ETHERNET,
      packets.map((data, i) => ({ data, tsUs: 1_700_000_000_000_000 + i * 1500 })),
    ),
  )
  exportFile = path.join(dir, 'out.ipfix')
  const ft = new FileTransport(exportFile)
  await runProbe({
    ...DEFAULT_PROBE_OPTIONS,
    destinations: [],
    reads: [pcap],
    // The groups whose Flowmon/Flowtel elements this file lists (the L7 groups have their own elements).
    fields: ['core', 'l2', 'tunnel', 'npm', 'tcpext', 'arp'],
    extraTransports: [ft],
  })
})

function dump(args: string[]): string {
  const r = spawnSync('ipfixDump', ['--in', exportFile, ...args], { encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  return r.stdout
}

describe.skipIf(!hasIpfixDump)('ipfixDump decodes the Flowmon and Flowtel elements', () => {
  it('by name with --element-file', () => {
    const xml = path.join(dir, 'flowtel-elements.xml')
    writeFileSync(xml, elementXml())
    const out = dump(['--element-file', xml])
    for (const name of USED) expect(out, name).toContain(name)
    expect(out).not.toMatch(new RegExp(`ent: (${FLOWMON_PEN}|${FLOWTEL_PEN}) .*_alienInformationElement`))
  })

  it('by name from our RFC 5610 records with --rfc5610', () => {
    const out = dump(['--rfc5610'])
    for (const name of USED) expect(out, name).toContain(name)
    expect(out).not.toMatch(new RegExp(`ent: (${FLOWMON_PEN}|${FLOWTEL_PEN}) .*_alienInformationElement`))
  })

  it('without either, shows them as unknown enterprise elements (the records still parse)', () => {
    const out = dump(['--templates'])
    expect(out).toMatch(new RegExp(`ent: ${FLOWTEL_PEN} .*_alienInformationElement`))
    expect(out).toMatch(new RegExp(`ent: ${FLOWMON_PEN} .*_alienInformationElement`))
  })
})
