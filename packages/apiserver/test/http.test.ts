// tortie-apiserver over real etcd, at the HTTP level: bad input gets a Status and the
// server keeps serving; watch bookmarks and 410 after compaction; dryRun; HTTPS with a lab
// CA and bearer tokens, checked with real kubectl.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { describeIf } from '@tortie/testbed';
import { ApiServer, makeLabCertificates } from '../src';
import { startHarness, until, writeKubeconfig, type Harness } from './harness';

interface Reply {
  code: number;
  body: Record<string, unknown>;
}

function request(
  url: string,
  method: string,
  p: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}${p}`,
      { method, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += String(d)));
        res.on('end', () =>
          resolve({ code: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A watch's events as they arrive. */
function watch(
  url: string,
  p: string,
): { events: Record<string, unknown>[]; ended: () => boolean; stop: () => void } {
  const events: Record<string, unknown>[] = [];
  let ended = false;
  let buf = '';
  const req = http.get(`${url}${p}`, (res) => {
    res.on('data', (d) => {
      buf += String(d);
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
      }
    });
    res.on('end', () => (ended = true));
    res.on('error', () => (ended = true));
  });
  req.on('error', () => (ended = true));
  return { events, ended: () => ended, stop: () => req.destroy() };
}

const ns = (name: string) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

describeIf(['etcd'], 'tortie-apiserver over HTTP', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ maxBodyBytes: 64 * 1024, maxWatchBufferBytes: 256 * 1024 });
  }, 60000);
  afterAll(async () => {
    await h?.stop();
  });

  test('bad input gets a Status error and the server keeps serving', async () => {
    const garbage = await request(h.url, 'POST', '/api/v1/namespaces', '{not json');
    expect(garbage).toMatchObject({
      code: 400,
      body: {
        kind: 'Status',
        reason: 'BadRequest',
        message: expect.stringContaining('not valid JSON'),
      },
    });
    const wrongType = await request(h.url, 'POST', '/api/v1/namespaces', ns('x'), {
      'content-type': 'application/vnd.kubernetes.protobuf',
    });
    expect(wrongType).toMatchObject({ code: 415, body: { reason: 'UnsupportedMediaType' } });
    const unknownKind = await request(h.url, 'POST', '/apis/example.com/v1/widgets', '{}');
    expect(unknownKind).toMatchObject({ code: 404, body: { reason: 'NotFound' } });
    const wrongKind = await request(
      h.url,
      'POST',
      '/api/v1/namespaces',
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }),
    );
    expect(wrongKind).toMatchObject({
      code: 400,
      body: { message: expect.stringContaining('does not match the kind') },
    });
    const big = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'big', annotations: { a: 'x'.repeat(100 * 1024) } },
    });
    expect(await request(h.url, 'POST', '/api/v1/namespaces', big)).toMatchObject({
      code: 413,
      body: { reason: 'RequestEntityTooLarge' },
    });
    const noName = await request(
      h.url,
      'POST',
      '/api/v1/namespaces',
      JSON.stringify({ apiVersion: 'v1', kind: 'Namespace' }),
    );
    expect(noName).toMatchObject({
      code: 422,
      body: {
        reason: 'Invalid',
        details: { causes: [expect.objectContaining({ field: 'metadata.name' })] },
      },
    });
    const noNamespace = await request(
      h.url,
      'POST',
      '/api/v1/namespaces/nowhere/serviceaccounts',
      JSON.stringify({ metadata: { name: 'x' } }),
    );
    expect(noNamespace).toMatchObject({
      code: 404,
      body: { message: 'namespaces "nowhere" not found' },
    });
    const badPatch = await request(
      h.url,
      'PATCH',
      '/api/v1/namespaces/default',
      '[{"op":"jump"}]',
      { 'content-type': 'application/json-patch+json' },
    );
    expect(badPatch.code).toBe(400);
    // still serving, nothing lost
    expect(await request(h.url, 'POST', '/api/v1/namespaces', ns('after'))).toMatchObject({
      code: 201,
    });
    expect(await request(h.url, 'GET', '/api/v1/namespaces/after')).toMatchObject({
      code: 200,
      body: { metadata: { name: 'after' } },
    });
    expect((await request(h.url, 'GET', '/api/v1/namespaces/big')).code).toBe(404);
  });

  test('a watch client that stops reading is cut off at the bounded buffer; others are served', async () => {
    let stalled: http.IncomingMessage | undefined;
    const req = http.get(`${h.url}/api/v1/serviceaccounts?watch=true`, (res) => {
      stalled = res;
      res.pause(); // reads nothing for now
    });
    req.on('error', () => undefined);
    await until('the watch', () => !!stalled);
    const note = 'x'.repeat(30 * 1024);
    const n = 150; // 4.5 MB of events against a 256 KiB bound
    for (let i = 0; i < n; i++)
      await request(
        h.url,
        'POST',
        '/api/v1/namespaces/default/serviceaccounts',
        JSON.stringify({ metadata: { name: `sa${i}`, annotations: { note } } }),
      );
    // now read: the stream ends early, cut off by the server
    let text = '';
    let ended = false;
    stalled!.on('data', (d) => (text += String(d)));
    stalled!.on('close', () => (ended = true));
    stalled!.resume();
    await until('the end of the cut-off stream', () => ended);
    const received = text.split('\n').filter((l) => l.startsWith('{"type":"ADDED"')).length;
    expect(received).toBeLessThan(n);
    const list = await request(h.url, 'GET', '/api/v1/namespaces/default/serviceaccounts');
    expect((list.body.items as unknown[]).length).toBe(n);
  }, 60000);

  test("pods/status takes annotation changes as kube-apiserver's pod status strategy, not spec changes", async () => {
    await request(h.url, 'POST', '/api/v1/namespaces', ns('podstatus'));
    const created = await request(
      h.url,
      'POST',
      '/api/v1/namespaces/podstatus/pods',
      JSON.stringify({
        metadata: { name: 'p', annotations: { keep: 'me' } },
        spec: { nodeName: 'n1', containers: [{ name: 'c' }] },
      }),
    );
    expect(created.code).toBe(201);
    const uid = (created.body.metadata as { uid: string }).uid;
    // Calico's CNI plugin: a strategic merge patch of pods/status with the pod's addresses
    const patched = await request(
      h.url,
      'PATCH',
      '/api/v1/namespaces/podstatus/pods/p/status',
      JSON.stringify({
        metadata: { uid, annotations: { 'cni.projectcalico.org/podIP': '10.244.0.5/32' } },
        spec: { nodeName: 'elsewhere' },
      }),
      { 'content-type': 'application/strategic-merge-patch+json' },
    );
    expect(patched).toMatchObject({
      code: 200,
      body: {
        metadata: { annotations: { keep: 'me', 'cni.projectcalico.org/podIP': '10.244.0.5/32' } },
        spec: { nodeName: 'n1' },
      },
    });
    // a uid of another pod of that name is a failed precondition
    const stale = await request(
      h.url,
      'PATCH',
      '/api/v1/namespaces/podstatus/pods/p/status',
      JSON.stringify({ metadata: { uid: 'another', annotations: { x: 'y' } } }),
      { 'content-type': 'application/strategic-merge-patch+json' },
    );
    expect(stale).toMatchObject({ code: 409, body: { reason: 'Conflict' } });
  });

  test("list paging: limit and continue at the first page's revision, remainingItemCount, 410 with a new token once compacted", async () => {
    await request(h.url, 'POST', '/api/v1/namespaces', ns('paging'));
    const sa = (name: string, labels: Record<string, string> = {}) =>
      request(
        h.url,
        'POST',
        '/api/v1/namespaces/paging/serviceaccounts',
        JSON.stringify({ metadata: { name, labels } }),
      );
    for (let i = 0; i < 7; i++) await sa(`sa${i}`, { odd: String(i % 2 === 1) });
    type List = {
      metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
      items: Array<{ metadata: { name: string } }>;
    };
    const names = (l: List) => l.items.map((o) => o.metadata.name);
    const page = async (q: string) => {
      const r = await request(h.url, 'GET', `/api/v1/namespaces/paging/serviceaccounts?${q}`);
      expect(r.code).toBe(200);
      return r.body as unknown as List;
    };
    const p1 = await page('limit=3');
    expect(names(p1)).toEqual(['sa0', 'sa1', 'sa2']);
    expect(p1.metadata.remainingItemCount).toBe(4);
    // the token is kube-apiserver's: base64url JSON of version, revision and the next key
    expect(JSON.parse(Buffer.from(p1.metadata.continue!, 'base64url').toString())).toEqual({
      v: 'meta.k8s.io/v1',
      rv: Number(p1.metadata.resourceVersion),
      start: 'sa2\u0000',
    });
    // written after the first page: not in this list's later pages (one consistent list)
    await sa('sa3a');
    const p2 = await page(`limit=3&continue=${encodeURIComponent(p1.metadata.continue!)}`);
    expect(names(p2)).toEqual(['sa3', 'sa4', 'sa5']);
    expect(p2.metadata).toMatchObject({
      resourceVersion: p1.metadata.resourceVersion,
      remainingItemCount: 1,
    });
    const p3 = await page(`limit=3&continue=${encodeURIComponent(p2.metadata.continue!)}`);
    expect(names(p3)).toEqual(['sa6']);
    expect(p3.metadata.continue).toBeUndefined();
    expect(p3.metadata.remainingItemCount).toBeUndefined();
    // with a selector: pages of matching objects, and no count (it would count the others)
    const odd1 = await page('limit=2&labelSelector=odd%3Dtrue');
    expect(names(odd1)).toEqual(['sa1', 'sa3']);
    expect(odd1.metadata.remainingItemCount).toBeUndefined();
    const odd2 = await page(
      `limit=2&labelSelector=odd%3Dtrue&continue=${encodeURIComponent(odd1.metadata.continue!)}`,
    );
    expect(names(odd2)).toEqual(['sa5']);
    // without a limit: everything, as before
    expect(names(await page(''))).toHaveLength(8);
    // bad tokens and options get 400/422 naming what is wrong
    expect(
      await request(h.url, 'GET', '/api/v1/namespaces/paging/serviceaccounts?limit=2&continue=xyz'),
    ).toMatchObject({
      code: 400,
      body: { reason: 'BadRequest', message: expect.stringContaining('continue key is not valid') },
    });
    expect(
      await request(
        h.url,
        'GET',
        `/api/v1/namespaces/paging/serviceaccounts?limit=2&resourceVersion=5&continue=${encodeURIComponent(p1.metadata.continue!)}`,
      ),
    ).toMatchObject({
      code: 400,
      body: { message: 'specifying resource version is not allowed when using continue' },
    });
    expect(
      await request(h.url, 'GET', '/api/v1/namespaces/paging/serviceaccounts?limit=x'),
    ).toMatchObject({ code: 400 });
    // the first page's revision compacted away: 410 Expired with a token for the rest now
    const q1 = await page('limit=4');
    await sa('sa9');
    await h.server.storage.compact((await page('')).metadata.resourceVersion);
    const expired = await request(
      h.url,
      'GET',
      `/api/v1/namespaces/paging/serviceaccounts?limit=4&continue=${encodeURIComponent(q1.metadata.continue!)}`,
    );
    expect(expired).toMatchObject({
      code: 410,
      body: {
        kind: 'Status',
        reason: 'Expired',
        message: expect.stringContaining(
          'The provided continue parameter is too old to display a consistent list result.',
        ),
        metadata: { continue: expect.any(String) },
      },
    });
    const token = (expired.body.metadata as { continue: string }).continue;
    expect(JSON.parse(Buffer.from(token, 'base64url').toString())).toMatchObject({ rv: -1 });
    const rest = await page(`limit=10&continue=${encodeURIComponent(token)}`);
    expect(names(rest)).toEqual(['sa3a', 'sa4', 'sa5', 'sa6', 'sa9']);
  }, 60000);

  test('dryRun=All answers as a write would and stores nothing', async () => {
    const dry = await request(h.url, 'POST', '/api/v1/namespaces?dryRun=All', ns('dry'));
    expect(dry).toMatchObject({ code: 201, body: { metadata: { name: 'dry' } } });
    expect((await request(h.url, 'GET', '/api/v1/namespaces/dry')).code).toBe(404);
  });

  test('a watch gets bookmarks, an object leaving its selector as DELETED, and 410 once compacted', async () => {
    const created = await request(
      h.url,
      'POST',
      '/api/v1/namespaces',
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'w1', labels: { a: 'b' } },
      }),
    );
    const rv = (created.body.metadata as { resourceVersion: string }).resourceVersion;
    const w = watch(
      h.url,
      `/api/v1/namespaces?watch=true&allowWatchBookmarks=true&labelSelector=a%3Db&resourceVersion=${rv}`,
    );
    await request(h.url, 'PATCH', '/api/v1/namespaces/w1', '{"metadata":{"labels":{"a":"c"}}}', {
      'content-type': 'application/merge-patch+json',
    });
    await until(
      'DELETED and a bookmark',
      () =>
        w.events.some((e) => e.type === 'DELETED') && w.events.some((e) => e.type === 'BOOKMARK'),
    );
    expect(w.events[0]).toMatchObject({
      type: 'DELETED',
      object: { metadata: { name: 'w1', labels: { a: 'c' } } },
    });
    const bookmark = w.events.find((e) => e.type === 'BOOKMARK') as {
      object: { kind: string; metadata: { resourceVersion: string } };
    };
    expect(bookmark.object.kind).toBe('Namespace');
    expect(Number(bookmark.object.metadata.resourceVersion)).toBeGreaterThan(Number(rv));
    w.stop();
    // compact past rv's next revision: a watch or an exact list from rv is 410 Expired
    await request(h.url, 'POST', '/api/v1/namespaces', ns('w2'));
    const now = (await request(h.url, 'GET', '/api/v1/namespaces')).body.metadata as {
      resourceVersion: string;
    };
    await h.server.storage.compact(now.resourceVersion);
    const old = watch(h.url, `/api/v1/namespaces?watch=true&resourceVersion=${rv}`);
    await until('the 410', () => old.ended());
    expect(old.events).toEqual([
      {
        type: 'ERROR',
        object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }),
      },
    ]);
    const list = await request(
      h.url,
      'GET',
      `/api/v1/namespaces?resourceVersion=${rv}&resourceVersionMatch=Exact`,
    );
    expect(list).toMatchObject({ code: 410, body: { reason: 'Expired' } });
  }, 60000);
});

describeIf(['etcd'], 'tortie-apiserver over HTTPS with a lab CA and tokens', () => {
  let h: Harness;
  let secure: ApiServer;
  let url: string;
  beforeAll(async () => {
    h = await startHarness();
    const certs = await makeLabCertificates(path.join(h.dir, 'pki'));
    secure = new ApiServer({
      etcd: [h.etcd.endpoint],
      tls: { cert: fs.readFileSync(certs.certFile), key: fs.readFileSync(certs.keyFile) },
      tokens: ['s3cret'],
    });
    url = await secure.listen();
    writeKubeconfig(path.join(h.dir, 'good'), url, { ca: certs.caFile, token: 's3cret' });
    writeKubeconfig(path.join(h.dir, 'wrong'), url, { ca: certs.caFile, token: 'guess' });
  }, 60000);
  afterAll(async () => {
    await secure?.close();
    await h?.stop();
  });

  test('kubectl verifies the server by the lab CA; a token is required', async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const as = (cfg: string, args: string[]) =>
      h.kubectl(['--kubeconfig', path.join(h.dir, cfg), ...args]);
    const good = await as('good', ['get', 'namespaces', '-o', 'name']);
    expect(good).toMatchObject({ code: 0 });
    // (kubectl with no credentials at all asks for a password: ask over HTTPS directly)
    const anonymous = await new Promise<Reply>((resolve, reject) =>
      https
        .get(
          `${url}/api/v1/namespaces`,
          { ca: fs.readFileSync(path.join(h.dir, 'pki/ca.crt')) },
          (res) => {
            let text = '';
            res.on('data', (d) => (text += String(d)));
            res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(text) }));
          },
        )
        .on('error', reject),
    );
    expect(anonymous).toMatchObject({
      code: 401,
      body: { kind: 'Status', reason: 'Unauthorized' },
    });
    const wrong = await as('wrong', ['get', 'namespaces']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('Unauthorized');
  }, 60000);
});
