#!/usr/bin/env node
// npm run lab: builds a small cluster out of network namespaces and shows it working.
// Today: the BGP fabric (tortie-bgp on every node, node-to-node mesh, a BIRD ToR);
// pods, policy and the datastore join as the agent grows.
import { parseArgs } from 'node:util';
import { skipReason } from '@tortie/testbed';
import {
  birdRoutesTable,
  peersTable,
  routesTable,
  startBgpLab,
  waitForConvergence,
  type BgpLab,
} from './bgp-lab';

function say(line = ''): void {
  process.stdout.write(line + '\n');
}

function heading(title: string): void {
  say();
  say(`== ${title}`);
}

async function demo(lab: BgpLab, keep: boolean): Promise<void> {
  heading('waiting for BGP to converge');
  const ms = await waitForConvergence(lab);
  say(`every node has every pod block and the ToR's default route: ${ms} ms after start`);

  for (const n of lab.nodes) {
    heading(`${n.name} (${n.address}): tortie-bgp peers`);
    say(peersTable(await n.speaker.peers()));
  }
  heading(`${lab.nodes[0].name}: Loc-RIB`);
  say(routesTable(await lab.nodes[0].speaker.routes()));
  heading('ToR (BIRD): birdc show route');
  say(birdRoutesTable(await lab.tor.routes('ipv4')));

  const last = lab.nodes[lab.nodes.length - 1];
  heading(`${last.name} withdraws ${last.block}`);
  await last.speaker.withdraw(last.block);
  const t0 = Date.now();
  for (;;) {
    const tor = await lab.tor.routes('ipv4');
    const others = await Promise.all(
      lab.nodes.filter((n) => n !== last).map((n) => n.speaker.routes()),
    );
    if (
      !tor.some((r) => r.prefix === last.block) &&
      others.every((rs) => !rs.some((r) => r.prefix === last.block))
    )
      break;
    if (Date.now() - t0 > 15000)
      throw new Error(`${last.block} still present 15 s after the withdrawal`);
    await new Promise((r) => setTimeout(r, 20));
  }
  say(`gone from the ToR and every other node after ${Date.now() - t0} ms`);
  await last.speaker.originate(last.block);
  say(`${last.name} announces ${last.block} again`);
  await waitForConvergence(lab);
  say('converged again');

  if (keep) {
    heading('lab is up; Ctrl-C to tear it down');
    for (const n of lab.nodes)
      say(
        `  ip netns exec ${n.ns.name} ...   # ${n.name}; control: node packages/bgp-speaker/dist/cli.js peers -s ${n.speaker.socket}`,
      );
    say(`  ip netns exec ${lab.tor.ns.name} birdc -s ${lab.tor.socket} show protocols   # the ToR`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '3' },
      keep: { type: 'boolean', default: false },
    },
  });
  const why = skipReason(['netns', 'bird']);
  if (why) {
    process.stderr.write(`tortie lab needs root, network namespaces and BIRD: ${why}\n`);
    return 1;
  }
  const count = Number(values.nodes);
  if (!Number.isInteger(count) || count < 1 || count > 50) {
    process.stderr.write(`--nodes must be a whole number from 1 to 50, got "${values.nodes}"\n`);
    return 2;
  }
  heading(`tortie lab: ${count} nodes and a top-of-rack router in network namespaces`);
  const lab = await startBgpLab(count, say);
  try {
    await demo(lab, values.keep ?? false);
  } finally {
    heading('tearing down');
    await lab.tb.cleanup();
    say('all namespaces, processes and temp dirs removed');
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tortie lab failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
