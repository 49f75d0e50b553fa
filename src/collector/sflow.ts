/**
 * sFlow version 5 datagrams (sflow.org sflow_version_5.txt): not decoded yet. The datagram is recognised
 * (version 5 in a 32-bit field, which NetFlow v5's 16-bit version field never is with a non-zero count) and
 * counted, so a mixed stream on one port does not count it as malformed NetFlow.
 */
import type { DecodeOutput, FlowCollector } from './decode-message.js'
import type { TransportSession } from './session.js'

export function decodeSflow(
  col: FlowCollector,
  bytes: Uint8Array,
  sess: TransportSession,
  out: DecodeOutput,
): void {
  void sess
  void out
  col.count('sflow_datagrams')
  if (bytes.byteLength < 28) col.count('sflow_short_header')
}
