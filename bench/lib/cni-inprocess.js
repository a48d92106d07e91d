// Runs inside the bench's node namespace: the plugin's ADD and DEL in one process (no
// process start per pod), timing the kernel part (veth + addresses + routes) apart.
'use strict';
const { timedPool, printPercentiles: stats } = require('./latency');
const { spawn } = require('node:child_process');
const cni = require('../../packages/cni/dist');
const { add, del, parseNetConf, LinuxPodNetwork } = cni;
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
  const net = new LinuxPodNetwork();
  const setupMs = [];
  const timedNet = {
    setup: async (a, mtu) => {
      const t0 = process.hrtime.bigint();
      await net.setup(a, mtu);
      setupMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    },
    teardown: (i) => net.teardown(i),
    observe: (a) => net.observe(a),
  };
  const deps = {
    datastore: ds,
    ipam: new IpamClient(ds),
    net: timedNet,
    node: 'bench-node',
    writeEndpoints: true,
  };
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
  stats(
    'plugin ADD in one process (no process start)',
    await lanes((i) => add(conf, env('ADD', i), deps)),
  );
  const setup = [...setupMs].sort((a, b) => a - b)[Math.floor(setupMs.length / 2)];
  stats('  of which network setup (veth, addresses, routes, sysctls)', setupMs, {
    ratio_p50_vs_reference: +(setup / ref.p50_ms).toFixed(2),
  });
  stats('plugin DEL in one process', await lanes((i) => del(conf, env('DEL', i), deps)));
  await ds.close();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
