// Two namespaces on one switch: ours running the real tortie-bgp daemon with one peer, and
// the router's, where the test starts BIRD, FRR or GoBGP. The netns suites' common setup.
import { Fabric, type Netns, type Testbed } from '@tortie/testbed';
import type { PeerConfigInput, SpeakerConfigInput } from '../src/config';
import { SpeakerProcess } from '../src/speaker-process';

export interface PairOptions {
  us: string;
  them: string;
  asn: number;
  /** Our one peer: the router at `them`. */
  peer: Omit<PeerConfigInput, 'address'>;
  originate?: string[];
  logLevel?: string;
  /** The router's namespace name (default "router"). */
  routerName?: string;
}

export interface Pair {
  fabric: Fabric;
  us: Netns;
  them: Netns;
  speaker: SpeakerProcess;
}

export async function speakerAndRouter(tb: Testbed, o: PairOptions): Promise<Pair> {
  const fabric = await Fabric.create(tb, 'switch');
  const us = await tb.netns('us');
  const them = await tb.netns(o.routerName ?? 'router');
  await fabric.attach(us, { v4: `${o.us}/24` });
  await fabric.attach(them, { v4: `${o.them}/24` });
  const config: SpeakerConfigInput = {
    asn: o.asn,
    routerId: o.us,
    listen: { address: '0.0.0.0', port: 179 },
    nextHop: { ipv4: o.us },
    peers: [{ address: o.them, families: ['ipv4'], connectRetryTime: 1, ...o.peer }],
    ...(o.originate ? { originate: o.originate.map((prefix) => ({ prefix })) } : {}),
  };
  const speaker = await SpeakerProcess.start(
    (argv, opts) => us.spawn(argv, opts),
    tb.tempDir('us'),
    config,
    o.logLevel ? { logLevel: o.logLevel } : undefined,
  );
  return { fabric, us, them, speaker };
}
