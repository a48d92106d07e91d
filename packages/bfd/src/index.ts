export * from './codec';
export * from './session';
export * from './endpoint';
export { nftTtlGuard, TTL_GUARD_TABLE, type TtlGuard } from './ttl-guard';
