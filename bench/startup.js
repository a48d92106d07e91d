#!/usr/bin/env node
// Start-up time of each tortie binary: to --help, and to a typical first useful action,
// against `node -e 0` measured in the same run (the reference: what any node program
// pays before its first line). Rounds are interleaved, so a change of machine load hits
// every row alike; figures are medians. Run `npm run build` first; needs etcd for the
// rows marked so (tortiectl against etcd, tortie-apiserver serving).
//   node bench/startup.js [rounds=7]
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Testbed, Etcd } = require('../packages/testbed/dist');

const rounds = Number(process.argv[2] ?? 7);
const pkg = (p) => path.resolve(__dirname, '../packages', p);
const bin = {
  'tortie-node': pkg('felix/dist/cli.js'),
  tortiectl: pkg('ctl/dist/cli.js'),
  'tortie-rr': pkg('route-reflector/dist/cli.js'),
  'tortie-apiserver': pkg('apiserver/dist/main.js'),
  'tortie-controllers': pkg('controllers/dist/cli.js'),
  'tortie-cni': pkg('cni/dist/cli.js'),
  'install-cni': pkg('cni/dist/install-cni-cli.js'),
  'tortie-bgp': pkg('bgp-speaker/dist/cli.js'),
};

/**
 * Runs one command; resolves with the wall time (ms) until it exited or, with `until`,
 * until its stdout matched (then it is killed). A non-zero exit where 0 is expected
 * fails the run: a bench of a broken command measures nothing.
 */
function time(row) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const p = spawn('node', row.args, {
      env: { ...process.env, ...row.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let done = false;
    p.stdout.on('data', (d) => {
      out += d;
      if (row.until && !done && row.until.test(out)) {
        done = true;
        const t = ms();
        p.kill('SIGKILL');
        resolve(t);
      }
    });
    p.stderr.on('data', (d) => (err += d));
    p.stdin.end(row.input ?? '');
    p.on('exit', (code) => {
      if (done) return;
      const t = ms();
      if (row.until || code !== (row.code ?? 0))
        reject(new Error(`${row.name}: exit ${code}: ${err.trim() || out.trim()}`));
      else resolve(t);
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-startup-'));
  const tb = new Testbed();
  try {
    const etcd = await Etcd.start(tb);
    const store = path.join(dir, 'store.json');
    const cniConf = JSON.stringify({ cniVersion: '1.0.0', name: 'k8s', type: 'tortie-cni' });
    const rows = [
      { name: 'node -e 0', args: ['-e', '0'] },
      { name: 'tortie-node --help', args: [bin['tortie-node'], '--help'] },
      {
        name: 'tortie-node --detect-addresses (IP given)',
        args: [bin['tortie-node'], '--detect-addresses'],
        env: { IP: '10.0.0.1/24', IP6: 'none', NODENAME: 'n1' },
      },
      { name: 'tortiectl --help', args: [bin.tortiectl, '--help'] },
      {
        name: 'tortiectl get ippools (datastore file)',
        args: [bin.tortiectl, 'get', 'ippools', '--datastore-file', store],
      },
      {
        name: 'tortiectl get ippools (etcd)',
        args: [bin.tortiectl, 'get', 'ippools', '--etcd-endpoints', etcd.endpoint],
      },
      { name: 'tortie-rr --help', args: [bin['tortie-rr'], '--help'] },
      { name: 'tortie-apiserver --help', args: [bin['tortie-apiserver'], '--help'] },
      {
        name: 'tortie-apiserver serving (etcd)',
        args: [bin['tortie-apiserver'], '--etcd-servers', etcd.endpoint, '--port', '0'],
        until: /^https?:\/\//m,
      },
      { name: 'tortie-controllers --help', args: [bin['tortie-controllers'], '--help'] },
      {
        name: 'tortie-cni VERSION',
        args: [bin['tortie-cni']],
        env: { CNI_COMMAND: 'VERSION' },
        input: cniConf,
      },
      { name: 'install-cni --help', args: [bin['install-cni'], '--help'] },
      { name: 'tortie-bgp --help', args: [bin['tortie-bgp'], '--help'] },
    ];
    const times = new Map(rows.map((r) => [r.name, []]));
    for (let i = 0; i < rounds; i++)
      for (const row of rows) times.get(row.name).push(await time(row));
    const ref = median(times.get('node -e 0'));
    for (const row of rows) {
      const m = median(times.get(row.name));
      process.stdout.write(
        JSON.stringify({
          figure: row.name,
          median_ms: Math.round(m),
          reference: 'node -e 0',
          reference_ms: Math.round(ref),
          ratio: Number((m / ref).toFixed(2)),
          rounds,
          loadavg: Number(os.loadavg()[0].toFixed(1)),
        }) + '\n',
      );
    }
  } finally {
    await tb.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
