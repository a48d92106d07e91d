// The IPAM behaviour suite, run against every datastore backend (memory, real etcd).
import { parseResource, type Resource } from '@tortie/api';
import type { Datastore } from '@tortie/datastore';
import { IpamClient, IpamError, isClean, parseCidr, containsIp, parseIp } from '../src';

export function res(kind: string, name: string, spec: object, extra: object = {}): Resource {
  return parseResource({
    apiVersion: 'tortie.io/v1',
    kind,
    metadata: { name, ...extra },
    spec,
  });
}

export const IPAM_KINDS = [
  'IPPool',
  'IPAMBlock',
  'IPAMHandle',
  'BlockAffinity',
  'IPReservation',
  'IPAMConfiguration',
  'Node',
  'WorkloadEndpoint',
  'Profile',
] as const;

function inCidr(ip: string, cidr: string) {
  const { version, value } = parseIp(ip);
  return containsIp(parseCidr(cidr), version, value);
}

async function node(ds: Datastore, name: string, labels: Record<string, string> = {}) {
  await ds.create(res('Node', name, {}, { labels }));
}

async function wep(ds: Datastore, ns: string, pod: string, ip: string, containerID?: string) {
  await ds.create(
    res(
      'WorkloadEndpoint',
      `${pod}-eth0`,
      { node: 'n1', pod, ipNetworks: [`${ip}/32`], interfaceName: 'cali0', containerID },
      { namespace: ns },
    ),
  );
}

