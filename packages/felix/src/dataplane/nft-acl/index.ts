// The ACL dataplane on nftables (workload endpoints), beside the iptables one in ../acl.
export {
  NftAclManager,
  linuxNftAclManager,
  type NftAclManagerOptions,
  type NftAclStats,
} from './nft-acl-manager';
export { nftRulesChain, nftEndpointChain, nftStaticChains, type NftChain } from './chains';
export { renderNftRule, type RenderedNftRule } from './rule-render';
export { nftScript, type NftChanges } from './script';
export {
  ProcessNftRunner,
  NftSession,
  nftProblem,
  parseNftVersion,
  MIN_NFT_VERSION,
  type NftRunner,
  type NftElementBatch,
} from './runner';
export { TABLE_REF as NFT_ACL_TABLE, nftSetName, nftChain } from './names';
