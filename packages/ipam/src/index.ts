export {
  IpamClient,
  firstFreeBlock,
  type IpamOptions,
  type AutoAssignRequest,
  type AssignResult,
  type GcResult,
} from './ipam';
export { checkIpam, isClean, type IpamReport, type IpamWorld, type LeakedHandle } from './check';
export { IpamError } from './errors';
export { poolsFor, poolOf, reservedBy, type Pool, type PoolChoice } from './pools';
export * as blocks from './block';
export * from '@tortie/netaddr';
export { blockName, affinityName, handleName } from './names';
