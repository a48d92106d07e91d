// tortie-rr configured from a real etcd, in network namespaces: its Node (cluster id,
// address) and BGPPeers make BIRD and tortie-speaker nodes its clients; routes are
// reflected with ORIGINATOR_ID / CLUSTER_LIST; it waits out an etcd it cannot reach at
// start and keeps its sessions while etcd is cut off; a new node with its BGPPeer gets a
// session and the reflected routes, deleting that BGPPeer drops the session, and the
// other sessions are never restarted.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseResource, type Resource } from '@tortie/api';
import { controlRequest, SpeakerProcess, type PeerRow } from '@tortie/bgp-speaker';
import { EtcdDatastore } from '@tortie/datastore';
import { RR_HEALTH } from '../src';
import {
  Bird,
  Etcd,
  Fabric,
  PortForward,
  Testbed,
  describeIf,
  stopProcess,
  waitUntil,
  type Netns,
} from '@tortie/testbed';

const RR_CLI = path.resolve(__dirname, '../dist/cli.js');
const AS = 64512;
const CLUSTER = '224.0.0.9';
const RR = '10.99.1.254';
const C1 = { name: 'c1', ip: '10.99.1.11', prefix: '10.201.0.0/24' }; // BIRD
const C2 = { name: 'c2', ip: '10.99.1.12', prefix: '10.202.0.0/24' }; // tortie speaker
const C3 = { name: 'c3', ip: '10.99.1.13', prefix: '10.203.0.0/24' }; // BIRD, added later
const ETCD_PORT = 2379;

const R = (kind: string, name: string, spec: object, labels: Record<string, string> = {}) =>
  parseResource({ apiVersion: 'tortie.io/v1', kind, metadata: { name, labels }, spec });
const node = (name: string, ip: string, bgp: object = {}, labels: Record<string, string> = {}) =>
  R('Node', name, { bgp: { ipv4Address: `${ip}/24`, ...bgp } }, labels);

