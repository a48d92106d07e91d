// BGPPeer keepaliveTime on the wire, as FRR counts it: FRR (hold time 90 s, so the
// negotiated hold is 90 and our default interval 30 s) receives our KEEPALIVEs every
// second once the BGPPeer says keepaliveTime 1s.
import { Frr, Testbed, describeIf, waitUntil } from '@tortie/testbed';
import { config, node, peer } from './fixtures';
import { nodeAndRouter } from './netns-speaker';

const US = '10.0.0.1';
const FRR = '10.0.0.2';

describeIf(['netns', 'frr', 'root'], 'BGPPeer keepaliveTime with FRR', () => {
  test('FRR receives a KEEPALIVE about every second with keepaliveTime 1s (hold time 90 s)', async () => {
    const tb = new Testbed();
    try {
      const { them } = await nodeAndRouter(tb, {
        me: 'n1',
        usAddr: US,
        themAddr: FRR,
        resources: [
          node('n1', `${US}/24`),
          config('default', { asNumber: 65000, nodeToNodeMeshEnabled: false }),
          peer('tor', { peerIP: FRR, asNumber: 65001, keepaliveTime: '1s' }),
        ],
      });
      const frr = await Frr.start(tb, them, {
        asn: 65001,
        routerId: FRR,
        timers: { keepalive: 30, hold: 90 },
        neighbors: [{ address: US, remoteAs: 65000, families: ['ipv4'] }],
      });
      await frr.waitEstablished(US);
      const received = async () => {
        const j = JSON.parse(await frr.vtysh(`show bgp neighbors ${US} json`)) as Record<
          string,
          { bgpTimerHoldTimeMsecs?: number; messageStats?: { keepalivesRecv?: number } }
        >;
        return j[US];
      };
      const first = await received();
      expect(first.bgpTimerHoldTimeMsecs).toBe(90_000);
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 6000));
      const later = await received();
      const seconds = (Date.now() - t0) / 1000;
      const n = later.messageStats!.keepalivesRecv! - first.messageStats!.keepalivesRecv!;
      // one a second (a little slack for a loaded machine); 30 s apart without the setting
      expect(n).toBeGreaterThanOrEqual(Math.floor(seconds) - 2);
      expect(n).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
      await waitUntil(
        'the session still up',
        async () => (await frr.neighborState(US)) === 'Established',
      );
    } finally {
      await tb.cleanup();
    }
  }, 90_000);
});
