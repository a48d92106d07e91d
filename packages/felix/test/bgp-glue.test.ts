// BGP glue against a recording speaker (its plan, planBgp, is tested in
// @tortie/bgp-topology; with real speakers and BIRD the glue runs in the agent's netns
// tests and e2e).
import type { BestPathChange, PeerConfigInput, SpeakerConfig } from '@tortie/bgp-speaker';
import { createLogger } from '@tortie/bgp-speaker';
import { BgpGlue, type SpeakerLike } from '../src/bgp/glue';
import type { BgpConfig } from '../src/types';

const logger = createLogger('test', 'error');

const base: BgpConfig = {
  enabled: true,
  asNumber: 64512,
  routerId: '10.0.0.1',
  listenPort: 179,
  peers: [
    { name: 'mesh-10.0.0.2', address: '10.0.0.2', port: 179, asNumber: 64512, restartTimeS: 120 },
    {
      name: 'mesh-10.0.0.3',
      address: '10.0.0.3',
      port: 179,
      asNumber: 64512,
      restartTimeS: 120,
      passive: true,
    },
  ],
  originate: ['10.244.1.0/26'],
};

class FakeSpeaker implements SpeakerLike {
  log: string[] = [];
  listener?: (c: BestPathChange[]) => void;
  endOfRib?: (address: string) => void;
  async start() {
    this.log.push('start');
  }
  async stop(opts: { graceful?: boolean } = {}) {
    this.log.push(opts.graceful ? 'stop graceful' : 'stop');
  }
  addPeer(p: PeerConfigInput) {
    this.log.push(`add ${p.address}`);
  }
  setPeerBfd(key: string, bfd: PeerConfigInput['bfd']) {
    this.log.push(`bfd ${key} ${bfd ? bfd.minTxMs : 'off'}`);
  }
  removePeer(a: string) {
    this.log.push(`remove ${a}`);
  }
  originate(p: string, o: { localPref?: number } = {}) {
    // LOCAL_PREF 2^31-1 - 1024 (the default normal route priority) goes unsaid
    const lp = o.localPref === 2147482623 ? '' : ` lp ${o.localPref ?? 'none'}`;
    this.log.push(`originate ${p}${lp}`);
  }
  setExportCommunities(rules: Array<{ cidr: string; communities: string[] }>) {
    this.log.push(`communities ${rules.map((r) => `${r.cidr} ${r.communities}`).join('; ')}`);
  }
  withdraw(p: string) {
    this.log.push(`withdraw ${p}`);
  }
  on(e: 'bestPath' | 'endOfRib', fn: ((c: BestPathChange[]) => void) | ((a: string) => void)) {
    if (e === 'bestPath') this.listener = fn as (c: BestPathChange[]) => void;
    else this.endOfRib = fn as (a: string) => void;
    return this;
  }
}

function recordingGlue(endOfRibWaitMs?: number) {
  const kernel: string[] = [];
  const speakers: FakeSpeaker[] = [];
  const made: SpeakerConfig[] = [];
  const glue = new BgpGlue({
    logger,
    endOfRibWaitMs,
    learned: {
      set: (d, nh, m) => kernel.push(`set ${d} via ${nh}${m !== undefined ? ` metric ${m}` : ''}`),
      remove: (d) => kernel.push(`remove ${d}`),
      complete: () => kernel.push('complete'),
    },
    makeSpeaker: (cfg) => {
      made.push(cfg);
      speakers.push(new FakeSpeaker());
      return speakers[speakers.length - 1];
    },
  });
  return { glue, kernel, speakers, made };
}

const learnedFrom = (address: string) => ({ id: address, address }) as never;