describeIf(['netns', 'bird', 'etcd', 'iptables', 'root'], 'tortie-rr from etcd', () => {
  const tb = new Testbed();
  let ds: EtcdDatastore | undefined;
  afterAll(async () => {
    await ds?.close();
    await tb.cleanup();
  });

  test('clients from Node and BGPPeer resources, followed live', async () => {
    const etcd = await Etcd.start(tb);
    ds = new EtcdDatastore([etcd.endpoint]);
    const resources: Resource[] = [
      R('BGPConfiguration', 'default', { nodeToNodeMeshEnabled: false }),
      node('rr1', RR, { routeReflectorClusterID: CLUSTER }, { 'route-reflector': 'true' }),
      node(C1.name, C1.ip, {}, { 'rr-client': 'true' }),
      node(C2.name, C2.ip, {}, { 'rr-client': 'true' }),
      // the reflector picks its clients by label
      R('BGPPeer', 'rr-picks-clients', {
        nodeSelector: "route-reflector == 'true'",
        peerSelector: "rr-client == 'true'",
      }),
    ];
    for (const r of resources) await ds.create(r);

    const fabric = await Fabric.create(tb);
    const host = async (tag: string, ip: string): Promise<Netns> => {
      const n = await tb.netns(tag);
      await fabric.attach(n, { v4: `${ip}/24` });
      return n;
    };
    const rrNs = await host('rr', RR);

    // etcd cannot be reached when the reflector starts (no relay into its namespace
    // yet): it says so and waits
    const dir = tb.tempDir('rr');
    const socket = path.join(dir, 'rr.sock');
    const logFile = path.join(dir, 'rr.log');
    const rr = startReflector(rrNs, socket, logFile);
    tb.onCleanup(() => stopProcess(rr));
    await waitUntil(
      'the reflector reporting etcd down',
      () =>
        fs.existsSync(logFile) &&
        /cannot read the datastore/.test(fs.readFileSync(logFile, 'utf8')),
      20000,
    );
    expect(fs.readFileSync(logFile, 'utf8')).toContain(
      `cannot read the datastore (etcdv3 at http://127.0.0.1:${ETCD_PORT})`,
    );
    // the kubelet's probes (deploy/tortie-rr.yaml): alive, but not ready, and why
    expect(await probe(rrNs, '/liveness')).toEqual({ code: 200, body: 'live' });
    const notReady = await probe(rrNs, '/readiness');
    expect(notReady.code).toBe(503);
    expect(notReady.body).toContain(`datastore etcdv3 at http://127.0.0.1:${ETCD_PORT}`);
    await PortForward.start(tb, rrNs, ETCD_PORT, { host: '127.0.0.1', port: etcdPort(etcd) });
    const rrPeers = () => controlRequest(socket, { cmd: 'peers' }) as Promise<PeerRow[]>;
    await waitUntil(
      'the reflector configured from etcd',
      async () => (await rrPeers()).length === 2,
    );
    expect(await probe(rrNs, '/readiness')).toEqual({ code: 200, body: 'ready' });

    const birdPeer = {
      name: 'reflector',
      localAs: AS,
      neighbor: RR,
      neighborAs: AS,
      families: ['ipv4' as const],
    };
    const c1 = await Bird.start(tb, await host('c1', C1.ip), {
      routerId: C1.ip,
      routes: [{ prefix: C1.prefix }],
      peers: [birdPeer],
    });
    const c2Ns = await host('c2', C2.ip);
    const c2 = await SpeakerProcess.start((argv, o) => c2Ns.spawn(argv, o), tb.tempDir('c2'), {
      asn: AS,
      routerId: C2.ip,
      nextHop: { ipv4: C2.ip },
      listen: false,
      peers: [{ address: RR, asn: AS, holdTime: 9, connectRetryTime: 1, errorWaitTime: [0.5, 1] }],
      originate: [{ prefix: C2.prefix }],
    });
    // c3 runs from the start, but is no client until the datastore says so
    const c3 = await Bird.start(tb, await host('c3', C3.ip), {
      routerId: C3.ip,
      routes: [{ prefix: C3.prefix }],
      peers: [birdPeer],
    });
    const transitions = async () =>
      Object.fromEntries(
        (await rrPeers()).map((p) => [p.address, p.counters.establishedTransitions]),
      );

    // reflected both ways, stamped
    const atC1 = await waitUntil('c2 route at c1', async () =>
      (await c1.routes()).find((r) => r.prefix === C2.prefix),
    );
    expect(atC1).toMatchObject({ nextHop: C2.ip, originatorId: C2.ip, clusterList: [CLUSTER] });
    const atC2 = await waitUntil('c1 route at c2', async () =>
      (await c2.routes()).find((r) => r.prefix === C1.prefix),
    );
    expect(atC2).toMatchObject({ nextHop: C1.ip, originatorId: C1.ip, clusterList: [CLUSTER] });
    expect(await transitions()).toEqual({ [C1.ip]: 1, [C2.ip]: 1 });

    // etcd is cut off for a while (connections to it reset inside the reflector's
    // namespace; stopping etcd itself would need a restart, which is slow): sessions and
    // routes stay
    const block = ['OUTPUT', '-p', 'tcp', '--dport', String(ETCD_PORT), '-j', 'REJECT'];
    await rrNs.exec(['iptables', '-I', ...block, '--reject-with', 'tcp-reset']);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await rrPeers()).map((p) => p.state)).toEqual(['Established', 'Established']);
    expect((await c1.routes()).some((r) => r.prefix === C2.prefix)).toBe(true);
    await rrNs.exec(['iptables', '-D', ...block, '--reject-with', 'tcp-reset']);

    // a new node whose BGPPeer picks the reflector: a new session, routes both ways
    await ds.create(node(C3.name, C3.ip));
    await ds.create(
      R('BGPPeer', 'c3-to-rr', { node: C3.name, peerSelector: "route-reflector == 'true'" }),
    );
    const atC3 = await waitUntil(
      'c1 and c2 routes at c3',
      async () => {
        const got = await c3.routes();
        const a = got.find((r) => r.prefix === C1.prefix);
        return a && got.some((r) => r.prefix === C2.prefix) ? a : undefined;
      },
      20000,
    );
    expect(atC3).toMatchObject({ nextHop: C1.ip, originatorId: C1.ip, clusterList: [CLUSTER] });
    await waitUntil('c3 route at c1', async () =>
      (await c1.routes()).some((r) => r.prefix === C3.prefix),
    );
    expect(await transitions()).toEqual({ [C1.ip]: 1, [C2.ip]: 1, [C3.ip]: 1 });

    // its BGPPeer goes: so do its session and its routes, the others stay up
    await ds.delete({ kind: 'BGPPeer', name: 'c3-to-rr' });
    await waitUntil('c3 session gone at the reflector', async () =>
      (await rrPeers()).every((p) => p.address !== C3.ip),
    );
    await waitUntil('c3 route withdrawn at c1', async () =>
      (await c1.routes()).every((r) => r.prefix !== C3.prefix),
    );
    await waitUntil(
      'c3 session down at c3',
      async () => (await c3.protocol('reflector'))?.info !== 'Established',
    );
    expect(await transitions()).toEqual({ [C1.ip]: 1, [C2.ip]: 1 });
    expect((await c2.peers())[0].counters.establishedTransitions).toBe(1);
  }, 90000);

  function startReflector(ns: Netns, socket: string, logFile: string): ChildProcess {
    const p = ns.spawn(
      [
        'node',
        RR_CLI,
        'run',
        '--datastore-type',
        'etcdv3',
        '--etcd-endpoints',
        `http://127.0.0.1:${ETCD_PORT}`,
        '--node',
        'rr1',
        '-s',
        socket,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TORTIE_LOG_LEVEL: 'info' } },
    );
    p.stderr?.on('data', (d: Buffer) => fs.appendFileSync(logFile, d));
    return p;
  }
});

/** GET path on tortie-rr's health port (its default, 127.0.0.1:9098) in its namespace. */
async function probe(ns: Netns, urlPath: string): Promise<{ code: number; body: string }> {
  const out = await ns.exec([
    ...['curl', '-s', '-m', '5', '-w', '\\n%{http_code}'],
    `http://127.0.0.1:${RR_HEALTH.port}${urlPath}`,
  ]);
  const lines = out.trimEnd().split('\n');
  return { code: Number(lines.pop()), body: lines.join('\n').trim() };
}

/** The etcd's client port on the test's loopback. */
function etcdPort(e: Etcd): number {
  return Number(new URL(e.endpoint).port);
}
