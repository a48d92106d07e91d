// Services through the agent's pieces: the calculation graph passes KubernetesService and
// KubernetesEndpointSlice resources through, and the ServiceManager programs them only
// while the proxy is on (the nft transactions recorded by a fake).
import winston from 'winston';
import { ServiceManager, nodePortRanges } from '../src/dataplane/services';
import { R, harness, ofType } from './calc-fixtures';
import { readCounter } from './read-counter';

const service = R(
  'KubernetesService',
  'web',
  {
    type: 'NodePort',
    clusterIP: '10.96.0.10',
    ports: [{ name: 'http', port: 80, nodePort: 30080 }],
    sessionAffinity: 'ClientIP',
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
  },
  { namespace: 'shop' },
);
const slice = R(
  'KubernetesEndpointSlice',
  'web-abc',
  {
    serviceName: 'web',
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [
      { addresses: ['10.65.0.2'], nodeName: 'n1' },
      { addresses: ['10.65.1.2'], nodeName: 'n2', conditions: { ready: false } },
    ],
  },
  { namespace: 'shop' },
);

/** An enabled ServiceManager whose nft answers with `answer` (the nth call); scripts recorded. */
function withNft(answer: (n: number) => Promise<{ code: number; stdout: string; stderr: string }>) {
  const scripts: string[] = [];
  const m = new ServiceManager({
    nodeName: 'n1',
    logger: winston.createLogger({ silent: true }),
    enabled: true,
    exec: async (_a, stdin) => {
      scripts.push(String(stdin));
      return answer(scripts.length);
    },
  });
  return { m, scripts };
}

test('the calculation graph passes services and slices through, removals too', () => {
  const h = harness('n1');
  h.set(service, slice);
  const first = h.sync();
  expect(ofType(first, 'service-update')).toEqual([
    {
      type: 'service-update',
      id: 'KubernetesService/shop/web',
      service: expect.objectContaining({
        namespace: 'shop',
        name: 'web',
        clusterIPs: ['10.96.0.10'],
        affinityTimeoutSeconds: 60,
      }),
    },
  ]);
  expect(ofType(first, 'endpoint-slice-update')[0].slice.endpoints[1]).toMatchObject({
    nodeName: 'n2',
    ready: false,
  });
  h.del(slice);
  expect(h.fresh()).toEqual([
    { type: 'endpoint-slice-remove', id: 'KubernetesEndpointSlice/shop/web-abc' },
  ]);
});

describe('ServiceManager', () => {
  const logger = winston.createLogger({ silent: true });
  const setup = (enabled?: boolean) => {
    const scripts: string[] = [];
    const m = new ServiceManager({
      nodeName: 'n1',
      logger,
      enabled,
      exec: async (_argv, stdin) => {
        scripts.push(String(stdin));
        return { code: 0, stdout: '', stderr: '' };
      },
    });
    const h = harness('n1');
    h.set(service, slice, R('IPPool', 'p', { cidr: '10.65.0.0/16' }));
    for (const u of h.sync()) m.send(u);
    return { m, scripts };
  };

  test('off: nothing is written', async () => {
    const { m, scripts } = setup();
    await m.apply();
    expect(scripts).toEqual([]);
  });

  test('on: the service programmed with its ready endpoint, pod networks in the masquerade rule', async () => {
    const { m, scripts } = setup(true);
    await m.apply();
    const v4 = scripts.find((s) => s.includes('table ip tortie-svc'))!;
    expect(v4).toMatch(/10\.96\.0\.10 \. tcp \. 80 : goto svc-/);
    expect(v4).toMatch(/dnat to 10\.65\.0\.2:8080/);
    expect(v4).not.toMatch(/10\.65\.1\.2/);
    expect(v4).toMatch(
      /ip saddr != \{ 10\.65\.0\.0\/16 \} ip daddr \. meta l4proto \. th dport @cluster-ips jump mark-for-masquerade/,
    );
    await m.apply();
    expect(scripts).toHaveLength(2); // nothing changed: no new transaction
  });

  test('turned off by FelixConfiguration: the tables are removed', async () => {
    const { m, scripts } = setup(true);
    await m.apply();
    m.send({ type: 'config-update', config: { serviceProxyEnabled: false } });
    await m.apply();
    expect(scripts.slice(-2)).toEqual([
      'add table ip tortie-svc\ndelete table ip tortie-svc\n',
      'add table ip6 tortie-svc\ndelete table ip6 tortie-svc\n',
    ]);
  });

  test('nft refusing: the error names the table, and the next apply rewrites it whole', async () => {
    let refuse = true;
    const { m, scripts } = withNft(async () =>
      refuse
        ? { code: 1, stdout: '', stderr: 'Error: No such file or directory' }
        : { code: 0, stdout: '', stderr: '' },
    );
    const h = harness('n1');
    h.set(service, slice);
    for (const u of h.sync()) m.send(u);
    await expect(m.apply()).rejects.toThrow(
      'nft refused the ip tortie-svc update: Error: No such file or directory',
    );
    refuse = false;
    await m.apply();
    expect(scripts.at(-2)).toMatch(/^add table ip tortie-svc\ndelete table ip tortie-svc\n/);
  });
});

