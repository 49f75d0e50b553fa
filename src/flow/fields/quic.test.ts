// The `quic` field group, and DTLS in the `tls` group, through the whole probe on real captures (see
// test/fixtures/pcap/quic/SOURCES.md and .../dtls/SOURCES.md): one record per handshake, linked to its flow,
// its fields as a collector decodes them from the IPFIX stream (Flowtel QUIC elements, then the TLS ones),
// the flow record's transaction count, and groups that stay independent (TLS over TCP records unchanged by
// the QUIC group, no QUIC record without it).
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { probeRecords, type JsonRecord } from '../../../test/helpers/probe-run.js'
import type { QuicTx } from '../../l7/quic.js'
import { newTlsTx } from '../../l7/tls.js'
import { withL7Hub } from './l7-hub.js'
import { QuicFields } from './quic.js'

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/pcap')
const ZEEK_QUIC = join(FIXTURES, 'quic/zeek-quic-curl-8.1.2-dev-http3-www-google-de.pcap')
const WEBRTC = join(FIXTURES, 'dtls/zeek-tls-webrtc-stun.pcap')

const isQuic = (r: JsonRecord): boolean => 'flowtelQuicVersion' in r
const isTls = (r: JsonRecord): boolean => 'tlsSni' in r && !isQuic(r)

describe('quic field group', () => {
  it('exports the handshake of the Zeek capture as quic.log and ssl.log show it', async () => {
    const { records, summary } = await probeRecords([ZEEK_QUIC], { fields: ['core', 'quic'] })
    const quic = records.filter(isQuic)
    expect(quic).toHaveLength(1)
    expect(quic[0]).toMatchObject({
      sourceIPv4Address: '172.17.0.2',
      sourceTransportPort: 34347,
      destinationIPv4Address: '64.233.166.94',
      destinationTransportPort: 443,
      protocolIdentifier: 17,
      flowtelQuicVersion: 1,
      flowtelQuicDcid: '815d62c70884f4b51e8ccadd5beed372',
      flowtelQuicScid: 'e5ec6b26584229be98a164349ae910351c40d10b',
      flowtelQuicServerScid: 'c15d62c70884f4b5',
      tlsSni: 'www.google.de',
      flowtelTlsAlpnOffered: 'h3,h3-29,h3-28,h3-27',
      tlsServerVersion: 0x0304,
      tlsCipherSuite: 0x1301,
      tlsSetupTime: 40_547,
    })
    expect(String(quic[0]!.flowtelTlsJa4)).toMatch(/^q13d/)
    // The flow record counts its QUIC record; the other flow records count none.
    const flows = records.filter((r) => 'flowtelQuicTransactions' in r)
    const counted = flows.filter((r) => r.sourceTransportPort === 34347 && r.protocolIdentifier === 17)
    expect(counted.map((r) => r.flowtelQuicTransactions)).toEqual([1])
    expect(flows.reduce((n, r) => n + Number(r.flowtelQuicTransactions), 0)).toBe(1)
    const s = (summary as unknown as { l7?: Record<string, { transactions: number; anomalies: object }> }).l7
    expect(s?.quic?.transactions).toBe(1)
    expect(s?.quic?.anomalies).toEqual({})
  })

  it('is independent of the tls group: TLS records stay as they are, no QUIC record without the group', async () => {
    const tlsCapture = join(FIXTURES, 'app/arkime-tls13.pcap')
    const tlsOnly = (await probeRecords([tlsCapture, ZEEK_QUIC], { fields: ['core', 'tls'] })).records
    const both = (await probeRecords([tlsCapture, ZEEK_QUIC], { fields: ['core', 'tls', 'quic'] })).records
    expect(tlsOnly.filter(isQuic)).toEqual([])
    expect(both.filter(isTls)).toEqual(tlsOnly.filter(isTls))
    expect(both.filter(isQuic)).toHaveLength(1)
  })
})

describe('DTLS in the tls field group', () => {
  it('exports the WebRTC DTLS handshake as Zeek ssl.log shows it, keyed by the flow (initiator first)', async () => {
    const { records } = await probeRecords([WEBRTC], { fields: ['core', 'tls'] })
    const tls = records.filter(isTls)
    expect(tls).toHaveLength(1)
    expect(tls[0]).toMatchObject({
      sourceIPv4Address: '192.168.6.82',
      sourceTransportPort: 51462,
      destinationIPv4Address: '74.201.205.9',
      destinationTransportPort: 43044,
      protocolIdentifier: 17,
      tlsServerVersion: 0xfeff, // DTLSv10
      tlsCipherSuite: 0xc00a, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
      tlsSubjectCn: 'a',
      flowtelTlsSubject: 'CN=a',
      flowtelTlsCertSha256: '968126882d68eb80b03392edb9cce7260eec15a04b206ddfb5231449b5aaaa2f',
    })
    expect(String(tls[0]!.flowtelTlsJa4)).toMatch(/^dd1i/)
  })

  it('counts tls_record_list_cut when a hello list is longer than the record keeps', () => {
    class Fitter extends QuicFields {
      fit(tx: QuicTx, room: number): void {
        this.fitTx(tx, room)
        this.doneTx()
      }
    }
    const g = new Fitter()
    withL7Hub([g])
    const tx = (suites: number): QuicTx => ({
      ...newTlsTx('q'),
      quicVersion: 1,
      dcid: new Uint8Array(8),
      scid: new Uint8Array(8),
      serverScid: new Uint8Array(0),
      cipherSuites: Array.from({ length: suites }, (_, i) => 0x1000 + i),
    })
    g.fit(tx(128), 1400)
    expect(g.summary().anomalies).toEqual({})
    g.fit(tx(129), 1400)
    expect(g.summary().anomalies).toEqual({ tls_record_list_cut: 1 })
  })
})
