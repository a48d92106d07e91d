// Runs inside the bench's node namespace: the plugin's ADD and DEL in one process (no
// process start per pod), timing the kernel part (veth + addresses + routes) apart.
'use strict';
const { timedPool, printPercentiles: stats } = require('./latency');
const { spawn } = require('node:child_process');
const cni = require('../../packages/cni/dist');
const { add, del, parseNetConf, LinuxPodNetwork, NetlinkPodNetwork } = cni;
const { netlinkAvailability } = require('../../packages/netlink/dist');
const { EtcdDatastore } = require('../../packages/datastore/dist');
const { IpamClient } = require('../../packages/ipam/dist');

const [pods, parallel, etcd, ...netns] = process.argv.slice(2);
const N = Number(pods);

function sh(argv, input) {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`${argv.join(' ')}: ${err}`))));
    p.stdin.on('error', () => undefined); // a tool that does not read stdin may be gone (EPIPE)
    p.stdin.end(input ?? '');
  });
}

const lanes = (fn) => timedPool(N, Number(parallel), fn);

async function main() {
  const conf = parseNetConf(
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      type: 'tortie',
      nodename: 'bench-node',
      etcd_endpoints: etcd,
    }),
  );
  const ds = new EtcdDatastore([etcd]);
  // the plugin with each kernel path: netlink (the default when the addon loads) and
  // the ip -batch fallback (the path before), the network setup timed apart
  const withNet = (net, setupMs) => ({
    datastore: ds,
    ipam: new IpamClient(ds),
    net: {
      setup: async (a, mtu) => {
        const t0 = process.hrtime.bigint();
        await net.setup(a, mtu);
        setupMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      },
      teardown: (i) => net.teardown(i),
      observe: (a) => net.observe(a),
    },
    node: 'bench-node',
  });
  const env = (cmd, i) => ({
    command: cmd,
    containerId: `inproc${i}`,
    netns: `/var/run/netns/${netns[i]}`,
    ifname: 'eth0',
    args: { K8S_POD_NAMESPACE: 'inproc', K8S_POD_NAME: `pod-${i}` },
  });
  // reference: the same ip -batch input, run raw (no IPAM, no datastore, no sysctls)
  const attach = (i) => ({
    hostIface: `calr${String(i).padStart(11, '0')}`,
    podIface: 'eth0',
    podMac: cni.randomPodMac(),
    netns: `/var/run/netns/${netns[i]}`,
    ipv4: [`10.71.${i >> 8}.${i & 255}`],
    ipv6: [],
  });
  const ref = stats(
    'reference: raw ip -batch of the same setup',
    await lanes(async (i) => {
      const a = attach(i);
      await sh(['ip', '-batch', '-'], cni.hostBatch(a, 1500).join('\n') + '\n');
      await sh(
        ['nsenter', `--net=${a.netns}`, 'ip', '-batch', '-'],
        cni.podBatch(a).join('\n') + '\n',
      );
    }),
  );
  await lanes((i) => sh(['ip', 'link', 'del', attach(i).hostIface]));
  const paths = [
    ...(netlinkAvailability().available ? [['netlink', new NetlinkPodNetwork()]] : []),
    ['ip -batch fallback', new LinuxPodNetwork()],
  ];
  for (const [via, net] of paths) {
    const setupMs = [];
    const deps = withNet(net, setupMs);
    stats(
      `plugin ADD in one process (no process start), ${via}`,
      await lanes((i) => add(conf, env('ADD', i), deps)),
    );
    const setup = [...setupMs].sort((a, b) => a - b)[Math.floor(setupMs.length / 2)];
    stats(`  of which network setup (veth, addresses, routes, sysctls), ${via}`, setupMs, {
      ratio_p50_vs_reference: +(setup / ref.p50_ms).toFixed(2),
      target_p50_ms: '< 5',
    });
    stats(`plugin DEL in one process, ${via}`, await lanes((i) => del(conf, env('DEL', i), deps)));
  }
  // the network setup alone, one pod at a time (no other pod's work interleaved): the
  // raw ip -batch reference, then each path
  const ONE = Math.min(N, 50);
  const one = (fn) => timedPool(ONE, 1, fn);
  const refOne = stats(
    'reference, one at a time: raw ip -batch of the same setup',
    await one(async (i) => {
      const a = attach(i);
      await sh(['ip', '-batch', '-'], cni.hostBatch(a, 1500).join('\n') + '\n');
      await sh(
        ['nsenter', `--net=${a.netns}`, 'ip', '-batch', '-'],
        cni.podBatch(a).join('\n') + '\n',
      );
    }),
  );
  await one((i) => sh(['ip', 'link', 'del', attach(i).hostIface]));
  for (const [via, net] of paths) {
    const t = [];
    for (let i = 0; i < ONE; i++) {
      const a = attach(i);
      const t0 = process.hrtime.bigint();
      await net.setup(a, 1500);
      t.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await net.teardown(a.hostIface);
    }
    const s = [...t].sort((x, y) => x - y);
    stats(`network setup alone, one at a time (veth, addresses, routes, sysctls), ${via}`, t, {
      ratio_p50_vs_reference: +(s[Math.floor(s.length / 2)] / refOne.p50_ms).toFixed(2),
      target_p50_ms: '< 5',
    });
  }
  await ds.close();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
