import { ConfigError, parseSpeakerConfig } from '../src/config';

function problems(doc: unknown): string[] {
  try {
    parseSpeakerConfig(doc);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

test('defaults are filled in', () => {
  const c = parseSpeakerConfig({
    asn: 64512,
    routerId: '10.0.0.1',
    peers: [{ address: '10.0.0.2', asn: 64512 }],
  });
  expect(c.listen).toEqual({ address: '::', port: 179 });
  expect(c.peers[0]).toMatchObject({
    port: 179,
    passive: false,
    holdTime: 90,
    connectRetryTime: 5,
    errorWaitTime: [5, 30],
  });
});

test('every problem is reported with its field path', () => {
  expect(
    problems({
      asn: 0,
      routerId: 'r1',
      peers: [{ address: '10.0.0.300', asn: 65000, holdTime: 2, ttl: 3, ttlSecurity: 1 }],
      originate: [{ prefix: '10.0.0.0/33', communities: ['70000:1'] }],
    }),
  ).toEqual([
    'asn: Too small: expected number to be >=1',
    'routerId: is not an IPv4 address',
    'peers.0.address: is not an IP address',
    'peers.0.holdTime: hold time must be 0 or at least 3 seconds',
    'peers.0.ttlSecurity: ttl and ttlSecurity cannot both be set (ttlSecurity always sends TTL 255)',
    'originate.0.prefix: "10.0.0.0/33" is not a valid prefix: IPv4 length 33 > 32',
    'originate.0.communities.0: community "70000:1": both halves of aa:nn must be 0-65535',
  ]);
  expect(
    problems({
      asn: 1,
      routerId: '1.1.1.1',
      peers: [{ address: '10.0.0.2', asn: 2, ttl: 3, ttlSecurity: 1 }],
    }),
  ).toEqual([
    'peers.0.ttlSecurity: ttl and ttlSecurity cannot both be set (ttlSecurity always sends TTL 255)',
  ]);
});

test("ttlSecurity takes 1-255 hops, as BIRD's multihop under ttl security (255: any TTL)", () => {
  const at = (ttlSecurity: number) =>
    problems({
      asn: 1,
      routerId: '1.1.1.1',
      peers: [{ address: '10.0.0.2', asn: 2, ttlSecurity }],
    });
  expect(at(1)).toEqual([]);
  expect(at(255)).toEqual([]);
  expect(at(0)).toEqual(['peers.0.ttlSecurity: Too small: expected number to be >=1']);
  expect(at(256)).toEqual(['peers.0.ttlSecurity: Too big: expected number to be <=255']);
});
