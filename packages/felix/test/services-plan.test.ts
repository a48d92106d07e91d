// The service proxy's pure parts: which endpoints a service port gets, and what an
// incremental nft transaction touches.
import {
  diffScript,
  fullScript,
  planServices,
  renderServices,
  ServiceProxy,
  type EndpointSlice,
  type Service,
} from '../src/dataplane/services';
import { readCounter } from './read-counter';

const web: Service = {
  namespace: 'default',
  name: 'web',
  type: 'NodePort',
  clusterIPs: ['10.96.0.10', 'fd96:0::10'],
  ports: [
    { name: 'http', port: 80, nodePort: 30080 },
    { name: 'dns', protocol: 'UDP', port: 53 },
  ],
};
const slice = (endpoints: EndpointSlice['endpoints'], addressType: 'IPv4' | 'IPv6' = 'IPv4') =>
  ({
    namespace: 'default',
    serviceName: 'web',
    addressType,
    ports: [
      { name: 'http', port: 8080 },
      { name: 'dns', protocol: 'UDP', port: 5353 },
    ],
    endpoints,
  }) as EndpointSlice;

describe('planServices', () => {
  test('node ports outside kubeNodePortRanges (default 30000-32767) are not programmed, and said so', () => {
    const low: Service = { ...web, ports: [{ name: 'http', port: 80, nodePort: 8080 }] };
    const plan = (ranges?: Array<[number, number]>) =>
      planServices([web, { ...low, name: 'low' }], [slice([])], {
        nodeName: 'n1',
        family: 4,
        ...(ranges ? { nodePortRanges: ranges } : {}),
      });
    const dflt = plan();
    expect(dflt.ports.map((p) => [p.key, p.nodePort])).toEqual([
      ['default/low/tcp/http', undefined],
      ['default/web/tcp/http', 30080],
      ['default/web/udp/dns', undefined],
    ]);
    expect(dflt.problems).toEqual([
      'service default/low port http: node port 8080 is outside kubeNodePortRanges 30000:32767; not programmed',
    ]);
    const custom = plan([
      [8000, 8100],
      [30080, 30080],
    ]);
    expect(custom.ports.map((p) => p.nodePort)).toEqual([8080, 30080, undefined]);
    expect(custom.problems).toEqual([]);
  });

  test('ports matched by name and protocol; ready endpoints; local ones marked', () => {
    const { ports, problems } = planServices(
      [web],
      [
        slice([
          { addresses: ['10.65.0.2'], nodeName: 'n1' },
          { addresses: ['10.65.1.2'], nodeName: 'n2' },
        ]),
      ],
      { nodeName: 'n1', family: 4 },
    );
    expect(problems).toEqual([]);
    expect(ports.map((p) => [p.key, p.protocol, p.port, p.nodePort, p.clusterIPs])).toEqual([
      ['default/web/tcp/http', 'TCP', 80, 30080, ['10.96.0.10']],
      ['default/web/udp/dns', 'UDP', 53, undefined, ['10.96.0.10']],
    ]);
    expect(ports[0].endpoints).toEqual([
      { ip: '10.65.0.2', port: 8080, local: true },
      { ip: '10.65.1.2', port: 8080, local: false },
    ]);
    expect(ports[1].endpoints.map((e) => e.port)).toEqual([5353, 5353]);
  });

  test('not ready endpoints are left out; serving terminating ones only when none is ready', () => {
    const eps = [
      { addresses: ['10.65.0.2'], ready: false, serving: true, terminating: true },
      { addresses: ['10.65.0.3'], ready: false },
    ];
    const plan = (e: EndpointSlice['endpoints']) =>
      planServices([web], [slice(e)], { nodeName: 'n1', family: 4 }).ports[0].endpoints.map(
        (x) => x.ip,
      );
    expect(plan(eps)).toEqual(['10.65.0.2']);
    expect(plan([...eps, { addresses: ['10.65.0.4'] }])).toEqual(['10.65.0.4']);
  });

  test('per family: cluster IPs and slices of the family; IPv6 written canonically', () => {
    const { ports } = planServices([web], [slice([{ addresses: ['fd65:0::2'] }], 'IPv6')], {
      nodeName: 'n1',
      family: 6,
    });
    expect(ports[0].clusterIPs).toEqual(['fd96::10']);
    expect(ports[0].endpoints.map((e) => e.ip)).toEqual(['fd65::2']);
  });

  test('headless and ExternalName services get nothing; a bad address is named', () => {
    const { ports, problems } = planServices(
      [
        { ...web, name: 'headless', clusterIPs: ['None'] },
        { ...web, name: 'ext', type: 'ExternalName' },
        { ...web, name: 'bad', clusterIPs: ['10.96.0.300'] },
      ],
      [],
      { nodeName: 'n1', family: 4 },
    );
    expect(ports).toEqual([]);
    expect(problems).toEqual(['service default/bad clusterIP: "10.96.0.300" is not an IP address']);
  });
});

