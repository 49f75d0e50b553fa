// End to end: a ClientHello whose lists are longer than its `tls` record keeps (128 entries a list, fewer
// when a hostile hello leaves the record no room) is exported with the lists cut, and the cut is counted
// (`l7.tls.anomalies.tls_record_list_cut`, printed with the summary) so the operator knows the record's
// list is incomplete. An ordinary hello counts nothing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { formatSummary } from '../src/cli/summary.js'
import { LINKTYPE, pcapFile } from './helpers/packet-builder.js'
import { probeRecords } from './helpers/probe-run.js'
import { tcpConversation } from './helpers/tcp-conversation.js'
import { handshake, manySuitesHello, record } from './helpers/tls-bytes.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-tls-cut-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A TLS 1.2 ClientHello record (SNI cut.example) offering `suites` cipher suites. */
function clientHello(suites: number): Uint8Array {
  return record(handshake(1, manySuitesHello(suites, 'cut.example')))
}

async function run(suites: number, name: string): Promise<Awaited<ReturnType<typeof probeRecords>>> {
  const frames = tcpConversation({ cport: 40500, sport: 443 }, [{ up: true, data: clientHello(suites) }])
  const file = join(dir, name)
  const T0 = 1_700_000_000_000_000
  writeFileSync(
    file,
    pcapFile(
      LINKTYPE.ETHERNET,
      frames.map((data, i) => ({ data, tsUs: T0 + i * 100 })),
    ),
  )
  return probeRecords([file], { fields: ['core', 'tls'] })
}

describe('tls record list cut', () => {
  it('counts tls_record_list_cut when a hello list is longer than the record keeps', async () => {
    const { records, summary } = await run(200, 'many-suites.pcap')
    const tls = records.filter((r) => r.tlsSni === 'cut.example')
    expect(tls.length).toBe(1)
    // 128 two-octet suites of the 200 offered (the parser kept all 200: no tls_list_cut).
    const suites = tls[0]!.tlsCipherSuites
    expect(typeof suites === 'string' ? suites.length / 2 : (suites as unknown[]).length).toBe(256)
    expect(summary.l7?.['tls']?.anomalies).toEqual({ tls_record_list_cut: 1 })
    expect(formatSummary(summary)).toMatch(/l7 anomalies:\n {2}tls\.tls_record_list_cut {2}1\n/)
  })

  it('counts nothing for an ordinary hello', async () => {
    const { summary } = await run(128, 'ordinary.pcap')
    expect(summary.l7?.['tls']?.anomalies).toEqual({})
    expect(formatSummary(summary)).toContain('l7 anomalies: none')
  })
})
