// The calculation graph's public surface (the lead wires it into ../index.ts).
export {
  CalcGraph,
  type CalcGraphOptions,
  type CalcGraphConfig,
  type CalcStats,
} from './calc-graph';
export { computeBgp, type BgpWorld } from '@tortie/bgp-topology';
export { SelectorIndex, type IndexEvents } from './selector-index';
export { ipSetId, policyId, workloadId } from './ids';