/** `make` returns a fresh, empty store per test; `extra` gives a second client's store (etcd: another connection). */
export function ipamSuite(make: () => Promise<Datastore>, extra: () => Promise<Datastore>) {
  let ds: Datastore;
  let ipam: IpamClient;
  beforeEach(async () => {
    ds = await make();
    ipam = new IpamClient(ds);
    await node(ds, 'n1', { zone: 'a' });
    await node(ds, 'n2', { zone: 'b' });
  });

  test('a node claims a /26 block and allocates from it in order', async () => {
    await ds.create(res('IPPool', 'p', { cidr: '10.1.0.0/24' }));
    const a = await ipam.autoAssign({ handleId: 'h1', node: 'n1', num4: 2 });
    const b = await ipam.autoAssign({ handleId: 'h2', node: 'n1', num4: 1 });
    const [blk] = (await ds.list({ kind: 'IPAMBlock' })).items as Resource<'IPAMBlock'>[];
    expect(parseCidr(blk.spec.cidr).prefix).toBe(26);
    expect(blk.spec.affinity).toBe('host:n1');
    for (const ip of [...a.ipv4, ...b.ipv4]) expect(inCidr(ip, blk.spec.cidr)).toBe(true);
    expect(new Set([...a.ipv4, ...b.ipv4]).size).toBe(3);
    const aff = (await ds.list({ kind: 'BlockAffinity' })).items as Resource<'BlockAffinity'>[];
    expect(aff.map((x) => [x.spec.node, x.spec.cidr, x.spec.state])).toEqual([
      ['n1', blk.spec.cidr, 'confirmed'],
    ]);
    const h = (await ds.get({ kind: 'IPAMHandle', name: 'h1' })) as Resource<'IPAMHandle'>;
    expect(h.spec.block).toEqual({ [blk.spec.cidr]: 2 });
    expect(await ipam.ipsByHandle('h1')).toEqual(a.ipv4);
  });

  test('IPv4 and IPv6 together: /26 and /122 blocks', async () => {
    await ds.create(res('IPPool', 'v4', { cidr: '10.2.0.0/16' }));
    await ds.create(res('IPPool', 'v6', { cidr: 'fd00:10::/64' }));
    const r = await ipam.autoAssign({ handleId: 'h', node: 'n1', num4: 1, num6: 1 });
    expect(r.ipv4).toHaveLength(1);
    expect(r.ipv6).toHaveLength(1);
    expect(inCidr(r.ipv6[0], 'fd00:10::/64')).toBe(true);
    const cidrs = ((await ds.list({ kind: 'IPAMBlock' })).items as Resource<'IPAMBlock'>[]).map(
      (b) => parseCidr(b.spec.cidr).prefix,
    );
    expect(cidrs.sort()).toEqual([122, 26]);
  });

  test('each node gets its own blocks; a full pool is borrowed from unless strict affinity', async () => {
    await ds.create(res('IPPool', 'p', { cidr: '10.3.0.0/25' })); // two /26 blocks
    const n1 = await ipam.autoAssign({ handleId: 'a', node: 'n1', num4: 64 });
    const n2 = await ipam.autoAssign({ handleId: 'b', node: 'n2', num4: 60 });
    const blocks = (await ds.list({ kind: 'IPAMBlock' })).items as Resource<'IPAMBlock'>[];
    expect(blocks.map((b) => b.spec.affinity).sort()).toEqual(['host:n1', 'host:n2']);
    // n1's block is full and no block is free: n1 borrows from n2's block
    const more = await ipam.autoAssign({ handleId: 'c', node: 'n1', num4: 2 });
    const n2Block = blocks.find((b) => b.spec.affinity === 'host:n2')!.spec.cidr;
    expect(more.ipv4.every((ip) => inCidr(ip, n2Block))).toBe(true);
    expect(new Set([...n1.ipv4, ...n2.ipv4, ...more.ipv4]).size).toBe(126);

    await ds.create(res('IPAMConfiguration', 'default', { strictAffinity: true }));
    await expect(ipam.autoAssign({ handleId: 'd', node: 'n1', num4: 1 })).rejects.toThrow(
      'no free IPv4 address for node "n1" in 10.3.0.0/25 (strict affinity: no borrowing)',
    );
    // all or nothing: the failed request holds nothing
    expect(await ipam.ipsByHandle('d')).toEqual([]);
  });

  test('pools: nodeSelector, disabled, requested pool, reservations', async () => {
    await ds.create(res('IPPool', 'a-zone', { cidr: '10.4.0.0/24', nodeSelector: 'zone == "a"' }));
    await ds.create(res('IPPool', 'b-zone', { cidr: '10.5.0.0/24', nodeSelector: 'zone == "b"' }));
    await ds.create(res('IPPool', 'off', { cidr: '10.6.0.0/24', disabled: true }));
    await ds.create(res('IPReservation', 'r', { reservedCIDRs: ['10.5.0.0/30'] }));
    const a = await ipam.autoAssign({ handleId: 'a', node: 'n1', num4: 1 });
    expect(inCidr(a.ipv4[0], '10.4.0.0/24')).toBe(true);
    const b = await ipam.autoAssign({ handleId: 'b', node: 'n2', num4: 8 });
    expect(b.ipv4.every((ip) => inCidr(ip, '10.5.0.0/24') && !inCidr(ip, '10.5.0.0/30'))).toBe(
      true,
    );
    const req = await ipam.autoAssign({ handleId: 'c', node: 'n1', num4: 1, pools4: ['b-zone'] });
    expect(inCidr(req.ipv4[0], '10.5.0.0/24')).toBe(true);
    await expect(
      ipam.autoAssign({ handleId: 'd', node: 'n1', num4: 1, pools4: ['off'] }),
    ).rejects.toThrow('IP pool "off" is disabled');
    await expect(
      ipam.autoAssign({ handleId: 'd', node: 'n1', num4: 1, pools4: ['nope'] }),
    ).rejects.toThrow('IPv4 pool "nope" does not exist');
    await expect(ipam.autoAssign({ handleId: 'd', node: 'n1', num6: 1 })).rejects.toThrow(
      new IpamError('NoPool', 'no enabled IPv6 pool selects node "n1"'),
    );
  });

  test('pools: namespaceSelector and assignmentMode Manual, as libcalico-go determinePools', async () => {
    // the namespace "prod" as the Kubernetes datastore shows it: profile kns.prod
    await ds.create(res('Profile', 'kns.prod', { labelsToApply: { 'pcns.tier': 'prod' } }));
    await ds.create(
      res('IPPool', 'a-prod', { cidr: '10.9.0.0/24', namespaceSelector: 'tier == "prod"' }),
    );
    await ds.create(
      res('IPPool', 'b-dev', {
        cidr: '10.9.1.0/24',
        namespaceSelector: "kubernetes.io/metadata.name == 'dev'",
      }),
    );
    await ds.create(res('IPPool', 'c-manual', { cidr: '10.9.2.0/24', assignmentMode: 'Manual' }));
    const prod = await ipam.autoAssign({ handleId: 'p', node: 'n1', num4: 1, namespace: 'prod' });
    expect(inCidr(prod.ipv4[0], '10.9.0.0/24')).toBe(true);
    // no labels beyond the name label Kubernetes gives every namespace
    const dev = await ipam.autoAssign({ handleId: 'd', node: 'n1', num4: 1, namespace: 'dev' });
    expect(inCidr(dev.ipv4[0], '10.9.1.0/24')).toBe(true);
    // a Manual pool only when asked for, and then whatever its selectors say
    await expect(
      ipam.autoAssign({ handleId: 'o', node: 'n1', num4: 1, namespace: 'other' }),
    ).rejects.toThrow('no enabled IPv4 pool selects node "n1" and namespace "other"');
    const manual = await ipam.autoAssign({
      handleId: 'm',
      node: 'n1',
      num4: 1,
      namespace: 'other',
      pools4: ['c-manual'],
    });
    expect(inCidr(manual.ipv4[0], '10.9.2.0/24')).toBe(true);
    const asked = await ipam.autoAssign({
      handleId: 'x',
      node: 'n1',
      num4: 1,
      namespace: 'dev',
      pools4: ['a-prod'],
    });
    expect(inCidr(asked.ipv4[0], '10.9.0.0/24')).toBe(true);
    // no namespace (a tunnel address): selectors read empty labels, as Calico's nil namespace
    await expect(ipam.autoAssign({ handleId: 't', node: 'n1', num4: 1 })).rejects.toThrow(
      'no enabled IPv4 pool selects node "n1"',
    );
    // one batch, two namespaces: each gets its own pool
    const [p2, d2] = await Promise.all([
      ipam.autoAssign({ handleId: 'p2', node: 'n1', num4: 1, namespace: 'prod' }),
      ipam.autoAssign({ handleId: 'd2', node: 'n1', num4: 1, namespace: 'dev' }),
    ]);
    expect(inCidr(p2.ipv4[0], '10.9.0.0/24')).toBe(true);
    expect(inCidr(d2.ipv4[0], '10.9.1.0/24')).toBe(true);
  });

  test('release by handle or by address; twice is harmless; affine blocks stay', async () => {
    await ds.create(res('IPPool', 'p', { cidr: '10.7.0.0/24' }));
    const a = await ipam.autoAssign({ handleId: 'a', node: 'n1', num4: 3 });
    const b = await ipam.autoAssign({ handleId: 'b', node: 'n1', num4: 2 });
    expect((await ipam.releaseByHandle('a')).sort()).toEqual([...a.ipv4].sort());
    expect(await ipam.releaseByHandle('a')).toEqual([]);
    expect(await ds.get({ kind: 'IPAMHandle', name: 'a' })).toBeUndefined();
    expect(await ipam.releaseIps([b.ipv4[0]])).toEqual([b.ipv4[0]]);
    expect(await ipam.releaseIps([b.ipv4[0]])).toEqual([]);
    const h = (await ds.get({ kind: 'IPAMHandle', name: 'b' })) as Resource<'IPAMHandle'>;
    expect(Object.values(h.spec.block)).toEqual([1]);
    await ipam.releaseIps([b.ipv4[1]]);
    expect(await ds.get({ kind: 'IPAMHandle', name: 'b' })).toBeUndefined();
    // the block is empty but still affine to n1: it stays for n1's next pod
    expect((await ds.list({ kind: 'IPAMBlock' })).items).toHaveLength(1);
  });

  test('a borrowed block emptied after its node left is deleted', async () => {
    await ds.create(res('IPPool', 'p', { cidr: '10.8.0.0/26' })); // one block
    const a = await ipam.autoAssign({ handleId: 'a', node: 'n1', num4: 1 });
    const b = await ipam.autoAssign({ handleId: 'b', node: 'n2', num4: 1 }); // borrows
    expect(await ipam.releaseNodeAffinities('n1')).toEqual(['10.8.0.0/26']);
    expect((await ds.list({ kind: 'BlockAffinity' })).items).toEqual([]);
    const [blk] = (await ds.list({ kind: 'IPAMBlock' })).items as Resource<'IPAMBlock'>[];
    expect(blk.spec.affinity).toBeUndefined();
    await ipam.releaseIps(a.ipv4);
    expect((await ds.list({ kind: 'IPAMBlock' })).items).toHaveLength(1);
    await ipam.releaseByHandle('b');
    expect((await ds.list({ kind: 'IPAMBlock' })).items).toEqual([]);
    expect(b.ipv4).toHaveLength(1);
  });

  test('a fixed address: claimed for the node, refused when in use', async () => {
    await ds.create(res('IPPool', 'p', { cidr: '10.9.0.0/24' }));
    await ipam.assignIp('10.9.0.130', 'fixed', 'n2', { namespace: 'ns', pod: 'web' });
    const [blk] = (await ds.list({ kind: 'IPAMBlock' })).items as Resource<'IPAMBlock'>[];
    expect([blk.spec.cidr, blk.spec.affinity]).toEqual(['10.9.0.128/26', 'host:n2']);
    await expect(ipam.assignIp('10.9.0.130', 'other', 'n1')).rejects.toThrow(
      '10.9.0.130 is already in use (handle fixed)',
    );
    await expect(ipam.assignIp('10.99.0.1', 'other', 'n1')).rejects.toThrow(
      '10.99.0.1 is not in any IP pool',
    );
    expect(await ipam.ipsByHandle('fixed')).toEqual(['10.9.0.130']);
  });

  test('check finds leaks and gc releases them after the grace period only', async () => {
    await ds.create(res('IPPool', 'p', { cidr: '10.10.0.0/24' }));
    const live = await ipam.autoAssign({
      handleId: 'live',
      node: 'n1',
      num4: 1,
      attrs: { namespace: 'ns', pod: 'alive', containerID: 'c1' },
    });
    await wep(ds, 'ns', 'alive', live.ipv4[0], 'c1');
    const gone = await ipam.autoAssign({
      handleId: 'gone',
      node: 'n1',
      num4: 2,
      attrs: { namespace: 'ns', pod: 'deleted' },
    });
    await wep(ds, 'ns', 'stray', '10.10.0.250');
    expect(isClean(await ipam.check())).toBe(false);
    const r = await ipam.check();
    expect(r.leakedHandles.map((h) => [h.handleId, h.ips.sort(), h.reason])).toEqual([
      ['gone', [...gone.ipv4].sort(), 'pod ns/deleted does not exist'],
    ]);
    expect(r.endpointsWithoutAllocation).toEqual([
      { endpoint: 'ns/stray-eth0', ip: '10.10.0.250' },
    ]);
    expect(r.summary.allocated).toBe(3);

    // too young: a pod in the middle of its ADD keeps its address
    expect((await ipam.gc({ gracePeriodMs: 60_000 })).releasedIps).toEqual([]);
    const done = await ipam.gc({ gracePeriodMs: 0 });
    expect(done.releasedIps.sort()).toEqual([...gone.ipv4].sort());
    const after = await ipam.check();
    expect(after.leakedHandles).toEqual([]);
    expect(after.summary.allocated).toBe(1);
  });

  test('gc drops the affinities of a deleted node and a handle record lost in a crash', async () => {
    await ds.create(res('IPPool', 'p', { cidr: '10.11.0.0/24' }));
    await ipam.autoAssign({
      handleId: 'x',
      node: 'n2',
      num4: 1,
      attrs: { namespace: 'a', pod: 'b' },
    });
    await ds.delete({ kind: 'Node', name: 'n2' });
    await ds.delete({ kind: 'IPAMHandle', name: 'x' }); // as if we crashed between writes
    const r = await ipam.check();
    expect(r.orphanAffinities.map((o) => o.node)).toEqual(['n2']);
    expect(r.allocationsWithoutHandle).toHaveLength(1);
    const g = await ipam.gc({ gracePeriodMs: 0 });
    expect(g.releasedIps).toHaveLength(1);
    expect(g.releasedAffinities).toHaveLength(1);
    expect(isClean(await ipam.check())).toBe(true);
    expect((await ds.list({ kind: 'IPAMBlock' })).items).toEqual([]);
  });

  test('concurrent allocators on two nodes fill a /24 exactly, no address twice', async () => {
    await ds.create(res('IPPool', 'p', { cidr: '10.12.0.0/24' })); // 4 x /26 = 256 addresses
    const clients = [ipam, new IpamClient(await extra()), new IpamClient(await extra()), ipam];
    const jobs: Array<Promise<string[]>> = [];
    for (let c = 0; c < 4; c++) {
      for (let i = 0; i < 64; i++) {
        jobs.push(
          clients[c]
            .autoAssign({ handleId: `c${c}-${i}`, node: c % 2 ? 'n2' : 'n1', num4: 1 })
            .then((r) => r.ipv4),
        );
      }
    }
    const ips = (await Promise.all(jobs)).flat();
    expect(ips).toHaveLength(256);
    expect(new Set(ips).size).toBe(256);
    const blocks = (await ds.list({ kind: 'IPAMBlock' })).items as Resource<'IPAMBlock'>[];
    expect(blocks).toHaveLength(4);
    expect(blocks.every((b) => b.spec.unallocated.length === 0)).toBe(true);
    const r = await ipam.check();
    expect(r.handleMismatches).toEqual([]);
    expect(r.allocationsWithoutHandle).toEqual([]);
    await Promise.all(
      jobs.map((_, k) => clients[k % 4].releaseByHandle(`c${Math.floor(k / 64)}-${k % 64}`)),
    );
    const end = await ipam.check();
    expect(end.summary.allocated).toBe(0);
    expect((await ds.list({ kind: 'IPAMHandle' })).items).toEqual([]);
  }, 120_000);

  test("a node's next allocation writes its block and handle without reading them first; another client's write in between is caught", async () => {
    await ds.create(res('IPPool', 'p', { cidr: '10.14.0.0/24' }));
    const reads: string[] = [];
    const counting: Datastore = Object.create(ds, {
      get: {
        value: (k: { kind: string; name: string }) => (reads.push(k.kind), ds.get(k as never)),
      },
    }) as Datastore;
    const client = new IpamClient(counting);
    const first = await client.autoAssign({ handleId: 'r1', node: 'n1', num4: 1 });
    reads.length = 0;
    const second = await client.autoAssign({ handleId: 'r2', node: 'n1', num4: 1 });
    // the compare-and-swap of the block as this client wrote it, and a handle created
    // outright: no read of either (each was a round trip before the write)
    expect(reads.filter((k) => k === 'IPAMBlock' || k === 'IPAMHandle')).toEqual([]);
    // another client allocates in the same block: this client's copy is stale now
    const third = await new IpamClient(await extra()).autoAssign({
      handleId: 'r3',
      node: 'n1',
      num4: 1,
    });
    const fourth = await client.autoAssign({ handleId: 'r4', node: 'n1', num4: 1 });
    const ips = [first, second, third, fourth].flatMap((r) => r.ipv4);
    expect(new Set(ips).size).toBe(4);
    expect(ips.every((ip) => inCidr(ip, '10.14.0.0/26') || inCidr(ip, '10.14.0.0/24'))).toBe(true);
    expect((await ds.list({ kind: 'IPAMBlock' })).items).toHaveLength(1);
    const r = await client.check();
    expect(r.handleMismatches).toEqual([]);
    expect(r.allocationsWithoutHandle).toEqual([]);
    expect(r.summary.allocated).toBe(4);
  });

  test('a burst on one node shares block writes; a request that cannot be served fails alone', async () => {
    await ds.create(res('IPPool', 'p', { cidr: '10.13.0.0/24' }));
    await ds.create(res('IPPool', 'v6', { cidr: 'fd00:13::/120' }));
    let blockWrites = 0;
    const counting: Datastore = Object.create(ds, {
      update: {
        value: (r: Resource) => {
          if (r.kind === 'IPAMBlock') blockWrites++;
          return ds.update(r);
        },
      },
    }) as Datastore;
    const client = new IpamClient(counting);
    const burst = Array.from({ length: 20 }, (_, i) =>
      client.autoAssign({ handleId: `b${i}`, node: 'n1', num4: 1, num6: i % 2 }),
    );
    const bad = client.autoAssign({ handleId: 'bad', node: 'n1', num4: 1, pools4: ['nope'] });
    const results = await Promise.all(burst);
    await expect(bad).rejects.toThrow(IpamError);
    const v4 = results.flatMap((r) => r.ipv4);
    expect(new Set(v4).size).toBe(20);
    expect(results.filter((r) => r.ipv6.length === 1)).toHaveLength(10);
    // one write per block and version for the whole burst, not one per pod
    expect(blockWrites).toBeLessThanOrEqual(4);
    for (let i = 0; i < 20; i++)
      expect(await client.ipsByHandle(`b${i}`)).toEqual([...results[i].ipv4, ...results[i].ipv6]);
    expect(await client.ipsByHandle('bad')).toEqual([]);
    const r = await client.check();
    expect(r.handleMismatches).toEqual([]);
    expect(r.allocationsWithoutHandle).toEqual([]);
    // and the pods deleted at once free their addresses in shared writes too
    blockWrites = 0;
    const freed = await Promise.all(results.map((_, i) => client.releaseByHandle(`b${i}`)));
    expect(freed.flat().sort()).toEqual(results.flatMap((x) => [...x.ipv4, ...x.ipv6]).sort());
    expect(blockWrites).toBeLessThanOrEqual(4);
    expect((await client.check()).summary.allocated).toBe(0);
  });
}
