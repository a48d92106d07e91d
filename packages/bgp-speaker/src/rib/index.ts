export {
  Rib,
  type RibOptions,
  type BestPathListener,
  type AddPeerOptions,
  type GroupUpdate,
} from './rib';
export { AttributeStore, attributeKey } from './attribute-store';
export { AdjRibIn, importRejection, type ImportOptions } from './adj-rib-in';
export { LocRib, type LocRibOptions } from './loc-rib';
export { AdjRibOut, type ExportOptions } from './adj-rib-out';
export { UpdateGroup, batchFor, receives, messagesPerMember, type GroupPart } from './update-group';
export {
  selectBest,
  asPathLength,
  neighbourAs,
  compareAddresses,
  DEFAULT_LOCAL_PREF,
} from './decision';
export {
  ExportCommunities,
  type ExportCommunityRule,
  type PrefixCommunities,
} from './export-communities';
export {
  exportAttributes,
  exportPolicyKey,
  policyExport,
  defaultReflectRule,
  NO_EXPORT,
  NO_ADVERTISE,
  NO_EXPORT_SUBCONFED,
} from './export-policy';
export {
  filterVerdict,
  filterPasses,
  filterRoute,
  applyOperations,
  asPathStartsWith,
  routePriority,
  kernelMetric,
  prefixWithin,
  interfaceMatches,
  PRIORITY_BASE,
  NORMAL_ROUTE_PRIORITY,
  type FilterRule,
  type FilterRoute,
  type FilterOperation,
  type FilterOutcome,
  type RouteFilter,
} from './route-filter';
export type {
  PeerInfo,
  Path,
  Route,
  BestPathChange,
  ExportBatch,
  LocalIdentity,
  ReflectRule,
  IgpCost,
} from './types';
