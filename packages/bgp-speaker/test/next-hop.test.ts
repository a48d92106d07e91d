// RFC 4271 §6.3's semantic NEXT_HOP checks that cannot be shown over loopback sessions
// (error-handling.loopback.test.ts shows the rest on the wire): a loopback next hop from a
// peer that is not on our loopback names no host we could forward to.
import { nextHopRejection } from '../src/rib/adj-rib-in';
import type { PeerInfo } from '../src/rib/types';

const peer = (address: string): PeerInfo => ({
  id: address,
  address,
  asn: 65001,
  routerId: '0.0.0.0',
  localAsn: 65000,
  localAddress: { ipv4: '10.0.0.1', ipv6: '2001:db8::1' },
  ibgp: false,
});

test.each([
  ['10.0.0.2', '127.0.0.1', 'NEXT_HOP 127.0.0.1 is a loopback address'],
  ['10.0.0.2', '127.255.0.9', 'NEXT_HOP 127.255.0.9 is a loopback address'],
  ['2001:db8::2', '::1', 'NEXT_HOP ::1 is a loopback address'],
  ['2001:db8::2', '::ffff:127.0.0.1', 'NEXT_HOP ::ffff:127.0.0.1 is a loopback address'],
  // a session over our loopback (a local route server, tests): the peer's own address
  ['127.0.0.2', '127.0.0.2', undefined],
  ['::1', '::1', undefined],
  ['10.0.0.2', '10.0.0.2', undefined],
  ['10.0.0.2', '126.255.255.255', undefined],
  ['10.0.0.2', '128.0.0.1', undefined],
])('from %s, NEXT_HOP %s: %s', (from, nextHop, why) => {
  expect(nextHopRejection(peer(from), nextHop)).toBe(why);
});