test('a change that arrives while nft runs goes with the next apply', async () => {
  let release: () => void = () => undefined;
  const { m, scripts } = withNft(async (n) => {
    if (n === 1) await new Promise<void>((r) => (release = r));
    return { code: 0, stdout: '', stderr: '' };
  });
  const h = harness('n1');
  h.set(service);
  for (const u of h.sync()) m.send(u);
  const first = m.apply();
  await new Promise((r) => setImmediate(r));
  h.set(slice); // the endpoints arrive while the service's own transaction runs
  for (const u of h.fresh()) m.send(u);
  release();
  await first;
  await m.apply();
  expect(scripts.join('')).toMatch(/dnat to 10\.65\.0\.2:8080/);
});

describe('host routes for Local services (BGP)', () => {
  const local = (name: string, spec: object) =>
    R(
      'KubernetesService',
      name,
      {
        type: 'LoadBalancer',
        externalTrafficPolicy: 'Local',
        ports: [{ port: 80, nodePort: 30081 }],
        ...spec,
      },
      { namespace: 'shop' },
    );
  const endpointsOn = (svc: string, nodes: Record<string, boolean>) =>
    R(
      'KubernetesEndpointSlice',
      svc,
      {
        serviceName: svc,
        addressType: 'IPv4',
        ports: [{ port: 8080 }],
        endpoints: Object.entries(nodes).map(([n, ready], i) => ({
          addresses: [`10.65.${i}.2`],
          nodeName: n,
          conditions: { ready },
        })),
      },
      { namespace: 'shop' },
    );
  const ranges = R('BGPConfiguration', 'default', {
    serviceLoadBalancerIPs: [{ cidr: '198.51.100.0/24' }],
    serviceClusterIPs: [{ cidr: '10.96.0.0/16' }],
  });
  const originate = (h: ReturnType<typeof harness>) =>
    ofType(h.dp.log, 'bgp-update').at(-1)!.bgp.originate;

  test('a /32 per address in an advertised range, only from a node with a ready endpoint', () => {
    const h = harness('n1');
    h.set(
      R('Node', 'n1', { bgp: { ipv4Address: '10.0.0.1/24' } }),
      ranges,
      local('lb', {
        clusterIP: '10.96.0.20',
        loadBalancerIngress: [{ ip: '198.51.100.20' }],
        externalIPs: ['192.0.2.9'],
      }),
      endpointsOn('lb', { n1: true, n2: true }),
      // Cluster policy: only the ranges
      R(
        'KubernetesService',
        'web',
        {
          type: 'LoadBalancer',
          clusterIP: '10.96.0.21',
          loadBalancerIngress: [{ ip: '198.51.100.21' }],
          ports: [{ port: 80 }],
        },
        { namespace: 'shop' },
      ),
      endpointsOn('web', { n1: true }),
    );
    h.sync();
    // 192.0.2.9 is in no advertised range
    expect(originate(h)).toEqual([
      '10.96.0.0/16',
      '10.96.0.20/32',
      '198.51.100.0/24',
      '198.51.100.20/32',
    ]);
    // the endpoint on n1 stops being ready: the host routes go, the ranges stay
    h.set(endpointsOn('lb', { n1: false, n2: true }));
    expect(originate(h)).toEqual(['10.96.0.0/16', '198.51.100.0/24']);
  });

  test('on the node without an endpoint: nothing but the ranges', () => {
    const h = harness('n3');
    h.set(
      R('Node', 'n3', { bgp: { ipv4Address: '10.0.0.3/24' } }),
      ranges,
      local('lb', { clusterIP: '10.96.0.20', loadBalancerIngress: [{ ip: '198.51.100.20' }] }),
      endpointsOn('lb', { n1: true }),
    );
    h.sync();
    expect(originate(h)).toEqual(['10.96.0.0/16', '198.51.100.0/24']);
  });
});

