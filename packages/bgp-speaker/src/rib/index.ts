export { Rib, type RibOptions } from './rib';
export { AttributeStore } from './attribute-store';
export { selectBest, asPathLength, neighbourAs, DEFAULT_LOCAL_PREF } from './decision';
export { exportAttributes, type LocalIdentity } from './export-policy';
export type { PeerInfo, Path, Route, BestPathChange, ExportBatch } from './types';
