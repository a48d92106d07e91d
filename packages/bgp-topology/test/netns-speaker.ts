// The netns suites' common setup: resources in, through computeBgp and peerConfig, to the
// real tortie-bgp daemon in namespace `us`, on one switch with the routers' namespaces.
import type { Resource } from '@tortie/api';
import { SpeakerProcess } from '@tortie/bgp-speaker';
import { Fabric, type Netns, type Testbed } from '@tortie/testbed';
import {
  bgpNodeFacts,
  computeBgp,
  peerConfig,
  speakerConfig,
  type BgpConfig,
  type BgpNode,
} from '../src';

export interface NodeAndRouter {
  us: Netns;
  them: Netns;
  bgp: BgpConfig;
  speaker: SpeakerProcess;
}

interface Setup {
  me: string;
  /** Our address(es) on the switch, "a.b.c.d" (a /24) or with a prefix. */
  usAddr: string | string[];
  resources: Resource[];
  originate?: string[];
}

const withPrefix = (a: string) => (a.includes('/') ? a : `${a}/24`);

/** computeBgp for node `me` of `resources`. */
export function computeFor(o: Setup): BgpConfig {
  const of = (kind: string) => o.resources.filter((r) => r.kind === kind) as never;
  const nodes = new Map<string, BgpNode>();
  for (const n of of('Node') as Resource<'Node'>[]) nodes.set(n.metadata.name, bgpNodeFacts(n));
  return computeBgp({
    me: o.me,
    nodes,
    configs: of('BGPConfiguration'),
    peers: of('BGPPeer'),
    filters: of('BGPFilter'),
    originate: o.originate ?? [],
  });
}

/** Starts the tortie-bgp daemon in `us` with the speaker configuration of `bgp`. */
export function startSpeaker(tb: Testbed, us: Netns, bgp: BgpConfig): Promise<SpeakerProcess> {
  return SpeakerProcess.start(
    (argv, opts) => us.spawn(argv, opts),
    tb.tempDir('us'),
    {
      ...speakerConfig(bgp),
      peers: bgp.peers.map((p) => ({ ...peerConfig(p, bgp), connectRetryTime: 1 })),
      originate: bgp.originate.map((prefix) => ({ prefix })),
    },
    // node starting under a loaded machine (load 20) took more than the default 10 s
    { timeoutMs: 60_000 },
  );
}

/**
 * Node `me` of `resources` at `usAddr` and one namespace per router at its address, all
 * on one switch.
 */
export async function nodeAndRouters<K extends string>(
  tb: Testbed,
  o: Setup & { routers: Record<K, string> },
): Promise<{ us: Netns; routers: Record<K, Netns>; bgp: BgpConfig; speaker: SpeakerProcess }> {
  const bgp = computeFor(o);
  const fabric = await Fabric.create(tb, 'switch');
  const us = await tb.netns('us');
  const [first, ...more] = [o.usAddr].flat();
  await fabric.attach(us, { v4: withPrefix(first) });
  for (const a of more) await us.exec(['ip', 'addr', 'add', withPrefix(a), 'dev', 'eth0']);
  const routers = {} as Record<K, Netns>;
  for (const [name, addr] of Object.entries(o.routers) as Array<[K, string]>) {
    routers[name] = await tb.netns(name);
    await fabric.attach(routers[name], { v4: withPrefix(addr) });
  }
  const speaker = await startSpeaker(tb, us, bgp);
  return { us, routers, bgp, speaker };
}

/** Node `me` of `resources` at `usAddr`, the router's namespace at `themAddr` (both /24). */
export async function nodeAndRouter(
  tb: Testbed,
  o: Setup & { themAddr: string },
): Promise<NodeAndRouter> {
  const { us, routers, bgp, speaker } = await nodeAndRouters(tb, {
    ...o,
    routers: { router: o.themAddr },
  });
  return { us, them: routers.router, bgp, speaker };
}
