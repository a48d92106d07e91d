// The netlink fast path's input: a transaction of set elements only becomes element
// operations with the kernel's keys; anything else (chains, new sets, interval sets, a
// whole rewrite) stays with nft.
import { nftKey } from '@tortie/netlink';
import { elementOps } from '../src/dataplane/nft-acl/elements';
import type { NftChanges } from '../src/dataplane/nft-acl/script';

const none = (): NftChanges => ({
  full: false,
  maps: [],
  addSets: [],
  elements: [],
  addChains: [],
  replaceChains: [],
  mapChanges: [],
  delChains: [],
  delSets: [],
});
const decls: Record<string, string> = {
  's4-a': 'type ipv4_addr;',
  's6-a': 'type ipv6_addr;',
  's4-np': 'type ipv4_addr . inet_proto . inet_service;',
  'hep-ifaces': 'type ifname;',
};
const decl = (s: string) => decls[s];

describe('nftables element operations (netlink fast path)', () => {
  it('a pod add: set members and verdict-map elements, deletes before adds', () => {
    const c = none();
    c.elements.push(
      { set: 's4-a', add: ['10.0.0.5'], del: ['10.0.0.4'] },
      { set: 's6-a', add: ['fd00::5'], del: [] },
      { set: 's4-np', add: ['10.0.0.5 . tcp . 8080'], del: [] },
    );
    c.mapChanges.push({ map: 'to-wl', add: [['cali1', 'jump tw-x']], del: ['cali1'] });
    const ops = elementOps(c, decl)!;
    expect(ops.map((o) => `${o.op} ${o.set} ${o.text}`)).toEqual([
      'del s4-a 10.0.0.4',
      'add s4-a 10.0.0.5',
      'add s6-a fd00::5',
      'add s4-np 10.0.0.5 . tcp . 8080',
      'del to-wl "cali1"',
      'add to-wl "cali1" : jump tw-x',
    ]);
    expect(ops[3].key).toEqual(nftKey.addrProtoPort('10.0.0.5', 6, 8080));
    expect(ops[5].key).toEqual(nftKey.ifname('cali1'));
    expect(ops[5].verdict).toEqual({ code: 'jump', chain: 'tw-x' });
  });

  it('anything but elements of plain sets and maps goes to nft', () => {
    const withChain = none();
    withChain.addChains.push({ name: 'tw-y', rules: [], sets: [] });
    expect(elementOps(withChain, decl)).toBeUndefined();
    expect(elementOps({ ...none(), full: true }, decl)).toBeUndefined();
    expect(elementOps({ ...none(), delSets: ['s4-a'] }, decl)).toBeUndefined();
    // an interval set (unknown to the fast path's declarations), a refill
    const interval = none();
    interval.elements.push({ set: 's4-nets', add: ['10.0.0.0/24'], del: [] });
    expect(elementOps(interval, decl)).toBeUndefined();
    const refill = none();
    refill.elements.push({ set: 's4-a', add: [], del: [], refill: ['10.0.0.1'] });
    expect(elementOps(refill, decl)).toBeUndefined();
    // a member it cannot encode: nft judges it
    const odd = none();
    odd.elements.push({ set: 's4-np', add: ['10.0.0.5 . gre . 1'], del: [] });
    expect(elementOps(odd, decl)).toBeUndefined();
    const net = none();
    net.elements.push({ set: 's4-a', add: ['10.0.0.0/8'], del: [] });
    expect(elementOps(net, decl)).toBeUndefined();
  });

  it('host endpoint interfaces (quoted ifname members)', () => {
    const c = none();
    c.elements.push({ set: 'hep-ifaces', add: ['"eth0"'], del: [] });
    c.mapChanges.push({ map: 'raw-from-hep', add: [['eth0', 'goto fhu-1']], del: [] });
    const ops = elementOps(c, decl)!;
    expect(ops[0].key).toEqual(nftKey.ifname('eth0'));
    expect(ops[1].verdict).toEqual({ code: 'goto', chain: 'fhu-1' });
  });
});
