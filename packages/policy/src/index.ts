export {
  parseSelector,
  printSelector,
  normalizeSelector,
  canonicalSelector,
  matches,
  replaceAll,
  selectorKeys,
  SelectorError,
  type Selector,
  type Labels,
  type MatchContext,
} from './selector';
export * from './model';
export { ipInNet, cidrProblem } from './cidr';
export {
  serviceMatchKey,
  sliceAddresses,
  sliceIpPorts,
  sliceServiceKey,
  type ServiceIpPort,
  type ServiceMatch,
  type ServiceSlice,
} from './services';
export {
  Evaluator,
  explain,
  policySelects,
  inStage,
  type Stage as PolicyStage,
  portMatches,
  type Verdict,
  type DirectionVerdict,
  type Step,
} from './evaluate';
export {
  convertK8sNetworkPolicy,
  labelSelectorToSelector,
  namespaceProfile,
  ORCHESTRATOR_LABEL,
  type K8sNetworkPolicy,
  type K8sLabelSelector,
  type K8sPeer,
  type K8sPort,
} from './k8s';
export { LabelIndex, type MatchEvents } from './label-index';
