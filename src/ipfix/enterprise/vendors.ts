/**
 * Registers the vendor dictionaries (RFC 7012 §4 enterprise-specific Information Elements; RFC 5153 §5.1 local
 * dictionary) with the element table: the hand-kept Flowmon and Flowtel tables of flowtel.ts first, then the
 * generated ones. Idempotent. A name already taken by another element (IANA, another vendor, Flowtel) is
 * registered as `<name>@<pen>`, so element names stay unique and IANA names keep meaning the IANA element.
 */
import { elementByName, registerElements, type ElementDef } from '../elements.js'
import { CERT_ELEMENTS } from './cert.js'
import { CESNET_ELEMENTS } from './cesnet.js'
import { CISCO_ELEMENTS } from './cisco.js'
import { registerEnterpriseElements } from './flowtel.js'
import { MUNI_ELEMENTS } from './muni.js'
import { NETFLOW_TYPE_ELEMENTS } from './netflow-types.js'
import { NETGAUZE_VENDOR_ELEMENTS } from './netgauze-vendors.js'
import { NETSCALER_ELEMENTS } from './netscaler.js'
import { NPROBE_ELEMENTS } from './nprobe.js'
import { PALOALTO_ELEMENTS } from './paloalto.js'
import { SFLOW_ELEMENTS } from './sflow.js'
import type { EnterpriseTable } from './types.js'
import { VMWARE_ELEMENTS } from './vmware.js'

/** PEN libfds uses for NetFlow v9 field types 128..32767 that IANA does not define. */
export const NETFLOW_PEN = 4294967294
/** PEN libfds uses for NetFlow v9 field types 32768..65535 (stored as type - 32768). */
export const NETFLOW_EXTRA_PEN = 4294967295

/** All generated tables, in registration order (earlier tables keep the plain name on a clash). */
export const VENDOR_TABLES: readonly EnterpriseTable[] = [
  ...CISCO_ELEMENTS,
  ...CESNET_ELEMENTS,
  ...CERT_ELEMENTS,
  ...NETSCALER_ELEMENTS,
  ...VMWARE_ELEMENTS,
  ...MUNI_ELEMENTS,
  ...NETGAUZE_VENDOR_ELEMENTS,
  ...NPROBE_ELEMENTS,
  ...NETFLOW_TYPE_ELEMENTS,
  ...PALOALTO_ELEMENTS,
  ...SFLOW_ELEMENTS,
]

let registered = false

function nameOwner(name: string): ElementDef | undefined {
  try {
    return elementByName(name)
  } catch {
    return undefined
  }
}

/** Registers Flowmon and Flowtel (flowtel.ts) first, then the generated vendor tables. Idempotent. */
export function registerVendorElements(): void {
  if (registered) return
  registered = true
  registerEnterpriseElements()
  for (const t of VENDOR_TABLES) {
    const defs: ElementDef[] = []
    for (const [id, name, type, semantics, units] of t.rows) {
      const owner = nameOwner(name)
      const clash = owner !== undefined && (owner.pen !== t.pen || owner.id !== id)
      const def: { -readonly [K in keyof ElementDef]: ElementDef[K] } = {
        pen: t.pen,
        id,
        name: clash ? `${name}@${t.pen}` : name,
        type,
      }
      if (semantics) def.semantics = semantics
      if (units) def.units = units
      defs.push(def)
    }
    registerElements(defs)
  }
}