describe('BgpGlue with a recording speaker', () => {
  test('learned best paths go to the kernel sink, originated ones do not', async () => {
    const kernel: string[] = [];
    const speakers: FakeSpeaker[] = [];
    const glue = new BgpGlue({
      logger,
      learned: {
        set: (d, nh) => kernel.push(`set ${d} via ${nh}`),
        remove: (d) => kernel.push(`remove ${d}`),
      },
      makeSpeaker: () => {
        speakers.push(new FakeSpeaker());
        return speakers[speakers.length - 1];
      },
    });
    await glue.apply(base);
    expect(speakers[0].log).toEqual([
      'start',
      'add 10.0.0.2',
      'add 10.0.0.3',
      'originate 10.244.1.0/26',
    ]);
    const peer = { id: 'p', address: '10.0.0.2' } as never;
    speakers[0].listener!([
      { prefix: '10.244.2.0/26', best: { peer, attrs: { nextHop: '10.0.0.2' } as never } },
      { prefix: '10.244.1.0/26', best: { attrs: { nextHop: '10.0.0.1' } as never } },
    ]);
    speakers[0].listener!([{ prefix: '10.244.2.0/26' }]);
    expect(kernel).toEqual(['set 10.244.2.0/26 via 10.0.0.2', 'remove 10.244.2.0/26']);

    // BGP disabled: the speaker stops and its learned routes leave the kernel
    speakers[0].listener!([
      { prefix: '0.0.0.0/0', best: { peer, attrs: { nextHop: '10.0.0.2' } as never } },
    ]);
    await glue.apply({ ...base, enabled: false });
    expect(speakers[0].log.at(-1)).toBe('stop');
    expect(kernel.at(-1)).toBe('remove 0.0.0.0/0');
    expect(glue.learnedRoutes().size).toBe(0);
  });
});

describe('BGPConfiguration prefixAdvertisements reach the speaker', () => {
  test('as export communities of the speaker: set at start, changed on the running speaker, routes not re-originated', async () => {
    const { glue, speakers, made } = recordingGlue();
    const withRules = (communities: Array<{ cidr: string; communities: string[] }>) => ({
      ...base,
      originate: ['10.244.1.0/26', '198.51.100.0/24'],
      communities,
    });
    await glue.apply(
      withRules([{ cidr: '10.244.0.0/16', communities: ['65000:100', '65000:1:4294967295'] }]),
    );
    // the speaker starts with them; the prefixes are originated without communities
    expect(made[0].exportCommunities).toEqual([
      { cidr: '10.244.0.0/16', communities: ['65000:100', '65000:1:4294967295'] },
    ]);
    expect(speakers[0].log.filter((l) => l.startsWith('originate'))).toEqual([
      'originate 10.244.1.0/26',
      'originate 198.51.100.0/24',
    ]);
    speakers[0].log.length = 0;
    await glue.apply(withRules([{ cidr: '198.51.100.0/24', communities: ['65535:65535'] }]));
    expect(speakers[0].log).toEqual(['communities 198.51.100.0/24 65535:65535']);
    expect(speakers).toHaveLength(1); // no restart
    speakers[0].log.length = 0;
    await glue.apply(withRules([{ cidr: '198.51.100.0/24', communities: ['65535:65535'] }]));
    await glue.apply({ ...base, originate: ['10.244.1.0/26', '198.51.100.0/24'] });
    expect(speakers[0].log).toEqual(['communities ']);
  });
});

