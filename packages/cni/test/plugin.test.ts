// Plugin logic without root: config and environment parsing, the exact ip commands, and
// ADD/DEL/CHECK with a recording kernel side, the memory datastore and a fake pod source.
import { parseResource, type Resource } from '@tortie/api';
import { MemoryDatastore, type K8sPod } from '@tortie/datastore';
import { IpamClient, isClean } from '@tortie/ipam';
import {
  add,
  check,
  CniError,
  del,
  hostBatch,
  parseEnv,
  parseNetConf,
  podBatch,
  resultSchema,
  type Attachment,
  type ObservedAttachment,
  type PluginDeps,
  type PodNetwork,
} from '../src';

const CONF = {
  cniVersion: '1.0.0',
  name: 'k8s-pod-network',
  type: 'tortie',
  nodename: 'n1',
  etcd_endpoints: 'http://127.0.0.1:2379',
};

describe('configuration and environment', () => {
  test('Calico-style fields, with string booleans, and defaults', () => {
    const c = parseNetConf(
      JSON.stringify({
        ...CONF,
        ipam: { type: 'calico-ipam', assign_ipv6: 'true', ipv4_pools: ['a'] },
      }),
    );
    expect(c).toMatchObject({
      mtu: 1500,
      datastore_type: 'etcdv3',
      ipam: { assign_ipv4: true, assign_ipv6: true, ipv4_pools: ['a'] },
    });
  });

  test.each([
    [{ ...CONF, mtu: 10 }, 7, 'mtu'],
    [{ ...CONF, name: undefined }, 7, 'name'],
    [{ ...CONF, etcd_endpoints: undefined }, 7, 'etcd_endpoints is required'],
    [{ ...CONF, cniVersion: '2.0.0' }, 1, 'cniVersion 2.0.0 is not supported'],
  ])('%j is refused with code %i naming %s', (conf, code, what) => {
    let err: CniError | undefined;
    try {
      parseNetConf(JSON.stringify(conf));
    } catch (e) {
      err = e as CniError;
    }
    expect(err?.code).toBe(code);
    expect(err?.message).toContain(what);
  });

  test('CNI_ARGS and required variables per command', () => {
    const env = parseEnv({
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'c1',
      CNI_NETNS: '/var/run/netns/x',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web',
    });
    expect(env.args).toEqual({ IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'ns', K8S_POD_NAME: 'web' });
    // DEL does not need a netns (the container may be gone)
    expect(parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }).netns).toBe(
      undefined,
    );
    expect(() =>
      parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0' }),
    ).toThrow('CNI_NETNS is required for ADD');
    expect(() => parseEnv({ CNI_COMMAND: 'FROB' })).toThrow('CNI_COMMAND must be');
    expect(() => parseEnv({ CNI_COMMAND: 'VERSION', CNI_ARGS: 'novalue' })).toThrow(
      'CNI_ARGS: "novalue" is not KEY=VALUE',
    );
  });
});

describe('the ip commands', () => {
  const a: Attachment = {
    hostIface: 'cali0123456789a',
    podIface: 'eth0',
    podMac: '02:00:00:00:00:01',
    netns: '/var/run/netns/pod',
    ipv4: ['10.0.0.5'],
    ipv6: ['fd00::5'],
  };
  test('host side: veth created with its peer in the pod netns, then up, then /32 and /128 routes', () => {
    expect(hostBatch(a, 1450)).toEqual([
      'link add cali0123456789a address ee:ee:ee:ee:ee:ee mtu 1450 type veth peer name eth0 address 02:00:00:00:00:01 mtu 1450 netns /var/run/netns/pod',
      'link set cali0123456789a addrgenmode none',
      'addr add fe80::ecee:eeff:feee:eeee/64 dev cali0123456789a nodad',
      'link set cali0123456789a up',
      'route replace 10.0.0.5/32 dev cali0123456789a scope link',
      'route replace fd00::5/128 dev cali0123456789a',
    ]);
  });
  test('pod side: address, permanent gateway neighbour, gateway route, default route', () => {
    expect(podBatch({ ...a, ipv6: [] })).toEqual([
      'link set lo up',
      'link set eth0 up',
      'addr add 10.0.0.5/32 dev eth0',
      'neigh replace 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent',
      'route replace 169.254.1.1 dev eth0 scope link',
      'route replace default via 169.254.1.1 dev eth0',
    ]);
  });
});

/** A kernel side that records, and can be told to fail. */
class FakeNet implements PodNetwork {
  links = new Map<string, Attachment>();
  failSetup = false;
  async setup(a: Attachment): Promise<void> {
    this.links.set(a.hostIface, a);
    if (this.failSetup) throw new Error('RTNETLINK answers: No such process');
  }
  async teardown(iface: string): Promise<boolean> {
    return this.links.delete(iface);
  }
  async observe(a: Pick<Attachment, 'hostIface'>): Promise<ObservedAttachment> {
    const l = this.links.get(a.hostIface);
    return {
      hostIfaceExists: !!l,
      hostRoutes: l ? [...l.ipv4, ...l.ipv6] : [],
      podAddrs: l ? l.ipv4.map((i) => `${i}/32`) : [],
      podDefaultVia: l ? ['169.254.1.1@eth0'] : [],
    };
  }
}

