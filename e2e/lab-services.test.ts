// `npm run lab` as an operator runs it (etcd datastore): after the pods and the policy
// the demo makes one Service of each type over the web pods (ClusterIP, NodePort,
// LoadBalancer, ExternalIPs) and shows each answered by the backends from where issue 15
// says: the ClusterIP from a pod; the NodePort, the LoadBalancer IP and the ExternalIP from
// the BIRD ToR, outside the cluster; then BIRD's route for the LoadBalancer IP with a next
// hop per node (ECMP). The same with --datastore kubernetes (Services by kubectl apply, the
// LoadBalancer IP in their status) is checked in lab-attach-kdd.test.ts, on the output of
// the lab that file runs anyway (one kubernetes-datastore lab instead of two).
import { SLOW, describeIf } from '@tortie/testbed';
import { expectServices, runLab } from './lab-run';

const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft'] as const;

describeIf([...NEEDS], 'npm run lab: one Service of each type', () => {
  test(
    'etcd datastore: every type answered from where issue 15 says; BIRD load-balances the LoadBalancer IP over both nodes',
    async () => {
      expectServices(await runLab(['--nodes', '2']));
    },
    400_000 * SLOW,
  );
});