describe('route priority, as confd: LOCAL_PREF = 2^31-1 - priority = kernel metric', () => {
  test('learned routes get metric 2^31-1 - LOCAL_PREF (100 without one); a changed LOCAL_PREF re-installs', async () => {
    const { glue, speakers, kernel } = recordingGlue();
    await glue.apply(base);
    const peer = learnedFrom('10.0.0.2');
    const best = (localPref?: number) =>
      ({
        peer,
        attrs: { nextHop: '10.0.0.2', ...(localPref !== undefined ? { localPref } : {}) },
      }) as never;
    speakers[0].listener!([
      { prefix: '10.244.2.0/26', best: best(2147482623) }, // a node's normal route: 1024
      { prefix: '10.99.0.0/24', best: best() }, // from eBGP: BIRD's LOCAL_PREF 100
    ]);
    speakers[0].listener!([{ prefix: '10.244.2.0/26', best: best(2147483647 - 512) }]);
    speakers[0].listener!([{ prefix: '10.244.2.0/26', best: best(2147483647 - 512) }]); // same: nothing
    expect(kernel.filter((k) => k.startsWith('set'))).toEqual([
      'set 10.244.2.0/26 via 10.0.0.2 metric 1024',
      'set 10.99.0.0/24 via 10.0.0.2 metric 2147483547',
      'set 10.244.2.0/26 via 10.0.0.2 metric 512',
    ]);
    expect(glue.learnedRoutes().get('10.244.2.0/26')).toEqual({ nextHop: '10.0.0.2', metric: 512 });
  });

  test("own routes go out with LOCAL_PREF 2^31-1 - the family's normalRoutePriority; a change re-originates", async () => {
    const { glue, speakers } = recordingGlue();
    const cfg = (normalRoutePriority?: BgpConfig['normalRoutePriority']): BgpConfig => ({
      ...base,
      originate: ['10.244.1.0/26', 'fd10::/122'],
      ...(normalRoutePriority ? { normalRoutePriority } : {}),
    });
    await glue.apply(cfg());
    expect(speakers[0].log.filter((l) => l.startsWith('originate'))).toEqual([
      'originate 10.244.1.0/26', // LOCAL_PREF 2147482623: priority 1024
      'originate fd10::/122',
    ]);
    speakers[0].log.length = 0;
    await glue.apply(cfg({ ipv4: 700 }));
    expect(speakers[0].log).toEqual([`originate 10.244.1.0/26 lp ${2147483647 - 700}`]);
    speakers[0].log.length = 0;
    await glue.apply(cfg({ ipv4: 700, ipv6: 900 }));
    expect(speakers[0].log).toEqual([`originate fd10::/122 lp ${2147483647 - 900}`]);
  });
});

describe('the speaker log level follows BGPConfiguration logSeverityScreen', () => {
  test('set when the speaker starts, and changed on the running speaker', async () => {
    const speakerLogger = createLogger('bgp-test', 'error');
    const speakers: FakeSpeaker[] = [];
    const glue = new BgpGlue({
      logger,
      speakerLogger,
      learned: { set: () => undefined, remove: () => undefined },
      makeSpeaker: () => {
        speakers.push(new FakeSpeaker());
        return speakers[speakers.length - 1];
      },
    });
    await glue.apply({ ...base, logLevel: 'warn' });
    expect(speakerLogger.level).toBe('warn');
    await glue.apply({ ...base, logLevel: 'debug' });
    expect(speakerLogger.level).toBe('debug');
    expect(speakers).toHaveLength(1); // no restart
    await glue.stop();
  });
});

describe('graceful restart', () => {
  test('the agent stopping closes sessions without NOTIFICATION and leaves learned routes in the kernel', async () => {
    const { glue, kernel, speakers } = recordingGlue();
    await glue.apply(base);
    speakers[0].listener!([
      {
        prefix: '10.244.2.0/26',
        best: { peer: learnedFrom('10.0.0.2'), attrs: { nextHop: '10.0.0.2' } as never },
      },
    ]);
    await glue.stop();
    expect(speakers[0].log.at(-1)).toBe('stop graceful');
    expect(kernel.filter((k) => k.startsWith('remove'))).toEqual([]);
  });

  test('the kernel sink is told when every peer has sent End-of-RIB', async () => {
    const { glue, kernel, speakers } = recordingGlue();
    await glue.apply(base);
    speakers[0].endOfRib!('10.0.0.2');
    expect(kernel).not.toContain('complete');
    speakers[0].endOfRib!('10.0.0.2');
    speakers[0].endOfRib!('10.0.0.3');
    expect(kernel.filter((k) => k === 'complete')).toHaveLength(1);
    speakers[0].endOfRib!('10.0.0.3');
    expect(kernel.filter((k) => k === 'complete')).toHaveLength(1);
    await glue.stop();
  });

  test('or when the wait for End-of-RIB runs out (a peer that is down)', async () => {
    const { glue, kernel, speakers } = recordingGlue(50);
    await glue.apply(base);
    speakers[0].endOfRib!('10.0.0.2');
    await new Promise((r) => setTimeout(r, 100));
    expect(kernel).toEqual(['complete']);
    await glue.stop();
  });

  test('or at once when BGP is off (nothing will be relearned)', async () => {
    const { glue, kernel, speakers } = recordingGlue();
    await glue.apply({ ...base, enabled: false });
    expect(speakers).toHaveLength(0);
    expect(kernel).toEqual(['complete']);
    await glue.stop();
  });
});

