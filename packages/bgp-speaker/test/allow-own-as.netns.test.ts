// Our AS in a route's AS_PATH: RFC 4271 §9.1.2's loop check drops the route, unless the
// peer allows it (BIRD's "allow local as", Calico's numAllowedLocalASNumbers). GoBGP in a
// namespace sends three routes whose paths hold our AS zero, one and two times; the real
// tortie-bgp daemon keeps what its setting allows.
import { GoBgp, Testbed, describeIf, waitUntil } from '@tortie/testbed';
import { speakerAndRouter } from './netns-pair';

const US = '10.0.0.1';
const THEM = '10.0.0.2';
const OUR_AS = 65000;
const THEIR_AS = 65001;
const ROUTES = {
  '10.50.0.0/24': [], // no loop
  '10.51.0.0/24': [OUR_AS], // our AS once
  '10.52.0.0/24': [OUR_AS, 65009, OUR_AS], // twice
} as const;

async function learned(allowOwnAs: number | undefined): Promise<string[]> {
  const tb = new Testbed();
  try {
    const { them, speaker } = await speakerAndRouter(tb, {
      us: US,
      them: THEM,
      asn: OUR_AS,
      peer: { asn: THEIR_AS, ...(allowOwnAs !== undefined ? { allowOwnAs } : {}) },
      routerName: 'gobgp',
    });
    const g = await GoBgp.start(tb, them, {
      asn: THEIR_AS,
      routerId: THEM,
      neighbors: [{ address: US, peerAs: OUR_AS, families: ['ipv4'] }],
    });
    await g.waitEstablished(US);
    for (const [prefix, path] of Object.entries(ROUTES))
      await g.announce(prefix, ...(path.length ? ['aspath', path.join(' ')] : []));
    // the loop-free route arrives in any case: once it is here, the UPDATEs were read
    await waitUntil('the loop-free route', async () =>
      (await speaker.routes()).some((r) => r.prefix === '10.50.0.0/24'),
    );
    await new Promise((r) => setTimeout(r, 1000)); // the others came in the same burst
    return (await speaker.routes()).map((r) => r.prefix).sort();
  } finally {
    await tb.cleanup();
  }
}

describeIf(['netns', 'gobgp', 'root'], 'our AS in received paths (allowOwnAs) with GoBGP', () => {
  test('by default a path with our AS is dropped; allowOwnAs 1 takes it once, not twice', async () => {
    expect(await learned(undefined)).toEqual(['10.50.0.0/24']);
    expect(await learned(1)).toEqual(['10.50.0.0/24', '10.51.0.0/24']);
    expect(await learned(2)).toEqual(['10.50.0.0/24', '10.51.0.0/24', '10.52.0.0/24']);
  }, 120_000);
});
