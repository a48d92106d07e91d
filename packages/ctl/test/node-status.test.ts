// tortiectl node status: the table (pure) and the binary against a control socket.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BgpSpeaker, createLogger, parseSpeakerConfig } from '@tortie/bgp-speaker';
import { formatNodeStatus, peerType } from '../src/node-status';
import { ctl } from './run-ctl';

test('the tables: one per family, Calico peer types, state and info', () => {
  expect(peerType('mesh-10.0.0.2')).toBe('node-to-node mesh');
  expect(peerType('global-tor')).toBe('global');
  expect(peerType('node-rack1')).toBe('node specific');
  expect(peerType('rr-10.0.0.9')).toBe('route reflector');
  expect(peerType(undefined)).toBe('-');
  expect(
    formatNodeStatus([
      {
        address: '10.0.0.2',
        description: 'mesh-10.0.0.2',
        state: 'Established',
        since: '2026-12-01T06:25:32.005Z',
      },
      {
        address: '10.0.0.1',
        description: 'global-tor',
        state: 'Active',
        lastError: 'ECONNREFUSED',
      },
      {
        address: '10.0.0.3',
        description: 'mesh-10.0.0.3',
        state: 'Established',
        since: '2026-12-01T06:25:33.000Z',
        staleRoutes: 2,
      },
    ]),
  ).toEqual([
    '',
    'IPv4 BGP status',
    '+--------------+-------------------+-------+-------------+----------------------------------------------------+',
    '| PEER ADDRESS | PEER TYPE         | STATE | SINCE (UTC) | INFO                                               |',
    '+--------------+-------------------+-------+-------------+----------------------------------------------------+',
    '| 10.0.0.2     | node-to-node mesh | up    | 06:25:32    | Established                                        |',
    '| 10.0.0.1     | global            | start |             | Active (ECONNREFUSED)                              |',
    '| 10.0.0.3     | node-to-node mesh | up    | 06:25:33    | Established (2 stale routes kept: peer restarting) |',
    '+--------------+-------------------+-------+-------------+----------------------------------------------------+',
    '',
    'IPv6 BGP status',
    'No IPv6 peers found.',
  ]);
});

test('BFD: a table of the sessions under the peers that have one, and the drops by reason', () => {
  const bfd = (state: string, diag: string, ups: number) => ({
    state,
    diag,
    txIntervalMs: state === 'Up' ? 100 : 1000,
    detectTimeMs: 300,
    since: '2026-12-05T11:02:03.456Z',
    upTransitions: ups,
    dropped: { ttl: 2, 'source-address': 1, length: 0 },
  });
  const lines = formatNodeStatus([
    {
      address: '10.0.0.2',
      description: 'mesh-10.0.0.2',
      state: 'Established',
      bfd: bfd('Up', 'None', 1),
    },
    {
      address: '10.0.0.1',
      description: 'global-tor',
      state: 'Active',
      bfd: bfd('Down', 'ControlDetectionTimeExpired', 3),
    },
    { address: '10.0.0.3', description: 'mesh-10.0.0.3', state: 'Established' },
  ]);
  expect(lines.slice(lines.indexOf('BFD status'))).toEqual([
    'BFD status',
    '+--------------+-------+-------------+---------+--------+-----+-----------------------------+',
    '| PEER ADDRESS | STATE | SINCE (UTC) | TX      | DETECT | UPS | DIAG                        |',
    '+--------------+-------+-------------+---------+--------+-----+-----------------------------+',
    '| 10.0.0.2     | up    | 11:02:03    | 100 ms  | 300 ms | 1   |                             |',
    '| 10.0.0.1     | down  | 11:02:03    | 1000 ms |        | 3   | ControlDetectionTimeExpired |',
    '+--------------+-------+-------------+---------+--------+-----+-----------------------------+',
    'BFD packets dropped: ttl 2, source-address 1',
  ]);
  // no BFD anywhere: no table
  expect(formatNodeStatus([{ address: '10.0.0.3', state: 'Idle' }])).not.toContain('BFD status');
});

test('the binary reads a running speaker; without one it says why and exits 1', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-status-'));
  const socket = path.join(dir, 'bgp.sock');
  // a speaker with one peer it cannot reach (nothing listens on that loopback port)
  const speaker = new BgpSpeaker(
    parseSpeakerConfig({
      asn: 64512,
      routerId: '10.0.0.1',
      listen: false,
      peers: [{ address: '127.0.0.1', port: 1, asn: 64512, description: 'global-tor' }],
    }),
    { logger: createLogger('test', 'error') },
  );
  try {
    await speaker.start();
    await speaker.serveControl(socket);
    expect(fs.statSync(socket).mode & 0o777).toBe(0o600); // it can change announcements
    const r = await ctl(['node', 'status', '--bgp-socket', socket]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`tortie-node BGP is running (${socket}).`);
    // not on 179: the port shows
    expect(r.out).toMatch(/\| 127\.0\.0\.1:1 +\| global +\| start \|/);
    await speaker.stop();
    const gone = await ctl(['node', 'status', '--bgp-socket', socket]);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain("tortie-node's BGP speaker is not running or not reachable");
  } finally {
    await speaker.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
