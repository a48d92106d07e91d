// The netns suites' common setup: resources in, through computeBgp and peerConfig, to the
// real tortie-bgp daemon in namespace `us`, on one switch with the router's namespace.
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

/** Node `me` of `resources` at `usAddr`, the router's namespace at `themAddr` (both /24). */
export async function nodeAndRouter(
  tb: Testbed,
  o: { me: string; usAddr: string; themAddr: string; resources: Resource[]; originate?: string[] },
): Promise<NodeAndRouter> {
  const of = (kind: string) => o.resources.filter((r) => r.kind === kind) as never;
  const nodes = new Map<string, BgpNode>();
  for (const n of of('Node') as Resource<'Node'>[]) nodes.set(n.metadata.name, bgpNodeFacts(n));
  const bgp = computeBgp({
    me: o.me,
    nodes,
    configs: of('BGPConfiguration'),
    peers: of('BGPPeer'),
    filters: of('BGPFilter'),
    originate: o.originate ?? [],
  });
  const fabric = await Fabric.create(tb, 'switch');
  const us = await tb.netns('us');
  const them = await tb.netns('router');
  await fabric.attach(us, { v4: `${o.usAddr}/24` });
  await fabric.attach(them, { v4: `${o.themAddr}/24` });
  const speaker = await SpeakerProcess.start(
    (argv, opts) => us.spawn(argv, opts),
    tb.tempDir('us'),
    {
      ...speakerConfig(bgp),
      peers: bgp.peers.map((p) => ({ ...peerConfig(p, bgp), connectRetryTime: 1 })),
      originate: bgp.originate.map((prefix) => ({ prefix })),
    },
  );
  return { us, them, bgp, speaker };
}
