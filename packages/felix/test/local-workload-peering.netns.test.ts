// BGP peering with local workloads (BGPPeer localWorkloadSelector, BGPConfiguration
// localWorkloadPeeringIPV4) with the real agent and a real BIRD inside a pod. Node n1 runs
// tortie-node; pods p1 (app=bird, selected) and p2 (app=other) are wired as the CNI
// plugin wires them, each running BIRD (AS 65100) that dials 169.254.0.179, the peering
// address, and originates a prefix. As Calico: the agent puts 169.254.0.179/32 on p1's
// host-side interface only and waits (passive) for p1's pod IP; p1's session comes up and
// the node's kernel learns p1's prefix via p1; p2 gets no session and its prefix is not
// learned. Workload-to-host traffic is accepted (FelixConfiguration
// defaultEndpointToHostAction: Accept), as a Calico cluster peering with workloads needs.
import path from 'node:path';
import { parseResource, type Resource } from '@tortie/api';
import { Bird, Testbed, describeIf, waitUntil, type Netns } from '@tortie/testbed';
import { startFileAgent, writeDatastore, type FileAgent } from './file-agent';
import { nodeNetns, podNetns } from './pod-netns';
const PEERING = '169.254.0.179';
const PODS = {
  p1: { iface: 'calip1', v4: '10.244.0.5', app: 'bird', prefix: '10.123.1.0/24' },
  p2: { iface: 'calip2', v4: '10.244.0.6', app: 'other', prefix: '10.123.2.0/24' },
};

const R = (kind: string, name: string, spec: object, meta: object = {}): Resource =>
  parseResource({ apiVersion: 'projectcalico.org/v3', kind, metadata: { name, ...meta }, spec });

const wep = (pod: keyof typeof PODS) =>
  R(
    'WorkloadEndpoint',
    `n1-k8s-${pod}-eth0`,
    {
      node: 'n1',
      orchestrator: 'k8s',
      pod,
      endpoint: 'eth0',
      interfaceName: PODS[pod].iface,
      ipNetworks: [`${PODS[pod].v4}/32`],
      profiles: ['kns.default'],
    },
    {
      namespace: 'default',
      labels: {
        app: PODS[pod].app,
        'projectcalico.org/namespace': 'default',
        'projectcalico.org/orchestrator': 'k8s',
      },
    },
  );

const RESOURCES: Resource[] = [
  R('BGPConfiguration', 'default', {
    nodeToNodeMeshEnabled: false,
    asNumber: 64512,
    localWorkloadPeeringIPV4: PEERING,
  }),
  R('FelixConfiguration', 'default', { defaultEndpointToHostAction: 'Accept' }),
  R('Node', 'n1', { bgp: { ipv4Address: '10.0.0.1/24' } }),
  R('Profile', 'kns.default', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }),
  R('BGPPeer', 'bird-pods', { localWorkloadSelector: "app == 'bird'", asNumber: 65100 }),
  wep('p1'),
  wep('p2'),
];

describeIf(
  ['root', 'netns', 'bird', 'iptables', 'ipset'],
  'BGP peering with local workloads: a BIRD in a pod peers with the agent',
  () => {
    const tb = new Testbed();
    let n1: Netns;
    let agent: FileAgent;
    const birds = {} as Record<keyof typeof PODS, Bird>;

    beforeAll(async () => {
      try {
        const dir = tb.tempDir('local-peering');
        const file = path.join(dir, 'ds.json');
        await writeDatastore(file, RESOURCES);
        n1 = await nodeNetns(tb, 'lw-n1');
        // the node's own link (this kernel has no dummy module): a veth whose peer stays here
        await n1.exec(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
        await n1.exec(['ip', 'link', 'set', 'eth0p', 'up']);
        await n1.exec(['ip', 'addr', 'add', '10.0.0.1/24', 'dev', 'eth0']);
        await n1.exec(['ip', 'link', 'set', 'eth0', 'up']);
        for (const name of ['p1', 'p2'] as const) {
          const p = PODS[name];
          const pod = await podNetns(tb, n1, `lw-${name}`, { iface: p.iface, v4: p.v4 });
          birds[name] = await Bird.start(tb, pod, {
            routerId: p.v4,
            peers: [
              {
                name: 'node',
                localAs: 65100,
                localAddress: p.v4,
                neighbor: PEERING,
                neighborAs: 64512,
                multihop: 2,
                families: ['ipv4'],
              },
            ],
            routes: [{ prefix: p.prefix }],
          });
        }
        agent = startFileAgent(tb, n1, { name: 'n1', ip: '10.0.0.1/24', file, dir });
      } catch (e) {
        await tb.cleanup();
        throw e;
      }
    }, 90_000);

    afterAll(() => tb.cleanup());

    test('the selected pod peers at the peering address; the node learns its prefix via the pod', async () => {
      await waitUntil(
        'the peering address on p1 host-side interface',
        async () =>
          (await n1.exec(['ip', '-4', 'addr', 'show', 'dev', 'calip1'])).includes(PEERING),
        60_000,
        250,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${agent.lastLog()}`);
      });
      await birds.p1.waitEstablished('node', 60_000);
      const rows = await agent.peers();
      expect(rows.map((r) => [r.address, r.state])).toEqual([[PODS.p1.v4, 'Established']]);
      await waitUntil(
        "p1's prefix in the node's kernel via p1",
        async () =>
          (await n1.exec(['ip', '-4', 'route', 'show', PODS.p1.prefix])).includes(
            `via ${PODS.p1.v4} dev calip1`,
          ),
        60_000,
        250,
      );
    }, 150_000);

    test('the pod the selector does not pick gets no address, no session, no route', async () => {
      expect(await n1.exec(['ip', '-4', 'addr', 'show', 'dev', 'calip2'])).not.toContain(PEERING);
      // p2's BIRD dials every second (and reaches the node: the address is local there);
      // for 10 s more it never gets a session
      const until = Date.now() + 10_000;
      while (Date.now() < until) {
        const [p] = (await birds.p2.protocols()).filter((x) => x.name === 'node');
        expect(p.info).not.toMatch(/Established/);
        await new Promise((r) => setTimeout(r, 500));
      }
      expect((await agent.peers()).map((r) => r.address)).not.toContain(PODS.p2.v4);
      expect(await n1.exec(['ip', '-4', 'route', 'show', PODS.p2.prefix])).toBe('');
    }, 60_000);
  },
);
