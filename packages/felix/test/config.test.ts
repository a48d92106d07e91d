// Configuration precedence and parsing, as Felix documents it.
import { resolveConfig } from '../src/config';

describe('agent configuration', () => {
  test('defaults are Calico defaults', () => {
    const c = resolveConfig({});
    expect(c).toMatchObject({ healthPort: 9099, iptablesRefreshInterval: 90_000, vxlanVNI: 4096 });
    expect(c.failsafeInboundHostPorts).toContainEqual({ protocol: 'TCP', port: 22 });
  });

  test('environment beats the node resource, which beats the global one', () => {
    const c = resolveConfig(
      { FELIX_IPTABLESREFRESHINTERVAL: '10s', FELIX_HealthPort: '9100' },
      { iptablesRefreshInterval: '20s', vxlanVNI: 77, ipipMTU: 1400 },
      { iptablesRefreshInterval: '30s', vxlanVNI: 88, vxlanPort: 8472 },
    );
    expect(c).toMatchObject({
      iptablesRefreshInterval: 10_000,
      healthPort: 9100,
      vxlanVNI: 77,
      ipipMTU: 1400,
      vxlanPort: 8472,
    });
  });

  test('env forms: durations, host ports, booleans; bad values named with their source', () => {
    const c = resolveConfig({
      FELIX_ROUTEREFRESHINTERVAL: '1m30s',
      FELIX_FAILSAFEINBOUNDHOSTPORTS: 'tcp:22, udp:10.0.0.0/8:53',
      FELIX_PROMETHEUSMETRICSENABLED: 'true',
    });
    expect(c.routeRefreshInterval).toBe(90_000);
    expect(c.failsafeInboundHostPorts).toEqual([
      { protocol: 'TCP', port: 22 },
      { protocol: 'UDP', port: 53, net: '10.0.0.0/8' },
    ]);
    expect(c.prometheusMetricsEnabled).toBe(true);
    expect(() =>
      resolveConfig({ FELIX_IPTABLESREFRESHINTERVAL: 'soon' }, { vxlanVNI: 'x' }),
    ).toThrow(
      'invalid configuration:\n' +
        '  environment FELIX_IPTABLESREFRESHINTERVAL: iptablesRefreshInterval: "soon" is not a duration (examples: 90s, 1m30s, 500ms)\n' +
        '  FelixConfiguration node: vxlanVNI: "x" is not a number',
    );
    expect(() => resolveConfig({ FELIX_FAILSAFEOUTBOUNDHOSTPORTS: 'icmp:1' })).toThrow(
      '"icmp:1" is not protocol:port',
    );
  });

  test('FelixConfiguration host ports: any case, SCTP, TCP when the protocol is absent', () => {
    const c = resolveConfig(
      {},
      {
        failsafeInboundHostPorts: [
          { protocol: 'tcp', port: 22 },
          { port: 6443 },
          { protocol: 'SCTP', port: 9999, net: '10.0.0.0/8' },
        ],
      },
    );
    expect(c.failsafeInboundHostPorts).toEqual([
      { protocol: 'TCP', port: 22 },
      { protocol: 'TCP', port: 6443 },
      { protocol: 'SCTP', port: 9999, net: '10.0.0.0/8' },
    ]);
    expect(() =>
      resolveConfig({}, { failsafeInboundHostPorts: [{ protocol: 'icmp', port: 1 }] }),
    ).toThrow('is not protocol:port');
  });
});
