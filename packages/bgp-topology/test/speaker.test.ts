// From a computed BgpConfig to the speaker: the pure plan (only what changed) and the
// speaker-wide settings.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BgpConfig, BgpPeer } from '../src';
import {
  bgpSettings,
  logMissingPasswords,
  normalRoutePriority,
  peerConfig,
  planBgp,
  resolvePasswords,
  secretFiles,
  speakerConfig,
} from '../src';
import { parseResource, type Resource } from '@tortie/api';

const base: BgpConfig = {
  enabled: true,
  asNumber: 64512,
  routerId: '10.0.0.1',
  listenPort: 179,
  peers: [
    { name: 'mesh-10.0.0.2', address: '10.0.0.2', port: 179, asNumber: 64512, restartTimeS: 120 },
    {
      name: 'mesh-10.0.0.3',
      address: '10.0.0.3',
      port: 179,
      asNumber: 64512,
      restartTimeS: 120,
      passive: true,
    },
  ],
  originate: ['10.244.1.0/26'],
};

describe('planBgp', () => {
  test('first config: start, add every peer, originate every block', () => {
    const p = planBgp(undefined, base);
    expect(p.restart).toBe(true);
    expect(p.addPeers.map((x) => [x.address, x.passive, x.nextHopSelf])).toEqual([
      ['10.0.0.2', false, false],
      ['10.0.0.3', true, false],
    ]);
    expect(p.originate).toEqual(['10.244.1.0/26']);
  });

  test('only what changed: a peer gone, a peer changed, a block added', () => {
    const next: BgpConfig = {
      ...base,
      peers: [
        {
          name: 'mesh-10.0.0.2',
          address: '10.0.0.2',
          port: 179,
          asNumber: 64512,
          restartTimeS: 120,
          rrClient: true,
        },
        { name: 'tor', address: '192.168.1.1', port: 179, asNumber: 65000, restartTimeS: 120 },
      ],
      originate: ['10.244.1.0/26', '10.244.1.64/26'],
    };
    const p = planBgp(base, next);
    expect(p.restart).toBe(false);
    expect(p.removePeers.sort()).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(p.addPeers.map((x) => [x.address, x.routeReflectorClient, x.nextHopSelf])).toEqual([
      ['10.0.0.2', true, false],
      ['192.168.1.1', false, true], // eBGP ToR: our address as next hop
    ]);
    expect(p).toMatchObject({ withdraw: [], originate: ['10.244.1.64/26'] });
    expect(planBgp(next, next)).toEqual({
      restart: false,
      removePeers: [],
      addPeers: [],
      setBfd: [],
      withdraw: [],
      originate: [],
    });
  });

  test('a peer whose only change is BFD keeps its session: its BFD is set, not the peer re-added', () => {
    const bfd = { minTxMs: 100, minRxMs: 100, multiplier: 3 };
    const on = { ...base, peers: base.peers.map((p) => ({ ...p, bfd })) };
    const retimed = {
      ...base,
      peers: base.peers.map((p) => ({ ...p, bfd: { ...bfd, minTxMs: 200 } })),
    };
    for (const [from, to, want] of [
      [base, on, bfd],
      [on, retimed, { ...bfd, minTxMs: 200 }],
      [on, base, undefined],
    ] as const) {
      const p = planBgp(from, to);
      expect(p).toMatchObject({ restart: false, removePeers: [], addPeers: [] });
      expect(p.setBfd).toEqual(
        base.peers.map((x) => ({ key: x.address, ...(want ? { bfd: want } : {}) })),
      );
    }
    // another change with it: the peer is re-created, BFD included
    const moved = { ...on, peers: on.peers.map((p) => ({ ...p, asNumber: 65009 })) };
    expect(planBgp(base, moved)).toMatchObject({
      setBfd: [],
      removePeers: ['10.0.0.2', '10.0.0.3'],
    });
  });

  test('a new log level is set on the running speaker, without a restart', () => {
    const p = planBgp(base, { ...base, logLevel: 'debug' });
    expect(p).toMatchObject({ restart: false, logLevel: 'debug', addPeers: [], removePeers: [] });
    expect(planBgp(base, { ...base, logLevel: 'info' })).not.toHaveProperty('logLevel');
  });

  test("a changed normal route priority originates that family's prefixes again, nothing else", () => {
    const two = { ...base, originate: ['10.244.1.0/26', 'fd10::/122'] };
    expect(normalRoutePriority(two, '10.244.1.0/26')).toBe(1024);
    const v4 = { ...two, normalRoutePriority: { ipv4: 700 } };
    expect(normalRoutePriority(v4, '10.244.1.0/26')).toBe(700);
    expect(normalRoutePriority(v4, 'fd10::/122')).toBe(1024);
    expect(planBgp(two, v4)).toMatchObject({ restart: false, originate: ['10.244.1.0/26'] });
    expect(
      planBgp(v4, { ...two, normalRoutePriority: { ipv4: 700, ipv6: 900 } }).originate,
    ).toEqual(['fd10::/122']);
    // 1024 written out is the default: no change
    expect(planBgp(two, { ...two, normalRoutePriority: { ipv4: 1024 } }).originate).toEqual([]);
  });

  test('normalRoutePriority comes from BGPConfiguration default only, as confd reads it', () => {
    const cfg = (name: string, spec: object) =>
      parseResource({
        apiVersion: 'projectcalico.org/v3',
        kind: 'BGPConfiguration',
        metadata: { name },
        spec,
      }) as Resource<'BGPConfiguration'>;
    expect(bgpSettings([cfg('default', {})]).normalRoutePriority).toBeUndefined();
    expect(
      bgpSettings([
        cfg('default', { ipv4NormalRoutePriority: 700 }),
        cfg('node.n1', { ipv6NormalRoutePriority: 5 }),
      ]).normalRoutePriority,
    ).toEqual({ ipv4: 700 });
  });

  test('a new AS number or cluster id restarts the speaker', () => {
    expect(planBgp(base, { ...base, asNumber: 64513 }).restart).toBe(true);
    expect(planBgp(base, { ...base, routeReflectorClusterId: '1.0.0.1' }).restart).toBe(true);
  });
});

