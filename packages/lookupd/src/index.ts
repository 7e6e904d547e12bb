export { LOOKUPD_FLAGS, type LookupdArgs, lookupdUsage, parseLookupdArgs } from './config/lookupd-flags.js';
export { createLookupd, Lookupd } from './lookupd.js';
export { defaultLookupdOptions, type LookupdOptions } from './options.js';
export {
  Category,
  type PeerInfo,
  Producer,
  type Registration,
  RegistrationDB,
} from './registration-db.js';
export { lookupdVersionLine, VERSION } from './version.js';