describe('ADD / DEL / CHECK logic', () => {
  let ds: MemoryDatastore;
  let deps: PluginDeps;
  let net: FakeNet;
  const pods = new Map<string, K8sPod>();
  const conf = parseNetConf(JSON.stringify(CONF));
  const env = (cmd: 'ADD' | 'DEL' | 'CHECK', pod: string, id: string) =>
    parseEnv({
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: id,
      CNI_NETNS: '/var/run/netns/p',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `K8S_POD_NAMESPACE=ns;K8S_POD_NAME=${pod}`,
    });
  const pod = (name: string, annotations: Record<string, string> = {}, labels = {}): K8sPod => ({
    metadata: { name, namespace: 'ns', labels, annotations },
    spec: {
      serviceAccountName: 'sa1',
      containers: [{ ports: [{ name: 'http', containerPort: 8080 }] }],
    },
  });

  beforeEach(async () => {
    ds = new MemoryDatastore();
    net = new FakeNet();
    pods.clear();
    deps = {
      datastore: ds,
      ipam: new IpamClient(ds),
      net,
      node: 'n1',
      pods: { getPod: async (ns, name) => pods.get(`${ns}/${name}`) },
    };
    await ds.create(
      parseResource({
        apiVersion: 'tortie.io/v1',
        kind: 'Node',
        metadata: { name: 'n1' },
        spec: {},
      }),
    );
    for (const [name, cidr] of [
      ['default', '10.1.0.0/24'],
      ['special', '10.2.0.0/24'],
    ]) {
      await ds.create(
        parseResource({
          apiVersion: 'tortie.io/v1',
          kind: 'IPPool',
          metadata: { name },
          spec: { cidr },
        }),
      );
    }
  });

  test('the endpoint carries the pod labels, service account profile and named ports', async () => {
    pods.set('ns/web', pod('web', {}, { app: 'web' }));
    const r = resultSchema.parse(await add(conf, env('ADD', 'web', 'c1'), deps));
    const [wep] = (await ds.list({ kind: 'WorkloadEndpoint' }))
      .items as Resource<'WorkloadEndpoint'>[];
    expect(wep.metadata.labels).toMatchObject({
      app: 'web',
      'projectcalico.org/namespace': 'ns',
      'projectcalico.org/serviceaccount': 'sa1',
    });
    expect(wep.spec).toMatchObject({
      profiles: ['kns.ns', 'ksa.ns.sa1'],
      serviceAccountName: 'sa1',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      ipNetworks: [r.ips[0].address],
    });
  });

  test("a served ADD reports its phases' times: ipam, setup, endpoint write, policy wait", async () => {
    pods.set('ns/web', pod('web'));
    const seen: Array<Record<string, number>> = [];
    const slow = (ms: number) => new Promise<boolean>((r) => setTimeout(() => r(true), ms));
    await add({ ...conf, policy_setup_timeout_seconds: 5 }, env('ADD', 'web', 'c1'), {
      ...deps,
      policyReady: () => slow(60),
      onAddPhases: (t) => seen.push({ ...t }),
    });
    expect(seen).toHaveLength(1);
    expect(Object.keys(seen[0])).toEqual(['ipam', 'setup', 'endpoint', 'policy']);
    expect(seen[0].policy).toBeGreaterThanOrEqual(50); // the agent's wait lands in its phase
    expect(seen[0].ipam).toBeGreaterThan(0);
  });

  test('pod annotations pick the pool or a fixed address (Calico names)', async () => {
    pods.set('ns/a', pod('a', { 'cni.projectcalico.org/ipv4pools': '["special"]' }));
    pods.set('ns/b', pod('b', { 'cni.projectcalico.org/ipAddrs': '["10.1.0.77"]' }));
    pods.set('ns/c', pod('c', { 'cni.projectcalico.org/ipAddrs': 'not json' }));
    expect((await add(conf, env('ADD', 'a', 'ca'), deps)).ips[0].address).toMatch(/^10\.2\.0\./);
    expect((await add(conf, env('ADD', 'b', 'cb'), deps)).ips[0].address).toBe('10.1.0.77/32');
    await expect(add(conf, env('ADD', 'c', 'cc'), deps)).rejects.toThrow(
      'pod annotation ipAddrs must be a JSON list of strings: got not json',
    );
    // the same fixed address for another pod is refused by IPAM
    pods.set('ns/d', pod('d', { 'cni.projectcalico.org/ipAddrs': '["10.1.0.77"]' }));
    await expect(add(conf, env('ADD', 'd', 'cd'), deps)).rejects.toMatchObject({ code: 100 });
    await expect(add(conf, env('ADD', 'nopod', 'cx'), deps)).rejects.toMatchObject({
      code: 3,
      msg: 'pod ns/nopod not found',
    });
  });

  test("a pool's namespaceSelector picks the pod's namespace", async () => {
    const res = (kind: string, name: string, spec: object) =>
      parseResource({ apiVersion: 'tortie.io/v1', kind, metadata: { name }, spec });
    // the other pools keep to namespace "elsewhere", so only "ns-pool" serves "ns"
    for (const name of ['default', 'special']) {
      const p = (await ds.get({ kind: 'IPPool', name }))!;
      await ds.update({ ...p, spec: { ...p.spec, namespaceSelector: 'team == "x"' } });
    }
    await ds.create(res('Profile', 'kns.ns', { labelsToApply: { 'pcns.team': 'y' } }));
    await ds.create(
      res('IPPool', 'ns-pool', { cidr: '10.3.0.0/24', namespaceSelector: 'team == "y"' }),
    );
    pods.set('ns/a', pod('a'));
    expect((await add(conf, env('ADD', 'a', 'ca'), deps)).ips[0].address).toMatch(/^10\.3\.0\./);
  });

  test('a failing interface setup rolls back the address and the veth', async () => {
    pods.set('ns/web', pod('web'));
    net.failSetup = true;
    await expect(add(conf, env('ADD', 'web', 'c1'), deps)).rejects.toMatchObject({
      code: 5,
      msg: 'setting up the pod interface failed',
      details: 'RTNETLINK answers: No such process',
    });
    expect(net.links.size).toBe(0);
    expect((await deps.ipam.check()).summary.allocated).toBe(0);
    expect((await ds.list({ kind: 'WorkloadEndpoint' })).items).toEqual([]);
  });

  test("a new pod's endpoint is created without a read first; a re-created sandbox's replaces it", async () => {
    pods.set('ns/web', pod('web'));
    const reads: string[] = [];
    const counting = Object.create(ds, {
      get: { value: (k: { kind: string }) => (reads.push(k.kind), ds.get(k as never)) },
    }) as MemoryDatastore;
    const d = { ...deps, datastore: counting, ipam: new IpamClient(counting) };
    await add(conf, env('ADD', 'web', 'c1'), d);
    expect(reads.filter((k) => k === 'WorkloadEndpoint')).toEqual([]);
    await add(conf, env('ADD', 'web', 'c2'), d); // the runtime re-created the sandbox
    const weps = (await ds.list({ kind: 'WorkloadEndpoint' }))
      .items as Resource<'WorkloadEndpoint'>[];
    expect(weps.map((w) => w.spec.containerID)).toEqual(['c2']);
  });

  test('DEL of an old sandbox keeps the new sandbox interface and endpoint', async () => {
    pods.set('ns/web', pod('web'));
    await add(conf, env('ADD', 'web', 'old'), deps);
    await add(conf, env('ADD', 'web', 'new'), deps); // the runtime re-created the sandbox
    await del(conf, env('DEL', 'web', 'old'), deps);
    expect(net.links.size).toBe(1);
    const [wep] = (await ds.list({ kind: 'WorkloadEndpoint' }))
      .items as Resource<'WorkloadEndpoint'>[];
    expect(wep.spec.containerID).toBe('new');
    expect(await deps.ipam.ipsByHandle('k8s-pod-network.old')).toEqual([]);
    expect(await deps.ipam.ipsByHandle('k8s-pod-network.new')).toHaveLength(1);
    await del(conf, env('DEL', 'web', 'new'), deps);
    expect(net.links.size).toBe(0);
    expect(isClean(await deps.ipam.check())).toBe(true);
  });

  test('CHECK names each difference', async () => {
    pods.set('ns/web', pod('web'));
    const r = await add(conf, env('ADD', 'web', 'c1'), deps);
    const withPrev = { ...conf, prevResult: r };
    await check(withPrev, env('CHECK', 'web', 'c1'), deps);
    await expect(check(conf, env('CHECK', 'web', 'c1'), deps)).rejects.toThrow(
      'CHECK needs prevResult',
    );
    await deps.ipam.releaseByHandle('k8s-pod-network.c1');
    net.links.clear();
    const ip = r.ips[0].address.split('/')[0];
    await expect(check(withPrev, env('CHECK', 'web', 'c1'), deps)).rejects.toMatchObject({
      code: 101,
      details: [
        `host interface ${r.interfaces![0].name} is missing`,
        `${ip}/32 is not on eth0`,
        `host route to ${ip} via ${r.interfaces![0].name} is missing`,
        'default route via 169.254.1.1 is missing in the pod',
        `IPAM does not hold ${ip} for k8s-pod-network.c1`,
      ].join('; '),
    });
  });
});
