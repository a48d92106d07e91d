// Calculation graph: rules' `services` matches (Calico's ServiceMatch). As Felix's rule
// scanner and serviceindex: a destination match is a hash:ip,port set of the Service's
// EndpointSlice endpoints on the slice ports, a source match a hash:net set of their
// addresses; the namespace defaults to the policy's; the sets follow the slices (add,
// change, delete, several slices of one Service) as deltas, and go with the last rule.
import type { Resource } from '@tortie/api';
import { serviceSet } from '../src/calc/selections';
import { harness, namespace, np, ofType, R, wep } from './calc-fixtures';

const slice = (
  ns: string,
  name: string,
  service: string,
  addresses: string[],
  ports: Array<{ port: number; protocol?: 'TCP' | 'UDP' | 'SCTP' }> = [{ port: 8080 }],
): Resource =>
  R(
    'KubernetesEndpointSlice',
    name,
    {
      serviceName: service,
      addressType: 'IPv4',
      ports,
      endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
    },
    { namespace: ns },
  );

const client = wep('shop', 'client', 'n1', '10.244.1.2', { app: 'client' });
const egressToWeb = (services: object) =>
  np('shop', 'to-web', {
    selector: "app == 'client'",
    egress: [{ action: 'Allow', destination: { services } }],
  });
const DST = serviceSet('shop/web', true).id;
const SRC = serviceSet('shop/web', false).id;

