export * from './bgp-lab';
