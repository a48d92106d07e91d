// The lab's web page (npm run lab -- --keep --ui) in a real browser: Debian's chromium
// driven by playwright-core. A 2-node lab with a BIRD ToR and three pods; the page is
// served by startUi, as the lab's --ui does. A policy written after the page is up shows
// as events (written, then programmed on each node), the matrix from real pings marks the
// flow it denies as blocked, and clicking that cell shows the policy that decided it.
// A screenshot is saved as a test artifact (artifacts/lab-ui.png, or $TORTIE_ARTIFACTS).
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { Cluster, startUi, type LabUi } from '@tortie/lab';
import { SLOW, describeIf } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft', 'chromium'] as const;
const ARTIFACTS = process.env.TORTIE_ARTIFACTS ?? path.resolve(__dirname, '../artifacts');

// as the env notes launch Debian's chromium here as root: no sandbox, no network chatter
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describeIf([...NEEDS], 'lab web page (--keep --ui) in chromium', () => {
  let c: Cluster;
  let ui: LabUi;
  let browser: Browser | undefined;
  beforeAll(async () => {
    c = await Cluster.start({ nodes: 2, tor: true });
    await Promise.all([c.ready(0, 60_000), c.ready(1, 60_000)]);
    await c.addPod(0, 'web1', { app: 'web' });
    await c.addPod(0, 'db1', { app: 'db' });
    await c.addPod(1, 'db2', { app: 'db' });
    ui = await startUi(c, 0);
  }, 120_000 * SLOW);
  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await c?.stop();
  });

  test(
    'topology, events, matrix; a blocked cell explains the policy that denied it',
    async () => {
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(ui.url);
      // the topology: both nodes and the ToR, every session Established (mesh + 2 ToR)
      await page.waitForSelector('#topology line.up >> nth=2', { timeout: 60_000 });
      expect(await page.locator('#topology line.down').count()).toBe(0);
      expect(await page.locator('#topology').textContent()).toContain('ToR (bird)');
      expect(await page.locator('#nodes').textContent()).toMatch(/pod default\/db2 10\.244\./);
      // a full matrix, every cell reachable before any policy
      await page.waitForSelector('#matrix td.ok >> nth=5', { timeout: 60_000 });
      expect(await page.locator('#matrix td.blocked').count()).toBe(0);

      await c.apply({
        kind: 'NetworkPolicy',
        metadata: { name: 'db-not-from-db', namespace: 'default' },
        spec: {
          selector: "app == 'db'",
          types: ['Ingress'],
          ingress: [{ action: 'Deny', source: { selector: "app == 'db'" } }, { action: 'Allow' }],
        },
      });
      // events as they happen: the write, then each node's time to program it
      await page.waitForSelector(
        '#events li:has-text("NetworkPolicy default/db-not-from-db added")',
      );
      await page.waitForSelector('#events li:has-text("db-not-from-db programmed: node1")', {
        timeout: 20_000,
      });
      const blocked = page.locator('#matrix td.blocked[data-from="db1"][data-to="db2"]');
      await blocked.waitFor({ timeout: 30_000 });
      // only the flows between db pods are blocked
      expect(await page.locator('#matrix td.blocked').count()).toBe(2);
      await blocked.click();
      const deciding = page.locator('#explain .deciding');
      await deciding.waitFor({ timeout: 10_000 });
      expect(await deciding.textContent()).toBe(
        'DENIED by policy default/db-not-from-db rule 0 (tier default): Deny (ingress at default/db2)',
      );
      expect(await page.locator('#explain').textContent()).toContain('DENIED');
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      const shot = path.join(ARTIFACTS, 'lab-ui.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
      // read-only: nothing but GET
      const post = await page.evaluate(
        async () => (await fetch('api/state', { method: 'POST' })).status,
      );
      expect(post).toBe(405);
    },
    120_000 * SLOW,
  );
});
