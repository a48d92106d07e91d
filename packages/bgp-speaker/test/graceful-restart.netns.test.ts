// Graceful restart (RFC 4724) against BIRD 2 and FRR, each in its own namespace:
// (a) we help: the daemon is killed (no NOTIFICATION), its routes stay in our Loc-RIB
//     as stale, and when it comes back with the F bit (BIRD -R; FRR with
//     preserve-fw-state) they are refreshed without ever leaving; back without it,
//     they are flushed at once and relearned;
// (b) we restart: our daemon is killed, the peer keeps our routes until we are back
//     and have sent End-of-RIB.
// The daemons run from our own config files here (the testbed drivers have no graceful
// restart options), with the testbed's config writers and parsers.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  Testbed,
  birdConfig,
  describeIf,
  frrConfig,
  link,
  parseBirdProtocols,
  parseBirdRoutes,
  stopProcess,
  waitUntil,
  type Netns,
} from '@tortie/testbed';
import type { SpeakerConfigInput } from '../src/config';
import { SpeakerProcess, type RouteRow } from '../src/speaker-process';

const US = '10.0.0.1';
const THEM = '10.0.0.2';
const OUR_AS = 65000;
const THEIR_AS = 65100;
const OURS = '10.10.0.0/24';
const THEIRS = '10.20.0.0/24';

/** A daemon we start and kill ourselves, in a namespace, with its output in a log. */
interface Driver {
  start(opts: { restarting: boolean }): Promise<void>;
  kill(): Promise<void>;
  established(): Promise<boolean>;
  /** Prefixes the daemon has learned from us. */
  learned(): Promise<string[]>;
  log(): string;
}

function spawnLogged(ns: Netns, argv: string[], logFile: string): ChildProcess {
  const p = ns.spawn(argv);
  p.stdout?.on('data', (d: Buffer) => fs.appendFileSync(logFile, d));
  p.stderr?.on('data', (d: Buffer) => fs.appendFileSync(logFile, d));
  return p;
}

function killNow(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    p.once('exit', () => r());
    p.kill('SIGKILL'); // no NOTIFICATION: the kernel just closes the TCP connection
  });
}

