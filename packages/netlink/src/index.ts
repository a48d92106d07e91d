export {
  Rtnl,
  netlinkAvailability,
  netnsPath,
  routeText,
  neighText,
  type NeighOp,
  type RouteSpec,
  type RouteOp,
  type Answer,
} from './rtnl';
export { NetlinkError, errnoText } from './errors';
export {
  writeSysctls,
  mustWriteSysctls,
  sysctlName,
  SysctlError,
  type SysctlEntry,
} from './sysctl';
export * as codec from './codec';
export {
  NfTables,
  nftKey,
  elementBatch,
  nftablesBatchAcked,
  type NftElementOp,
  type NftFamily,
} from './nftables';
