/**
 * Child for test/live/udp-send-buffer.test.ts, run inside a namespace: sends COUNT messages of SIZE octets
 * through the IPFIX/UDP transport to ADDRESS:PORT as fast as the socket takes them, then prints one JSON
 * line with the transport's counters and which socket it used.
 *
 * node --import tsx test/helpers/udp-burst-child.ts ADDRESS PORT COUNT SIZE native|dgram
 */
import { UdpTransport } from '../../src/ipfix/transport-udp.js'

const [address = '', port = '0', count = '0', size = '0', kind = 'native'] = process.argv.slice(2)
const t = new UdpTransport(address, Number(port), { native: kind === 'native' })
await t.open()
const message = new Uint8Array(Number(size)).fill(0x5a)
for (let i = 0; i < Number(count); i++) t.send([message])
await t.close()
console.log(JSON.stringify({ native: t.usesNativeSocket, ...t.stats }))
