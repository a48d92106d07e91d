export {
  parseNetConf,
  parseEnv,
  SUPPORTED_VERSIONS,
  type NetConf,
  type CniEnv,
  type Command,
} from './config';
export { CniError, CNI_ERRORS } from './errors';
export {
  resultSchema,
  buildResult,
  addressesOf,
  POD_GATEWAY_V4,
  POD_GATEWAY_V6,
  HOST_SIDE_MAC,
  type CniResult,
  type Attachment,
} from './result';
export {
  LinuxPodNetwork,
  hostBatch,
  podBatch,
  hostSysctls,
  podSysctls,
  randomPodMac,
  type PodNetwork,
  type ObservedAttachment,
} from './netsetup';
export {
  NetlinkPodNetwork,
  podNetwork,
  hostLinkSteps,
  hostRouteSteps,
  podLinkSteps,
  podAddressSteps,
} from './netlink-setup';
export {
  add,
  del,
  check,
  gc,
  status,
  version,
  identity,
  type PluginDeps,
  type PodSource,
} from './plugin';
export { runCommand, type SharedDeps, type CommandOutput } from './run-command';
export { serveCni } from './agent-server';
export { installFileAtomically, writeFileAtomically, InstallError } from './install-file';
export {
  FALLBACK_DIR,
  copies,
  findAppRoot,
  installFallback,
  packageClosure,
  sharedObjects,
} from './fallback-tree';
export {
  installCni,
  installCniSettings,
  renderConflist,
  templateValues,
  pluginKubeconfig,
  writeKubeconfig,
  watchToken,
  DEFAULT_CNI_TEMPLATE,
  type InstallCniSettings,
} from './install-cni';