describe('BGP passwords (TCP-MD5 keys in Secrets)', () => {
  const withPassword: BgpConfig = {
    ...base,
    peers: base.peers.map((p) => ({ ...p, password: { name: 'bgp', key: 'mesh' } })),
  };

  function passwordGlue(secrets: Map<string, string>) {
    const added: PeerConfigInput[] = [];
    const removed: string[] = [];
    const speaker = Object.assign(new FakeSpeaker(), {
      addPeer: (p: PeerConfigInput) => added.push(p),
      removePeer: (k: string) => removed.push(k),
    });
    const errors: unknown[][] = [];
    const glueLogger = createLogger('test', 'error');
    jest.spyOn(glueLogger, 'error').mockImplementation(((...args: unknown[]) => {
      errors.push(args);
      return glueLogger;
    }) as typeof glueLogger.error);
    const glue = new BgpGlue({
      logger: glueLogger,
      learned: { set: () => undefined, remove: () => undefined },
      makeSpeaker: () => speaker,
      readSecret: async (ref) => secrets.get(`${ref.name}/${ref.key}`),
      secretRefreshMs: 20,
    });
    return { glue, added, removed, errors };
  }

  test('the key read from the Secret is the speaker peer password', async () => {
    const { glue, added } = passwordGlue(new Map([['bgp/mesh', 'k1']]));
    await glue.apply(withPassword);
    expect(added.map((p) => [p.address, p.password])).toEqual([
      ['10.0.0.2', 'k1'],
      ['10.0.0.3', 'k1'],
    ]);
    await glue.stop();
  });

  test('a missing Secret is logged once per change of what is missing, not at every re-read', async () => {
    const secrets = new Map<string, string>();
    const { glue, added, errors } = passwordGlue(secrets);
    await glue.apply(withPassword);
    // several refreshes (every 20 ms) read the same missing Secret: still one line
    await new Promise((r) => setTimeout(r, 150));
    expect(errors).toEqual([
      [
        'BGP peers not configured: their password Secret cannot be read',
        { missing: ['mesh-10.0.0.2: bgp/mesh', 'mesh-10.0.0.3: bgp/mesh'] },
      ],
    ]);
    // found, then lost again: a new line
    secrets.set('bgp/mesh', 'k1');
    await waitFor(() => added.length === 2);
    secrets.delete('bgp/mesh');
    await waitFor(() => errors.length === 2);
    await new Promise((r) => setTimeout(r, 150));
    expect(errors).toHaveLength(2);
    await glue.stop();
  });

  test('no Secret: no session (not one without its key); the Secret appearing or changing is picked up', async () => {
    const secrets = new Map<string, string>();
    const { glue, added, removed } = passwordGlue(secrets);
    await glue.apply(withPassword);
    expect(added).toEqual([]);
    secrets.set('bgp/mesh', 'k1');
    await waitFor(() => added.length === 2);
    expect(added.map((p) => p.password)).toEqual(['k1', 'k1']);
    // a rotated key: the sessions are made again with it
    secrets.set('bgp/mesh', 'k2');
    await waitFor(() => added.length === 4);
    expect(removed).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(added.slice(2).map((p) => p.password)).toEqual(['k2', 'k2']);
    await glue.stop();
  });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
