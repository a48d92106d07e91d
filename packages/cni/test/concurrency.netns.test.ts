// 4 runtime processes x 250 pod ADDs (and DELs), 2 simulated nodes, one /24 pool with
// /26 blocks, a real etcd: no address is ever held by two pods at once, every block is
// accounted for, and after the DELs IPAM has nothing left and nothing leaked.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseResource, type Resource } from '@tortie/api';
import { EtcdDatastore } from '@tortie/datastore';
import { IpamClient, isClean } from '@tortie/ipam';
import { Etcd, PortForward, Testbed, describeIf, run, type Netns } from '@tortie/testbed';

const WORKER = path.resolve(__dirname, 'fixtures/add-worker.js');
const PORT = 23791;

interface Rec {
  worker: string;
  node: string;
  pod: number;
  ip: string;
  addAt: string;
  delAt?: string;
}

describeIf(['root', 'netns', 'etcd'], 'CNI ADD concurrency (real etcd, real veths)', () => {
  let tb: Testbed;
  let ds: EtcdDatastore;
  const prefix = `tt-cc${randomBytes(2).toString('hex')}`;

  beforeAll(async () => {
    tb = new Testbed();
    const etcd = await Etcd.start(tb);
    ds = new EtcdDatastore([etcd.endpoint]);
    tb.onCleanup(async () => {
      // pod namespaces a crashed worker left behind (only ours: the random prefix)
      const { stdout } = await run(['ip', 'netns', 'list']);
      for (const line of stdout.split('\n')) {
        const name = line.split(' ')[0];
        if (name.startsWith(`${prefix}-`)) await run(['ip', 'netns', 'del', name]).catch(() => 0);
      }
    });
    await ds.create(
      parseResource({
        apiVersion: 'tortie.io/v1',
        kind: 'IPPool',
        metadata: { name: 'p' },
        spec: { cidr: '10.66.0.0/24', blockSize: 26 },
      }),
    );
    (globalThis as { etcdPort?: number }).etcdPort = Number(new URL(etcd.endpoint).port);
  });
  afterAll(async () => {
    await ds?.close();
    await tb.cleanup();
  });

  async function worker(ns: Netns, id: number, node: string): Promise<Rec[]> {
    const p = ns.spawn([
      process.execPath,
      WORKER,
      String(id),
      node,
      '250',
      '48',
      '4',
      `http://127.0.0.1:${PORT}`,
      prefix,
    ]);
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    if (code !== 0) throw new Error(`worker ${id} exited ${code}: ${err}`);
    return out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Rec);
  }

  test('1,000 ADDs from 4 processes on 2 nodes: no duplicate, nothing leaked', async () => {
    const port = (globalThis as { etcdPort?: number }).etcdPort!;
    const nodes: Netns[] = [];
    for (const name of ['node-a', 'node-b']) {
      const ns = await tb.netns(name);
      await PortForward.start(tb, ns, PORT, { host: '127.0.0.1', port });
      await ds.create(
        parseResource({ apiVersion: 'tortie.io/v1', kind: 'Node', metadata: { name }, spec: {} }),
      );
      nodes.push(ns);
    }
    const recs = (
      await Promise.all(
        [0, 1, 2, 3].map((i) => worker(nodes[i % 2], i, i % 2 ? 'node-b' : 'node-a')),
      )
    ).flat();
    expect(recs).toHaveLength(1000);

    // an address may be reused, but never while another pod holds it
    const byIp = new Map<string, Rec[]>();
    for (const r of recs) byIp.set(r.ip, [...(byIp.get(r.ip) ?? []), r]);
    const overlaps: string[] = [];
    for (const [ip, list] of byIp) {
      list.sort((a, b) => (BigInt(a.addAt) < BigInt(b.addAt) ? -1 : 1));
      for (let i = 1; i < list.length; i++) {
        if (BigInt(list[i].addAt) < BigInt(list[i - 1].delAt!)) {
          overlaps.push(
            `${ip}: worker ${list[i - 1].worker} pod ${list[i - 1].pod} and worker ${list[i].worker} pod ${list[i].pod}`,
          );
        }
      }
    }
    expect(overlaps).toEqual([]);
    expect([...byIp.keys()].every((ip) => ip.startsWith('10.66.0.'))).toBe(true);

    // blocks: all inside the pool, each affine to one of the two nodes, all empty now
    const blocks = (await ds.list({ kind: 'IPAMBlock' })).items as Resource<'IPAMBlock'>[];
    expect(blocks.length).toBeGreaterThan(0);
    expect(blocks.length).toBeLessThanOrEqual(4);
    for (const b of blocks) {
      expect(['host:node-a', 'host:node-b']).toContain(b.spec.affinity);
      expect(b.spec.unallocated).toHaveLength(64);
    }
    const report = await new IpamClient(ds).check();
    expect(isClean(report)).toBe(true);
    expect(report.summary.allocated).toBe(0);
    expect((await ds.list({ kind: 'IPAMHandle' })).items).toEqual([]);
    expect((await ds.list({ kind: 'WorkloadEndpoint' })).items).toEqual([]);
    for (const ns of nodes)
      expect(await ns.exec(['ip', '-o', 'link', 'show', 'type', 'veth'])).toBe('');
  }, 300_000);
});
