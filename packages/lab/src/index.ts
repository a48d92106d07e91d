export * from './bgp-lab';
export * from './cluster';
