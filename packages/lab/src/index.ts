export * from './bgp-lab';
export * from './cluster';
export * from './writes';
export * from './tor';
export * from './attach';
export * from './ui-server';
export * from './ui-view';