describe('calc graph: services matches', () => {
  test("destination: an ip,port set of the Service's endpoints, namespace from the policy", () => {
    const { dp, set, sync } = harness();
    set(
      namespace('shop'),
      client,
      egressToWeb({ name: 'web' }),
      slice(
        'shop',
        'web-a',
        'web',
        ['10.244.2.5', '10.244.3.9'],
        [{ port: 8080 }, { port: 53, protocol: 'UDP' }],
      ),
      // the same name in another namespace, and another Service: not in the set
      slice('other', 'web-x', 'web', ['10.9.9.9']),
      slice('shop', 'db-a', 'db', ['10.244.2.6']),
    );
    const out = sync();
    expect(dp.errors).toEqual([]);
    const [s] = ofType(out, 'ipset-update').filter((u) => u.id === DST);
    expect(s).toEqual({
      type: 'ipset-update',
      id: DST,
      setType: 'hash:ip,port',
      ipVersion: 4,
      members: [
        '10.244.2.5,tcp:8080',
        '10.244.2.5,udp:53',
        '10.244.3.9,tcp:8080',
        '10.244.3.9,udp:53',
      ],
    });
    const [p] = ofType(out, 'policy-update');
    expect(p.outbound).toEqual([
      expect.objectContaining({ action: 'allow', dstNamedPortIpSetIds: [DST] }),
    ]);
    expect(p.outbound[0].dstIpSetIds).toBeUndefined();
    expect(p.outbound[0].dstPorts).toBeUndefined();
  });

  test('an explicit namespace picks that namespace’s Service', () => {
    const { set, sync } = harness();
    set(namespace('shop'), client, egressToWeb({ name: 'web', namespace: 'other' }));
    set(slice('other', 'web-x', 'web', ['10.9.9.9']));
    const out = sync();
    const id = serviceSet('other/web', true).id;
    expect(ofType(out, 'ipset-update').find((u) => u.id === id)?.members).toEqual([
      '10.9.9.9,tcp:8080',
    ]);
  });

  test('the set follows the EndpointSlices: add, change, second slice, delete (deltas)', () => {
    const { set, del, sync, fresh } = harness();
    // the slices also go to the service dataplane: only the IP set messages here
    const setUpdates = () => fresh().filter((u) => u.type.startsWith('ipset'));
    const a1 = slice('shop', 'web-a', 'web', ['10.244.2.5']);
    set(namespace('shop'), client, egressToWeb({ name: 'web' }), a1);
    sync();
    // an endpoint added to the slice
    set(slice('shop', 'web-a', 'web', ['10.244.2.5', '10.244.2.8']));
    expect(setUpdates()).toEqual([
      { type: 'ipset-delta', id: DST, added: ['10.244.2.8,tcp:8080'], removed: [] },
    ]);
    // a second slice of the Service repeating one address: refcounted
    const b = slice('shop', 'web-b', 'web', ['10.244.2.8', '10.244.4.1']);
    set(b);
    expect(setUpdates()).toEqual([
      { type: 'ipset-delta', id: DST, added: ['10.244.4.1,tcp:8080'], removed: [] },
    ]);
    // the first slice loses 10.244.2.8 (slice b still has it) and 10.244.2.5
    set(slice('shop', 'web-a', 'web', []));
    expect(setUpdates()).toEqual([
      { type: 'ipset-delta', id: DST, added: [], removed: ['10.244.2.5,tcp:8080'] },
    ]);
    // the port changes
    set(slice('shop', 'web-b', 'web', ['10.244.2.8', '10.244.4.1'], [{ port: 9090 }]));
    expect(setUpdates()).toEqual([
      {
        type: 'ipset-delta',
        id: DST,
        added: ['10.244.2.8,tcp:9090', '10.244.4.1,tcp:9090'],
        removed: ['10.244.2.8,tcp:8080', '10.244.4.1,tcp:8080'],
      },
    ]);
    del(b);
    expect(setUpdates()).toEqual([
      {
        type: 'ipset-delta',
        id: DST,
        added: [],
        removed: ['10.244.2.8,tcp:9090', '10.244.4.1,tcp:9090'],
      },
    ]);
    // a slice of an unrelated Service changes nothing
    set(slice('shop', 'db-a', 'db', ['10.244.2.6']));
    expect(setUpdates()).toEqual([]);
  });

  test('source: a hash:net set of the addresses, with the rule’s ports kept', () => {
    const { dp, set, sync } = harness();
    set(
      namespace('shop'),
      wep('shop', 'db', 'n1', '10.244.1.3', { app: 'db' }),
      np('shop', 'db-in', {
        selector: "app == 'db'",
        ingress: [
          {
            action: 'Allow',
            protocol: 'TCP',
            source: { services: { name: 'web' } },
            destination: { ports: [5432] },
          },
        ],
      }),
      slice('shop', 'web-a', 'web', ['10.244.2.5', 'fd00::5']),
    );
    const out = sync();
    expect(dp.errors).toEqual([]);
    expect(ofType(out, 'ipset-update').find((u) => u.id === SRC)).toMatchObject({
      setType: 'hash:net',
      members: ['10.244.2.5/32', 'fd00::5/128'],
    });
    const [p] = ofType(out, 'policy-update');
    expect(p.inbound[0]).toMatchObject({
      srcIpSetIds: [SRC],
      dstPorts: [{ first: 5432, last: 5432 }],
      protocol: 6,
    });
  });

  test('the set is programmed only while a rule needs it, and removed after the rule', () => {
    const { set, del, sync, fresh } = harness();
    const policy = egressToWeb({ name: 'web' });
    set(namespace('shop'), client, slice('shop', 'web-a', 'web', ['10.244.2.5']));
    expect(ofType(sync(), 'ipset-update')).toEqual([]);
    set(policy);
    expect(ofType(fresh(), 'ipset-update').map((u) => [u.id, u.members])).toEqual([
      [DST, ['10.244.2.5,tcp:8080']],
    ]);
    del(policy);
    const out = fresh();
    expect(ofType(out, 'ipset-remove')).toEqual([{ type: 'ipset-remove', id: DST }]);
    // removed after the rules that used it
    expect(out.findIndex((u) => u.type === 'ipset-remove')).toBe(out.length - 1);
    // slices of an unused Service: nothing
    set(slice('shop', 'web-a', 'web', ['10.244.2.9']));
    expect(fresh().filter((u) => u.type.startsWith('ipset'))).toEqual([]);
  });
});
