// Which datastore a tortie process opens, from its flags or the environment variables
// every tortie program reads: DATASTORE_TYPE etcdv3 | kubernetes | file, ETCD_ENDPOINTS,
// KUBECONFIG, TORTIE_DATASTORE_FILE. Without a type, the one source given decides.
// Used by tortie-node, tortiectl and tortie-rr alike.
import type { Datastore } from './datastore';
import { EtcdDatastore } from './etcd';
import { FileDatastore } from './file';
import { KubernetesDatastore } from './kubernetes';

export interface DatastoreChoice {
  type?: string;
  etcdEndpoints?: string;
  kubeconfig?: string;
  file?: string;
}

export type DatastoreSpec =
  | { type: 'etcdv3'; endpoints: string[] }
  /** kubeconfig 'in-cluster': the pod's service-account token and KUBERNETES_SERVICE_HOST */
  | { type: 'kubernetes'; kubeconfig: string }
  | { type: 'file'; file: string };

/** The kubeconfig of a spec that uses the pod's service account (in-cluster config). */
export const IN_CLUSTER = 'in-cluster';

/** Flags win over the environment. Throws with what is missing. Pure. */
export function datastoreSpec(flags: DatastoreChoice, env: NodeJS.ProcessEnv): DatastoreSpec {
  const etcd = flags.etcdEndpoints ?? env.ETCD_ENDPOINTS;
  const kubeconfig = flags.kubeconfig ?? env.KUBECONFIG;
  const file = flags.file ?? env.TORTIE_DATASTORE_FILE;
  const type = (
    flags.type ??
    env.DATASTORE_TYPE ??
    (file ? 'file' : etcd ? 'etcdv3' : kubeconfig ? 'kubernetes' : '')
  ).toLowerCase();
  switch (type) {
    case 'etcdv3':
      if (!etcd)
        throw new Error('datastore etcdv3 needs --etcd-endpoints URLS (or ETCD_ENDPOINTS)');
      return { type, endpoints: etcd.split(',').map((e) => e.trim()) };
    case 'kubernetes':
      // in a pod, without a kubeconfig: the service account, as calico-node does
      if (!kubeconfig && env.KUBERNETES_SERVICE_HOST) return { type, kubeconfig: IN_CLUSTER };
      if (!kubeconfig)
        throw new Error(
          'datastore kubernetes needs --kubeconfig PATH (or KUBECONFIG), or KUBERNETES_SERVICE_HOST in a pod',
        );
      // KUBECONFIG may list several files; the first is used, like tortiectl
      return { type, kubeconfig: kubeconfig.split(':')[0] };
    case 'file':
      if (!file)
        throw new Error('datastore file needs --datastore-file PATH (or TORTIE_DATASTORE_FILE)');
      return { type, file };
    case '':
      throw new Error(
        'no datastore: pass --etcd-endpoints URLS, --kubeconfig PATH or --datastore-file PATH (or set ETCD_ENDPOINTS, KUBECONFIG or TORTIE_DATASTORE_FILE; DATASTORE_TYPE picks one when several are set)',
      );
    default:
      throw new Error(`datastore type "${type}" is not one of etcdv3, kubernetes, file`);
  }
}

/** "etcdv3 at http://10.0.0.1:2379" — for messages. */
export function describeDatastore(s: DatastoreSpec): string {
  if (s.type === 'etcdv3') return `etcdv3 at ${s.endpoints.join(',')}`;
  return s.type === 'kubernetes' ? `kubernetes (${s.kubeconfig})` : `file ${s.file}`;
}

export function openDatastore(s: DatastoreSpec): Datastore {
  if (s.type === 'etcdv3') return new EtcdDatastore(s.endpoints);
  return s.type === 'kubernetes'
    ? s.kubeconfig === IN_CLUSTER
      ? KubernetesDatastore.inCluster()
      : KubernetesDatastore.fromFile(s.kubeconfig)
    : FileDatastore.open(s.file);
}
