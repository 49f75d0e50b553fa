// Palo Alto Networks PAN-OS NetFlow v9 vendor field types (PAN-OS administrator's guide, "NetFlow Templates":
// 346 PEN, 56701 App-ID, 56702 User-ID). Maintained by hand: no definition file in ../shared covers them.
// NetFlow v9 types from 32768 are kept under PEN 2^32-1 as type - 32768 (libfds convention, see vendors.ts).
import type { EnterpriseTable } from './types.js'

export const PALOALTO_ELEMENTS: readonly EnterpriseTable[] = [
  {
    pen: 4294967295,
    rows: [
      [56701 - 32768, 'paloaltoAppId', 'string'],
      [56702 - 32768, 'paloaltoUserId', 'string'],
    ],
  },
]
