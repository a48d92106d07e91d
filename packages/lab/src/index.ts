export * from './bgp-lab';
export * from './cluster';
export * from './writes';