/** An enabled ServiceManager (nft answering yes) serving health checks on loopback. */
const healthManager = () =>
  new ServiceManager({
    nodeName: 'n1',
    logger: winston.createLogger({ silent: true }),
    enabled: true,
    healthCheckAddress: '127.0.0.1',
    exec: async () => ({ code: 0, stdout: '', stderr: '' }),
  });

test('health check node port of a Local LoadBalancer Service: 200 with local endpoints, else 503', async () => {
  const port = 20000 + (process.pid % 20000);
  const m = healthManager();
  const svc = R(
    'KubernetesService',
    'lb',
    {
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: port,
      clusterIP: '10.96.0.30',
      ports: [{ port: 80, nodePort: 30090 }],
    },
    { namespace: 'shop' },
  );
  const eps = (ready: boolean) =>
    R(
      'KubernetesEndpointSlice',
      'lb',
      {
        serviceName: 'lb',
        addressType: 'IPv4',
        ports: [{ port: 8080 }],
        endpoints: [
          { addresses: ['10.65.0.2'], nodeName: 'n1', conditions: { ready } },
          { addresses: ['10.65.1.2'], nodeName: 'n2' },
        ],
      },
      { namespace: 'shop' },
    );
  const h = harness('n1');
  const ask = async () => {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    return { status: r.status, body: await r.json() };
  };
  try {
    h.set(svc, eps(true));
    for (const u of h.sync()) m.send(u);
    await m.apply();
    expect(await ask()).toEqual({
      status: 200,
      body: {
        service: { namespace: 'shop', name: 'lb' },
        localEndpoints: 1,
        serviceProxyHealthy: true,
      },
    });
    h.set(eps(false)); // the local endpoint stops being ready: this node must get no traffic
    for (const u of h.fresh()) m.send(u);
    await m.apply();
    expect(await ask()).toMatchObject({ status: 503, body: { localEndpoints: 0 } });
    h.del(svc);
    for (const u of h.fresh()) m.send(u);
    await m.apply();
    await expect(ask()).rejects.toThrow(); // the port is closed with its Service
  } finally {
    await m.close();
  }
});

test('an EndpointSlice change reads no other Service or slice (health checks per dirty Service too)', async () => {
  const port = 20000 + ((process.pid + 7) % 20000);
  const m = healthManager();
  const { reads, counted } = readCounter();
  const lb = (i: number) => ({
    namespace: 'shop',
    name: `s${i}`,
    type: 'LoadBalancer' as const,
    externalTrafficPolicy: 'Local' as const,
    // one of them has a health check port: the change reaches it
    ...(i === 7 ? { healthCheckNodePort: port } : {}),
    clusterIPs: [`10.96.1.${i}`],
    ports: [{ port: 80, nodePort: 30100 + i }],
  });
  const eps = (i: number, ready: boolean) => ({
    namespace: 'shop',
    serviceName: `s${i}`,
    addressType: 'IPv4' as const,
    ports: [{ port: 8080 }],
    endpoints: [{ addresses: [`10.65.0.${i}`], nodeName: 'n1', ready }],
  });
  const ask = async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
  try {
    for (let i = 0; i < 50; i++) {
      m.send({ type: 'service-update', id: `s${i}`, service: counted(lb(i), `s${i}`) });
      m.send({ type: 'endpoint-slice-update', id: `s${i}`, slice: counted(eps(i, true), `s${i}`) });
    }
    await m.apply();
    expect(await ask()).toBe(200);
    reads.clear();
    m.send({ type: 'endpoint-slice-update', id: 's7', slice: eps(7, false) });
    await m.apply();
    expect([...reads]).toEqual(['s7']);
    expect(await ask()).toBe(503);
    // turned off, the port closes; turned on again, every Service's check is back
    m.send({ type: 'config-update', config: { serviceProxyEnabled: 'false' } });
    await m.apply();
    await expect(ask()).rejects.toThrow();
    m.send({ type: 'endpoint-slice-update', id: 's7', slice: eps(7, true) });
    m.send({ type: 'config-update', config: { serviceProxyEnabled: 'true' } });
    await m.apply();
    expect(await ask()).toBe(200);
  } finally {
    await m.close();
  }
});

test('kubeNodePortRanges as FelixConfiguration writes it: ports and from:to ranges; default 30000-32767', () => {
  expect(nodePortRanges(undefined)).toEqual([[30000, 32767]]);
  expect(nodePortRanges(['30000:32767', 8080, '9000'])).toEqual([
    [30000, 32767],
    [8080, 8080],
    [9000, 9000],
  ]);
  expect(nodePortRanges('20000:21000,22000')).toEqual([
    [20000, 21000],
    [22000, 22000],
  ]);
  expect(nodePortRanges(['banana'])).toEqual([[30000, 32767]]);
});
