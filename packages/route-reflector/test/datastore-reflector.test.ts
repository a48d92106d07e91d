// tortie-rr from the datastore, with a recording speaker: its Node and BGPPeers give
// the speaker settings and clients as felix computes them (peerSelector both ways), live
// changes touch only the peers that changed, and bad input keeps the last good config.
import { parseResource, type Resource } from '@tortie/api';
import type { PeerConfigInput } from '@tortie/bgp-speaker';
import { MemoryDatastore, type Datastore } from '@tortie/datastore';
import winston from 'winston';
import Transport from 'winston-transport';
import {
  DatastoreReflector,
  Reflector,
  reflectorTopology,
  type ReflectorSpeakerLike,
} from '../src';

const R = (kind: string, name: string, spec: object, labels: Record<string, string> = {}) =>
  parseResource({ apiVersion: 'tortie.io/v1', kind, metadata: { name, labels }, spec });
const node = (name: string, ip: string, bgp: object = {}, labels: Record<string, string> = {}) =>
  R('Node', name, { bgp: { ipv4Address: ip, ...bgp } }, labels);

const CLUSTER = '224.0.0.1';
const RR = node('rr1', '10.0.0.1/24', { routeReflectorClusterID: CLUSTER }, { rr: 'true' });
const MESH_OFF = R('BGPConfiguration', 'default', {
  nodeToNodeMeshEnabled: false,
  asNumber: 65000,
});
// the clients select the reflector (Calico's usual "peer-with-route-reflectors")
const CLIENTS_PICK_RR = R('BGPPeer', 'clients-pick-rr', {
  nodeSelector: "client == 'true'",
  peerSelector: "rr == 'true'",
});

/** Log lines at error level, for assertions. */
class Recorder extends Transport {
  readonly errors: string[] = [];
  override log(info: { level: string; message: string }, next: () => void): void {
    if (info.level === 'error') this.errors.push(info.message);
    next();
  }
}

class FakeSpeaker implements ReflectorSpeakerLike {
  readonly peers = new Map<string, PeerConfigInput>();
  readonly calls: string[] = [];
  constructor(
    readonly settings: {
      asn: number;
      routerId: string;
      clusterId?: string;
      exportCommunities?: Array<{ cidr: string; communities: string[] }>;
    },
  ) {}
  start = async () => void this.calls.push('start');
  stop = async () => void this.calls.push('stop');
  serveControl = async () => undefined;
  addPeer(p: PeerConfigInput): void {
    this.calls.push(`add ${p.address}`);
    this.peers.set(p.address, p);
  }
  setPeerBfd(key: string, bfd: PeerConfigInput['bfd']): void {
    this.calls.push(`bfd ${key}`);
    this.peers.set(key, { ...this.peers.get(key)!, bfd });
  }
  removePeer(a: string): void {
    this.calls.push(`remove ${a}`);
    this.peers.delete(a);
  }
  setExportCommunities(rules: Array<{ cidr: string; communities: string[] }>): void {
    this.calls.push(`communities ${rules.map((r) => `${r.cidr} ${r.communities}`).join('; ')}`);
  }
}

async function setup(resources: Resource[], ds: Datastore = new MemoryDatastore()) {
  for (const r of resources) await ds.create(r);
  const rec = new Recorder();
  const logger = winston.createLogger({ transports: [rec] });
  const speakers: FakeSpeaker[] = [];
  const reflector = new Reflector({
    logger,
    makeSpeaker: (cfg) => {
      const s = new FakeSpeaker(cfg);
      speakers.push(s);
      return s;
    },
  });
  const daemon = new DatastoreReflector(ds, {
    node: 'rr1',
    logger,
    reflector,
    where: 'memory',
    settleMs: 1,
    retryMs: 10,
    maxRetryMs: 20,
  });
  daemon.start();
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    if (!ok()) throw new Error(`timed out waiting for ${what}`);
    await daemon.settled();
  };
  return { ds, daemon, speakers, errors: rec.errors, until };
}

