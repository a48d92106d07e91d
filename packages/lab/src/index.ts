export * from './bgp-lab';
export * from './cluster';
export * from './writes';
export * from './tor';
export * from './attach';
export * from './ui-server';
export * from './ui-view';
export {
  daemonSetPlan,
  deploymentPlan,
  type ContainerRun,
  type HostMount,
  type NodePodPlan,
  type SecretMount,
} from './daemonset';
export { labImage, hostPathOn, NodeHost, type BuiltImage, type Secrets } from './node-host';
export * from './kube';
