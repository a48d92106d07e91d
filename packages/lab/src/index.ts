export * from './bgp-lab';
export * from './cluster';
export * from './writes';
export * from './tor';
export * from './attach';
export * from './ui-server';
export * from './ui-view';
export { daemonSetPlan, type ContainerRun, type HostMount, type NodePodPlan } from './daemonset';
export { labImage, hostPathOn, NodeHost, type BuiltImage } from './node-host';