function bird(tb: Testbed, ns: Netns): Driver {
  const dir = tb.tempDir('bird-gr');
  const conf = path.join(dir, 'bird.conf');
  const sock = path.join(dir, 'bird.ctl');
  const logFile = path.join(dir, 'bird.log');
  const text = birdConfig({
    routerId: THEM,
    routes: [{ prefix: THEIRS }],
    peers: [
      { name: 'tortie', localAs: THEIR_AS, neighbor: US, neighborAs: OUR_AS, families: ['ipv4'] },
    ],
  }).replace(
    /^(protocol bgp \S+ \{)$/m,
    '$1\n  graceful restart on;\n  graceful restart time 120;',
  );
  fs.writeFileSync(conf, text);
  let proc: ChildProcess | undefined;
  const birdc = (cmd: string) => ns.exec(['birdc', '-s', sock, ...cmd.split(' ')]);
  tb.onCleanup(() => (proc ? stopProcess(proc) : Promise.resolve()));
  return {
    async start({ restarting }) {
      // -R: graceful restart recovery (R bit, and F bit for each channel)
      const argv = ['bird', '-f', ...(restarting ? ['-R'] : []), '-c', conf, '-s', sock];
      proc = spawnLogged(ns, argv, logFile);
      await waitUntil('BIRD answers', () => birdc('show status').then(() => true), 10000);
    },
    kill: () => killNow(proc),
    established: async () =>
      parseBirdProtocols(await birdc('show protocols'))
        .find((p) => p.name === 'tortie')
        ?.info.startsWith('Established') ?? false,
    learned: async () =>
      parseBirdRoutes(await birdc('show route table master4 all'))
        .filter((r) => r.protocol === 'tortie')
        .map((r) => r.prefix),
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
  };
}

function frr(tb: Testbed, ns: Netns): Driver {
  const dir = tb.tempDir('frr-gr');
  const conf = path.join(dir, 'bgpd.conf');
  const logFile = path.join(dir, 'bgpd.log');
  const text = frrConfig({
    asn: THEIR_AS,
    routerId: THEM,
    networks: [THEIRS],
    neighbors: [{ address: US, remoteAs: OUR_AS, families: ['ipv4'] }],
  });
  let proc: ChildProcess | undefined;
  const vtysh = (cmd: string) => ns.exec(['vtysh', '--vty_socket', dir, '-c', cmd]);
  tb.onCleanup(() => (proc ? stopProcess(proc) : Promise.resolve()));
  return {
    async start({ restarting }) {
      // without zebra the `network` prefix is not in a RIB: skip FRR's import check;
      // restarting: announce the F bit (forwarding kept), as a restart with zebra would
      const gr = [' no bgp network import-check', ' bgp graceful-restart'];
      if (restarting) gr.push(' bgp graceful-restart preserve-fw-state');
      fs.writeFileSync(conf, text.replace(/^( bgp router-id .*)$/m, `$1\n${gr.join('\n')}`));
      const argv = ['/usr/lib/frr/bgpd', '-f', conf, '-i', path.join(dir, 'bgpd.pid')];
      argv.push('-Z', '-S', '-u', 'root', '-g', 'root', '--vty_socket', dir, '--log', 'stdout');
      proc = spawnLogged(ns, argv, logFile);
      await waitUntil('bgpd answers', () => vtysh('show bgp summary json').then(() => true), 10000);
    },
    kill: () => killNow(proc),
    established: async () => {
      const j = JSON.parse(await vtysh(`show bgp neighbors ${US} json`)) as Record<
        string,
        { bgpState?: string }
      >;
      return j[US]?.bgpState === 'Established';
    },
    learned: async () => {
      const j = JSON.parse(await vtysh('show bgp ipv4 unicast json')) as {
        routes?: Record<string, Array<{ nexthops?: Array<{ ip: string }> }>>;
      };
      return Object.entries(j.routes ?? {})
        .filter(([, paths]) => paths.some((p) => p.nexthops?.some((n) => n.ip === US)))
        .map(([prefix]) => prefix);
    },
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
  };
}

function ourConfig(): SpeakerConfigInput {
  return {
    asn: OUR_AS,
    routerId: US,
    listen: { address: '::', port: 179 },
    nextHop: { ipv4: US },
    gracefulRestart: { enabled: true, restartTimeS: 120, restarting: true },
    // originated from the start, so our first UPDATEs (before End-of-RIB) carry it
    originate: [{ prefix: OURS }],
    peers: [
      { address: THEM, asn: THEIR_AS, holdTime: 9, connectRetryTime: 1, errorWaitTime: [0.5, 1] },
    ],
  };
}

async function setup(tb: Testbed, make: (tb: Testbed, ns: Netns) => Driver) {
  const us = await tb.netns('us');
  const them = await tb.netns('peer');
  await link(us, them, { v4: [`${US}/24`, `${THEM}/24`] });
  const d = make(tb, them);
  await d.start({ restarting: false });
  let n = 0;
  const startUs = () =>
    SpeakerProcess.start((argv, o) => us.spawn(argv, o), tb.tempDir(`us${n++}`), ourConfig(), {
      logLevel: 'debug',
    });
  const s = await startUs();
  return { d, s, startUs };
}

const theirRoute = async (s: SpeakerProcess): Promise<RouteRow | undefined> =>
  (await s.routes()).find((r) => r.prefix === THEIRS);
const ourState = async (s: SpeakerProcess) => (await s.peers())[0]?.state;

/** Polls `check` until `done` holds, failing at once if `check` is ever false. */
async function always(what: string, check: () => Promise<boolean>, done: () => Promise<boolean>) {
  await waitUntil(
    what,
    async () => {
      if (!(await check())) throw new Error(`broken while waiting: ${what}`);
      return done();
    },
    30000,
    100,
  );
}

const daemons = [
  { name: 'BIRD 2', need: 'bird' as const, make: bird },
  { name: 'FRR', need: 'frr' as const, make: frr },
];

for (const daemon of daemons) {
  describeIf(['netns', daemon.need, 'root'], `graceful restart with ${daemon.name}`, () => {
    let tb: Testbed;
    beforeEach(() => {
      tb = new Testbed();
    });
    afterEach(async () => {
      await tb.cleanup();
    });

    test(`${daemon.name} killed: its routes stay in our Loc-RIB as stale; back restarting: refreshed, never withdrawn`, async () => {
      const { d, s } = await setup(tb, daemon.make);
      try {
        await waitUntil('their route', async () => (await theirRoute(s)) !== undefined);
        expect((await theirRoute(s))?.stale).toBeUndefined();
        await d.kill();
        await waitUntil('our session down', async () => (await ourState(s)) !== 'Established');
        expect(await theirRoute(s)).toMatchObject({ prefix: THEIRS, stale: true });
        expect((await s.peers())[0]).toMatchObject({ staleRoutes: 1 });
        await d.start({ restarting: true });
        await always(
          'their route kept until refreshed',
          async () => (await theirRoute(s)) !== undefined,
          // its End-of-RIB ends the stale state of the family
          async () => s.log().includes('"why":"End-of-RIB"'),
        );
        const refreshed = await theirRoute(s);
        expect(refreshed?.prefix).toBe(THEIRS);
        expect(refreshed?.stale).toBeUndefined();
        expect((await s.peers())[0]).toMatchObject({ state: 'Established', staleRoutes: 0 });
      } catch (err) {
        process.stderr.write(
          `--- ours ---\n${s.log().slice(-3000)}\n--- ${daemon.name} ---\n${d.log().slice(-3000)}\n`,
        );
        throw err;
      }
    }, 60000);

    test(`${daemon.name} back without restarting (no F bit): the stale routes go at once, then are relearned`, async () => {
      const { d, s } = await setup(tb, daemon.make);
      await waitUntil('their route', async () => (await theirRoute(s)) !== undefined);
      await d.kill();
      await waitUntil('our session down', async () => (await ourState(s)) !== 'Established');
      expect((await theirRoute(s))?.stale).toBe(true);
      await d.start({ restarting: false });
      await waitUntil('their route relearned, not stale', async () => {
        const r = await theirRoute(s);
        return (await ourState(s)) === 'Established' && r !== undefined && !r.stale;
      });
      expect(s.log()).toContain('"why":"forwarding state not preserved"');
    }, 60000);

    test(`we are killed: ${daemon.name} keeps our routes until we are back and sent End-of-RIB`, async () => {
      const { d, s, startUs } = await setup(tb, daemon.make);
      try {
        await waitUntil(`our route at ${daemon.name}`, async () =>
          (await d.learned()).includes(OURS),
        );
        await killNow(s.proc);
        await waitUntil(
          `${daemon.name} sees the session drop`,
          async () => !(await d.established()),
        );
        expect(await d.learned()).toContain(OURS);
        const s2 = await startUs();
        await always(
          `our route kept at ${daemon.name}`,
          async () => (await d.learned()).includes(OURS),
          async () => (await d.established()) && (await ourState(s2)) === 'Established',
        );
        // a while after End-of-RIB it is still there (refreshed, not flushed)
        await new Promise((r) => setTimeout(r, 1000));
        expect(await d.learned()).toContain(OURS);
      } catch (err) {
        process.stderr.write(`--- ${daemon.name} ---\n${d.log().slice(-3000)}\n`);
        throw err;
      }
    }, 60000);
  });
}