describe('tortie-rr from the datastore', () => {
  test('its Node gives AS, router id and cluster id; clients are the nodes that pick it and that it picks', async () => {
    const { ds, daemon, speakers, until } = await setup([
      MESH_OFF,
      RR,
      node('c1', '10.0.0.11/24', {}, { client: 'true' }),
      node('c2', '10.0.0.12/24', { asNumber: 65000 }, { client: 'true' }),
      node('c3', '10.0.0.13/24', {}, { rack: 'b' }),
      node('other', '10.0.0.14/24'),
      CLIENTS_PICK_RR,
      // the reflector picks rack b
      R('BGPPeer', 'rr-picks-rack-b', { node: 'rr1', peerSelector: "rack == 'b'" }),
      // a ToR for the reflector only, eBGP
      R('BGPPeer', 'tor', { nodeSelector: "rr == 'true'", peerIP: '10.0.0.254', asNumber: 65100 }),
    ]);
    await until('a speaker', () => speakers.length === 1);
    const s = speakers[0];
    expect(s.settings).toMatchObject({ asn: 65000, routerId: '10.0.0.1', clusterId: CLUSTER });
    const summary = [...s.peers.values()].map((p) => [
      p.address,
      p.asn,
      p.routeReflectorClient ?? false,
    ]);
    expect(summary).toEqual([
      ['10.0.0.11', 65000, true],
      ['10.0.0.12', 65000, true],
      ['10.0.0.13', 65000, true],
      ['10.0.0.254', 65100, false],
    ]);
    await daemon.stop();
    await ds.close();
  });

  test('a peer whose password Secret cannot be read gets no session, and the log says which', async () => {
    const { ds, daemon, speakers, errors, until } = await setup([
      MESH_OFF,
      RR,
      node('c1', '10.0.0.11/24', {}, { client: 'true' }),
      CLIENTS_PICK_RR,
      R('BGPPeer', 'tor', {
        nodeSelector: "rr == 'true'",
        peerIP: '10.0.0.254',
        asNumber: 65100,
        password: { secretKeyRef: { name: 'tor', key: 'md5' } },
      }),
    ]);
    await until('c1', () => speakers[0]?.peers.has('10.0.0.11'));
    expect([...speakers[0].peers.keys()]).toEqual(['10.0.0.11']);
    expect(errors).toEqual(['BGP peers not configured: their password Secret cannot be read']);
    await daemon.stop();
    await ds.close();
  });

  test('live changes: a new node gets a session, a deleted BGPPeer drops its session, others stay', async () => {
    const { ds, daemon, speakers, until } = await setup([
      MESH_OFF,
      RR,
      node('c1', '10.0.0.11/24', {}, { client: 'true' }),
      CLIENTS_PICK_RR,
    ]);
    await until('c1', () => speakers[0]?.peers.has('10.0.0.11'));
    const s = speakers[0];
    s.calls.length = 0;
    await ds.create(node('c2', '10.0.0.12/24', {}, { client: 'true' }));
    await ds.create(node('c3', '10.0.0.13/24'));
    await ds.create(R('BGPPeer', 'c3-to-rr', { node: 'c3', peerSelector: "rr == 'true'" }));
    await until('c2 and c3', () => s.peers.has('10.0.0.12') && s.peers.has('10.0.0.13'));
    expect(s.calls.sort()).toEqual(['add 10.0.0.12', 'add 10.0.0.13']);
    s.calls.length = 0;
    await ds.delete({ kind: 'BGPPeer', name: 'c3-to-rr' });
    await until('c3 gone', () => !s.peers.has('10.0.0.13'));
    expect(s.calls).toEqual(['remove 10.0.0.13']);
    // the cluster id changes: a new speaker with every peer
    s.calls.length = 0;
    const rr = (await ds.get({ kind: 'Node', name: 'rr1' })) as Resource<'Node'>;
    rr.spec.bgp!.routeReflectorClusterID = '224.0.0.2';
    await ds.update(rr);
    await until('a new speaker', () => speakers.length === 2);
    expect(s.calls).toEqual(['stop']);
    expect(speakers[1].settings.clusterId).toBe('224.0.0.2');
    expect([...speakers[1].peers.keys()]).toEqual(['10.0.0.11', '10.0.0.12']);
    expect(speakers).toHaveLength(2);
    await daemon.stop();
    await ds.close();
  });

  test("prefixAdvertisements: as a calico-node reflector's BIRD, added to what it passes on; a change is set on the running speaker", async () => {
    const withAds = (communities: string[]) =>
      R('BGPConfiguration', 'default', {
        nodeToNodeMeshEnabled: false,
        asNumber: 65000,
        prefixAdvertisements: [{ cidr: '10.244.0.0/16', communities }],
      });
    const { ds, daemon, speakers, until } = await setup([
      withAds(['65000:100']),
      RR,
      node('c1', '10.0.0.11/24', {}, { client: 'true' }),
      CLIENTS_PICK_RR,
    ]);
    await until('c1', () => speakers[0]?.peers.has('10.0.0.11'));
    const s = speakers[0];
    expect(s.settings.exportCommunities).toEqual([
      { cidr: '10.244.0.0/16', communities: ['65000:100'] },
    ]);
    s.calls.length = 0;
    const cfg = (await ds.get({ kind: 'BGPConfiguration', name: 'default' }))!;
    await ds.update({ ...withAds(['65000:1:2']), metadata: cfg.metadata } as Resource);
    await until('the change', () => s.calls.length > 0);
    expect(s.calls).toEqual(['communities 10.244.0.0/16 65000:1:2']);
    expect(speakers).toHaveLength(1);
    await daemon.stop();
    await ds.close();
  });

  test('a bad resource is named and its last good version kept; an unusable Node keeps the last good config', async () => {
    const { ds, daemon, speakers, errors, until } = await setup([
      MESH_OFF,
      RR,
      node('c1', '10.0.0.11/24', {}, { client: 'true' }),
      CLIENTS_PICK_RR,
    ]);
    await until('c1', () => speakers[0]?.peers.has('10.0.0.11'));
    const s = speakers[0];
    s.calls.length = 0;
    // written around validation: an unparsable selector
    const bad = structuredClone(CLIENTS_PICK_RR) as Resource<'BGPPeer'>;
    bad.spec.nodeSelector = "client == 'true' &&";
    bad.metadata.resourceVersion = (await ds.get({
      kind: 'BGPPeer',
      name: 'clients-pick-rr',
    }))!.metadata.resourceVersion;
    await ds.update(bad);
    await until('the error', () => errors.length > 0);
    expect(errors[0]).toMatch(
      /^invalid BGPPeer clients-pick-rr: spec\.nodeSelector: selector .*; keeping its last good version$/,
    );
    expect(s.calls).toEqual([]);
    // the reflector's Node loses its cluster id: said so, nothing changes
    const rr = (await ds.get({ kind: 'Node', name: 'rr1' })) as Resource<'Node'>;
    delete rr.spec.bgp!.routeReflectorClusterID;
    await ds.update(rr);
    await until('the second error', () => errors.length > 1);
    expect(errors[1]).toBe(
      'Node "rr1" has no spec.bgp.routeReflectorClusterID (tortie-rr needs spec.bgp.ipv4Address and spec.bgp.routeReflectorClusterID); keeping the last good configuration',
    );
    expect(s.calls).toEqual([]);
    expect(daemon.status().error).toMatch(/routeReflectorClusterID/);
    expect(daemon.status().config?.peers.map((p) => p.address)).toEqual(['10.0.0.11']);
    await daemon.stop();
    await ds.close();
  });

  test('an unreachable datastore is named, retried, and nothing is applied meanwhile', async () => {
    const mem = new MemoryDatastore();
    let down = true;
    const flaky: Datastore = Object.assign(Object.create(mem) as Datastore, {
      list: (o: Parameters<Datastore['list']>[0]) =>
        down ? Promise.reject(new Error('connection refused')) : mem.list(o),
    });
    const { daemon, speakers, errors, until } = await setup(
      [MESH_OFF, RR, node('c1', '10.0.0.11/24', {}, { client: 'true' }), CLIENTS_PICK_RR],
      flaky,
    );
    await until('the error', () => errors.length > 0);
    expect(errors[0]).toBe(
      'cannot read the datastore (memory): connection refused; keeping the last good configuration and retrying',
    );
    expect(daemon.status().error).toBe('datastore memory: connection refused');
    expect(speakers).toEqual([]);
    down = false;
    await until('c1', () => speakers[0]?.peers.has('10.0.0.11'));
    expect(errors).toHaveLength(1); // one message per outage, not per retry
    expect(daemon.status().error).toBeUndefined();
    await daemon.stop();
  });

  test('a Node without an address or absent is a clear error', () => {
    const world = (nodes: Resource<'Node'>[]) => ({ me: 'rr1', nodes, peers: [] });
    expect(() => reflectorTopology(world([]))).toThrow('Node "rr1" is not in the datastore');
    expect(() => reflectorTopology(world([R('Node', 'rr1', {}) as Resource<'Node'>]))).toThrow(
      'Node "rr1" has no spec.bgp.ipv4Address',
    );
  });
});
