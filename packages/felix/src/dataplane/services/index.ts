// The service dataplane: a kube-proxy replacement on nftables.
export {
  localServiceRoutes,
  planServices,
  type EndpointSlice,
  type IpFamily,
  type PlannedEndpoint,
  type Protocol,
  type Service,
  type ServicePort,
  type ServicePortPlan,
  type SliceEndpoint,
} from './model';
export { MASQ_MARK, type NftState, type RenderOptions } from './nft-render';
export { renderServices } from './nft-table';
export { diffScript, fullScript } from './nft-diff';
export {
  ServiceProxy,
  type ApplyStats,
  type NftExec,
  type ServiceProxyOptions,
} from './service-proxy';
export { ServiceManager, nodePortRanges, type ServiceManagerOptions } from './service-manager';
export { endpointSliceFromResource, serviceFromResource } from './from-resources';
