export * from './datastore';
export { MemoryDatastore } from './memory';
export { whenAvailable, type WhenAvailableOptions } from './when-available';
export { Syncer, type SyncStatus, type SyncUpdate, type SyncerOptions } from './syncer';
export { EtcdDatastore, ETCD_PREFIX } from './etcd';
export { FileDatastore } from './file';
export { KubernetesDatastore, kubernetesAccess, type KubernetesAccess } from './kubernetes';
export * from './kdd';
export {
  datastoreSpec,
  IN_CLUSTER,
  describeDatastore,
  openDatastore,
  type DatastoreChoice,
  type DatastoreSpec,
} from './choice';