describe('nft transactions', () => {
  const state = (endpoints: EndpointSlice['endpoints'], services: Service[] = [web]) =>
    renderServices(
      planServices(services, [slice(endpoints)], { nodeName: 'n1', family: 4 }).ports,
      {
        family: 4,
        clusterCidrs: ['10.65.0.0/16'],
      },
    );
  const two = [{ addresses: ['10.65.0.2'] }, { addresses: ['10.65.1.2'] }];
  const other: Service = { ...web, name: 'other', clusterIPs: ['10.96.0.20'] };

  test('nothing changed: an empty transaction', () => {
    expect(diffScript(state(two), state(two))).toBe('');
  });

  test('one endpoint gone: only that service is touched', () => {
    const script = diffScript(state(two, [web, other]), state(two.slice(0, 1), [web, other]));
    const lines = script.trim().split('\n');
    expect(lines.every((l) => !l.includes('other'))).toBe(true);
    // its chains are flushed and refilled with the one endpoint left (tcp and udp)
    expect(lines.filter((l) => l.startsWith('flush chain'))).toHaveLength(2);
    expect(
      lines.filter((l) => l.startsWith('add rule')).every((l) => !l.includes('10.65.1.2')),
    ).toBe(true);
    expect(lines).toContain('delete element ip tortie-svc hairpin { 10.65.1.2 . 10.65.1.2 }');
    expect(lines.some((l) => l.startsWith('delete chain'))).toBe(false);
  });

  test('a key two services claim stays with the first, and the other is named', () => {
    // the plan is in key order: default/twin comes before default/web
    const twin: Service = { ...web, name: 'twin' };
    const s = state(two, [web, twin]);
    expect(s.conflicts).toContain(
      '10.96.0.10 . tcp . 80: kept for default/twin/tcp/http, not default/web/tcp/http',
    );
    // twin (no endpoints) owns the address: refused, and web's DNAT is not written
    expect(s.elements.get('no-endpoint-services')!.has('10.96.0.10 . tcp . 80')).toBe(true);
    expect(s.elements.get('service-ips')!.has('10.96.0.10 . tcp . 80')).toBe(false);
  });

  test('the last endpoint gone: the service moves to the reject map', () => {
    const script = diffScript(state(two), state([]));
    expect(script).toMatch(
      /delete element ip tortie-svc service-ips \{ 10\.96\.0\.10 \. tcp \. 80 \}/,
    );
    expect(script).toMatch(
      /add element ip tortie-svc no-endpoint-services \{ 10\.96\.0\.10 \. tcp \. 80 : goto reject-chain \}/,
    );
    expect(script).toMatch(/delete element ip tortie-svc service-nodeports \{ tcp \. 30080 \}/);
  });

  test('the full script replaces the table in one transaction', () => {
    const script = fullScript(state(two));
    expect(script.split('\n').slice(0, 2)).toEqual([
      'add table ip tortie-svc',
      'delete table ip tortie-svc',
    ]);
  });
});

describe('ServiceProxy: one change, one service', () => {
  // nft stubbed: the scripts are what the proxy would run
  const proxyWith = () => {
    const scripts: string[] = [];
    const proxy = new ServiceProxy({
      nodeName: 'n1',
      families: [4],
      clusterCidrs: { 4: ['10.65.0.0/16'] },
      exec: async (argv, stdin) => {
        if (argv[0] === 'nft') scripts.push(String(stdin));
        return { code: 0, stdout: '', stderr: '' };
      },
    });
    return { proxy, scripts };
  };

  test('an EndpointSlice change reads no other Service or slice', async () => {
    const { proxy, scripts } = proxyWith();
    // the services and slices whose fields are read (s7's own are: it is planned again)
    const { reads, counted } = readCounter();
    for (let i = 0; i < 50; i++) {
      const name = `s${i}`;
      proxy.setService(counted({ ...web, name, clusterIPs: [`10.96.1.${i}`] }, name));
      proxy.setEndpointSlice(
        name,
        counted({ ...slice([{ addresses: [`10.65.0.${i}`] }]), serviceName: name }, name),
      );
    }
    await proxy.apply();
    reads.clear();
    proxy.setEndpointSlice('s7', { ...slice([{ addresses: ['10.65.9.9'] }]), serviceName: 's7' });
    const [stats] = await proxy.apply();
    expect(stats.full).toBe(false);
    expect([...reads]).toEqual(['s7']);
    const script = scripts[scripts.length - 1];
    expect(script).toContain('10.65.9.9');
    // the old endpoint's hairpin element goes, nothing of another service is written
    expect(script).toContain('delete element ip tortie-svc hairpin { 10.65.0.7 . 10.65.0.7 }');
    expect(script).not.toMatch(/10\.96\.1\.(?!7 )/);
  });

  test('the Service keeping a claimed address goes: the other one gets it', async () => {
    const { proxy, scripts } = proxyWith();
    const twin: Service = { ...web, name: 'twin' };
    proxy.setService(web);
    proxy.setService(twin);
    proxy.setEndpointSlice('web', slice([{ addresses: ['10.65.0.2'] }]));
    await proxy.apply();
    // twin (no endpoints, first by name) holds 10.96.0.10:80: it is refused
    expect(scripts[0]).toContain(
      'add element ip tortie-svc no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain }',
    );
    expect(scripts[0]).not.toContain(
      'add element ip tortie-svc service-ips { 10.96.0.10 . tcp . 80',
    );
    proxy.deleteService('default', 'twin');
    await proxy.apply();
    expect(scripts[1]).toContain(
      'delete element ip tortie-svc no-endpoint-services { 10.96.0.10 . tcp . 80 }',
    );
    expect(scripts[1]).toMatch(
      /add element ip tortie-svc service-ips \{ 10\.96\.0\.10 \. tcp \. 80 : goto svc-\S+-default\/web\/tcp\/http \}/,
    );
    // and back: twin takes it again
    proxy.setService(twin);
    await proxy.apply();
    expect(scripts[2]).toContain(
      'add element ip tortie-svc no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain }',
    );
    expect(scripts[2]).toContain(
      'delete element ip tortie-svc service-ips { 10.96.0.10 . tcp . 80 }',
    );
  });
});