describe('graceful restart', () => {
  test("each peer announces its own restart time (bird.cfg's graceful restart time)", () => {
    const p = { ...base.peers[0], restartTimeS: 300 };
    expect(peerConfig(p, base).gracefulRestart).toEqual({ restartTimeS: 300 });
    // a changed restart time re-creates that peer only
    const plan = planBgp(base, { ...base, peers: [p, base.peers[1]] });
    expect(plan).toMatchObject({ restart: false, removePeers: ['10.0.0.2'] });
    expect(plan.addPeers.map((x) => x.address)).toEqual(['10.0.0.2']);
  });

  test('on by default for every peer, as in Calico (R and F bits, 120 s)', () => {
    expect(speakerConfig(base).gracefulRestart).toEqual({
      enabled: true,
      restartTimeS: 120,
      staleTimeS: 360,
      restarting: true,
      forwardingPreserved: true,
    });
  });
});

describe('passwords', () => {
  const cfg = (peers: BgpPeer[]): BgpConfig => ({
    enabled: true,
    asNumber: 64512,
    routerId: '10.0.0.1',
    listenPort: 179,
    peers,
    originate: [],
  });
  const keyed: BgpPeer = {
    name: 'global-tor',
    address: '192.0.2.1',
    port: 179,
    asNumber: 65100,
    restartTimeS: 120,
    password: { name: 'tor', key: 'k' },
  };

  test('a read key becomes the speaker peer password; an unreadable one leaves the peer out', async () => {
    const plain = { ...keyed, name: 'mesh-10.0.0.2', address: '10.0.0.2', password: undefined };
    const found = await resolvePasswords(cfg([keyed, plain]), async () => 's3cret');
    expect(found.missing).toEqual([]);
    expect(peerConfig(found.config.peers[0], found.config).password).toBe('s3cret');
    expect(peerConfig(found.config.peers[1], found.config).password).toBeUndefined();
    const lost = await resolvePasswords(cfg([keyed, plain]), async () => undefined);
    expect(lost.config.peers.map((p) => p.name)).toEqual(['mesh-10.0.0.2']);
    expect(lost.missing).toEqual([{ peer: 'global-tor', secret: { name: 'tor', key: 'k' } }]);
  });

  test('logMissingPasswords: one error line naming each left-out peer and its Secret key, none when nothing is missing', () => {
    const lines: Array<[string, object]> = [];
    const logger = { error: (message: string, meta: object) => lines.push([message, meta]) };
    logMissingPasswords(logger, []);
    expect(lines).toEqual([]);
    logMissingPasswords(logger, [
      { peer: 'global-tor', secret: { name: 'tor', key: 'k' } },
      { peer: 'mesh-10.0.0.2', secret: { name: 'bgp', key: 'mesh' } },
    ]);
    expect(lines).toEqual([
      [
        'BGP peers not configured: their password Secret cannot be read',
        { missing: ['global-tor: tor/k', 'mesh-10.0.0.2: bgp/mesh'] },
      ],
    ]);
  });

  test('a changed key re-creates the session', async () => {
    const a = (await resolvePasswords(cfg([keyed]), async () => 'k1')).config;
    const b = (await resolvePasswords(cfg([keyed]), async () => 'k2')).config;
    const plan = planBgp(a, b);
    expect(plan.removePeers).toEqual(['192.0.2.1']);
    expect(plan.addPeers.map((p) => p.password)).toEqual(['k2']);
    expect(planBgp(a, a).addPeers).toEqual([]);
  });

  test('secretFiles reads <dir>/<secret>/<key> as Kubernetes mounts a Secret, and no path outside', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-secrets-'));
    try {
      fs.mkdirSync(path.join(dir, 'tor'));
      fs.writeFileSync(path.join(dir, 'tor', 'k'), 's3cret');
      fs.writeFileSync(path.join(dir, 'outside'), 'no');
      const read = secretFiles(dir);
      expect(await read({ name: 'tor', key: 'k' })).toBe('s3cret');
      expect(await read({ name: 'tor', key: 'missing' })).toBeUndefined();
      expect(await read({ name: 'nope', key: 'k' })).toBeUndefined();
      expect(await read({ name: 'tor', key: '../outside' })).toBeUndefined();
      expect(await read({ name: '..', key: 'outside' })).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

test("nextHopMode reaches the speaker's nextHopSelf: Self on iBGP, Keep on eBGP, else BGP's default", () => {
  const me = { ...base, peers: [] };
  const p = (asNumber: number, extra: object = {}) =>
    peerConfig(
      { name: 'x', address: '192.0.2.1', port: 179, asNumber, restartTimeS: 120, ...extra },
      me,
    ).nextHopSelf;
  expect(p(64512)).toBe(false); // iBGP keeps the next hop
  expect(p(64512, { nextHopSelf: true })).toBe(true);
  expect(p(65100)).toBe(true); // eBGP: ours
  expect(p(65100, { keepOriginalNextHop: true })).toBe(false);
  const keep = (asNumber: number, extra: object = {}) =>
    peerConfig(
      { name: 'x', address: '192.0.2.1', port: 179, asNumber, restartTimeS: 120, ...extra },
      me,
    ).nextHopKeep;
  expect(keep(65100, { keepOriginalNextHop: true })).toBe(true);
  expect(keep(65100)).toBeUndefined();
});

test('localAsNumber reaches the speaker as localAsn and decides eBGP or iBGP', () => {
  const me = { ...base, peers: [] };
  const cfg = (asNumber: number, localAsNumber?: number) =>
    peerConfig(
      {
        name: 'x',
        address: '192.0.2.1',
        port: 179,
        asNumber,
        restartTimeS: 120,
        ...(localAsNumber ? { localAsNumber } : {}),
      },
      me,
    );
  expect(cfg(65100, 64999)).toMatchObject({ localAsn: 64999, nextHopSelf: true });
  // the peer is in the AS we present: iBGP, its next hop kept
  expect(cfg(64999, 64999)).toMatchObject({ localAsn: 64999, nextHopSelf: false });
  // the node's own AS towards a peer that presents another local AS is eBGP
  expect(cfg(64512, 64999).nextHopSelf).toBe(true);
  expect(cfg(65100)).not.toHaveProperty('localAsn');
});

test("filters reach the speaker under the session's family", () => {
  const me = { ...base, peers: [] };
  const rule = { action: 'Reject' as const };
  const v4 = peerConfig(
    {
      name: 'x',
      address: '192.0.2.1',
      port: 179,
      asNumber: 1,
      restartTimeS: 120,
      importFilter: [rule],
    },
    me,
  );
  const v6 = peerConfig(
    {
      name: 'x',
      address: 'fd00::1',
      port: 179,
      asNumber: 1,
      restartTimeS: 120,
      exportFilter: [rule],
    },
    me,
  );
  expect(v4).toMatchObject({ importFilter: { ipv4: [rule] } });
  expect(v4).not.toHaveProperty('exportFilter');
  expect(v6).toMatchObject({ exportFilter: { ipv6: [rule] } });
});
