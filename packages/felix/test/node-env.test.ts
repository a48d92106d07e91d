// tortie-node's environment checked before anything starts, and --help (the real binary).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { SETTING_NAMES, resolveConfig, unknownFelixVars } from '../src/config';
import { envProblems } from '../src/node-env';

const CLI = path.resolve(__dirname, '../dist/cli.js');
const GOOD = { IP: '10.0.0.1/24', ETCD_ENDPOINTS: 'http://127.0.0.1:2379' };

test('a good environment has no problems', () => {
  expect(
    envProblems({
      ...GOOD,
      AS: '64512',
      IP6: 'fd00::1/64',
      CALICO_ROUTER_ID: 'hash',
      FELIX_IPTABLESBACKEND: 'nft',
    }),
  ).toEqual([]);
});

test('every problem at once, each naming the variable and its value', () => {
  expect(
    envProblems({
      IP: '10.0.0.300/24',
      IP6: 'fd00::1/129',
      IP_AUTODETECTION_METHOD: 'first',
      IP6_AUTODETECTION_METHOD: 'interface=(',
      DISABLE_NODE_IP_CHECK: 'yes',
      AS: 'abc',
      CLUSTER_ID: 'rr1',
      CALICO_ROUTER_ID: 'node1',
      NODE_LABELS: 'rack=a,oops',
      TORTIE_NETWORKING_BACKEND: 'ipip',
      DATASTORE_TYPE: 'consul',
      FELIX_IPTABLESBAKEND: 'NFT',
      FELIX_LOGSEVERITYSCREEN: 'loud',
      FELIX_IPTABLESREFRESHINTERVAL: 'soon',
    }),
  ).toEqual([
    'IP="10.0.0.300/24": not "autodetect", "none" or an IPv4 address with or without its prefix (e.g. 10.0.0.1/24)',
    'IP6="fd00::1/129": not "autodetect", "none" or an IPv6 address with or without its prefix (e.g. fd00::1/64)',
    'IP_AUTODETECTION_METHOD="first": not one of first-found, interface=REGEX,..., skip-interface=REGEX,..., can-reach=DEST, cidr=CIDR,..., kubernetes-internal-ip',
    expect.stringMatching(
      /^IP6_AUTODETECTION_METHOD="interface=\(": "\(" is not a regular expression/,
    ),
    'DISABLE_NODE_IP_CHECK="yes": not true or false',
    'AS="abc": not an AS number (1-4294967295)',
    'CLUSTER_ID="rr1": not an IPv4 address',
    'CALICO_ROUTER_ID="node1": neither an IPv4 address nor "hash"',
    'NODE_LABELS="rack=a,oops": "oops" is not key=value',
    'TORTIE_NETWORKING_BACKEND="ipip": not one of bgp, vxlan, none',
    'DATASTORE_TYPE="consul": not one of etcdv3, kubernetes, file',
    'FELIX_IPTABLESBAKEND is no setting; did you mean FELIX_IPTABLESBACKEND?',
    'environment FELIX_LOGSEVERITYSCREEN: logSeverityScreen: "loud" is not one of Trace, Debug, Info, Warning, Error, Fatal',
    'environment FELIX_IPTABLESREFRESHINTERVAL: iptablesRefreshInterval: "soon" is not a duration (examples: 90s, 1m30s, 500ms)',
  ]);
  // IP unset means autodetect (calico-node's default), as do these
  expect(envProblems({})).toEqual([]);
  for (const IP of ['autodetect', 'none', '10.0.0.1', '10.0.0.1/24'])
    expect(
      envProblems({ IP, IP6: 'fd00::1', IP_AUTODETECTION_METHOD: 'can-reach=example.com' }),
    ).toEqual([]);
});

test('choices are read in any case; a Felix setting tortie lacks is not a typo', () => {
  expect(
    resolveConfig({ FELIX_IPTABLESBACKEND: 'nft', FELIX_LOGSEVERITYSCREEN: 'warning' }),
  ).toMatchObject({
    iptablesBackend: 'NFT',
    logSeverityScreen: 'Warning',
  });
  expect(unknownFelixVars({ FELIX_BPFENABLED: 'true', FELIX_HEALTHPROT: '1' })).toEqual({
    typos: [{ variable: 'FELIX_HEALTHPROT', meant: 'FELIX_HEALTHPORT' }],
    unknown: ['FELIX_BPFENABLED'],
  });
});

test('the binary: --help lists every setting and needs nothing; a bad environment exits 2 naming it', () => {
  const help = spawnSync(process.execPath, [CLI, '--help'], { env: {} });
  expect(help.status).toBe(0);
  const out = help.stdout.toString();
  for (const v of [
    'NODENAME',
    'IP6',
    'IP_AUTODETECTION_METHOD',
    'IP6_AUTODETECTION_METHOD',
    'CALICO_ROUTER_ID',
    'ETCD_ENDPOINTS',
  ])
    expect(out).toContain(v);
  for (const s of SETTING_NAMES) expect(out).toContain(`FELIX_${s.toUpperCase()}`);
  const bad = spawnSync(process.execPath, [CLI], {
    env: { ...GOOD, AS: 'abc', FELIX_IPIPMTU: 'big' },
  });
  expect(bad.status).toBe(2);
  expect(bad.stderr.toString()).toBe(
    'tortie-node: invalid configuration (tortie-node --help lists every setting):\n' +
      '  - AS="abc": not an AS number (1-4294967295)\n' +
      '  - environment FELIX_IPIPMTU: ipipMTU: "big" is not a number\n',
  );
});
