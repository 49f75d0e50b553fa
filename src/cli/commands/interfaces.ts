/**
 * `flowtel interfaces`: the network interfaces of this host (its network namespace) with their OS index
 * (what IPFIX ingressInterface carries), addresses, state and whether the probe may monitor them (the seed
 * rule: only interfaces with an IP address). `--check NAME...` exits non-zero naming each interface that
 * cannot be monitored.
 */
import { Command } from 'commander'
import { checkMonitorable, listInterfaces, type NetInterface } from '../../capture/interfaces.js'
import { pcapAddonAvailable, loadPcapAddon } from '../../capture/pcap-addon.js'

export function formatInterfaces(list: readonly NetInterface[]): string {
  const rows = list.map((i) => [
    String(i.ifIndex),
    i.name,
    i.up === null ? '?' : i.up ? 'up' : 'down',
    i.vlan === null ? '' : `${i.vlan.parent}.${i.vlan.id}`,
    i.monitorable ? 'yes' : 'no',
    i.addresses.map((a) => a.cidr ?? a.address).join(' '),
  ])
  const headers = ['index', 'name', 'state', 'vlan', 'monitorable', 'addresses']
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

export function interfacesCommand(): Command {
  return new Command('interfaces')
    .description('list network interfaces, their index and addresses, and whether the probe can monitor them')
    .option('--json', 'print JSON instead of a table', false)
    .option('--check <name...>', 'exit 1 unless every named interface can be monitored')
    .action((flags: { json: boolean; check?: string[] }) => {
      if (flags.check !== undefined) {
        try {
          checkMonitorable(flags.check)
        } catch (e) {
          process.stderr.write(`flowtel: ${(e as Error).message}\n`)
          process.exitCode = 1
          return
        }
      }
      const list = listInterfaces()
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`)
        return
      }
      process.stdout.write(`${formatInterfaces(list)}\n`)
      process.stdout.write(
        pcapAddonAvailable()
          ? `live capture: ${loadPcapAddon().libVersion()}\n`
          : 'live capture: unavailable (native pcap addon not built: install libpcap-dev and run npm rebuild)\n',
      )
    })
}
