// The byte layouts of the requests (pure): checked field by field against the kernel's
// structs, and the parsers read back what the builders wrote.
import { codec as c, NetlinkError, routeText } from '../src';

describe('rtnetlink codec', () => {
  test('a route replace: header, rtmsg, attributes', () => {
    const req = c.newRoute({
      dst: '10.1.2.0/26',
      via: '192.168.0.2',
      oif: 7,
      onlink: true,
      protocol: 80,
      metric: 700,
    });
    const b = c.frame([req], 41);
    expect(b.readUInt32LE(0)).toBe(b.length); // nlmsg_len
    expect(b.readUInt16LE(4)).toBe(c.RTM_NEWROUTE);
    expect(b.readUInt16LE(6)).toBe(c.NLM_F_REQUEST | c.NLM_F_CREATE | c.NLM_F_REPLACE);
    expect(b.readUInt32LE(8)).toBe(41);
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
    expect([...b.subarray(16, 24)]).toEqual([c.AF_INET, 26, 0, 0, 254, 80, 0, c.RTN_UNICAST]);
    expect(b.readUInt32LE(24)).toBe(c.RTNH_F_ONLINK);
    const [m] = [...c.messages(b)];
    expect(c.parseRoute(m)).toEqual({
      dst: '10.1.2.0/26',
      family: c.AF_INET,
      table: 254,
      protocol: 80,
      scope: 0,
      type: c.RTN_UNICAST,
      via: '192.168.0.2',
      oif: 7,
      onlink: true,
      metric: 700,
    });
  });

  test('scope as ip route: link for a device route, universe with a gateway or a blackhole', () => {
    const scope = (r: Omit<c.Route, 'protocol'>) =>
      c.frame([c.newRoute({ ...r, protocol: 80 })], 1).readUInt8(16 + 6);
    expect(scope({ dst: '10.0.0.5/32', oif: 3 })).toBe(c.RT_SCOPE_LINK);
    expect(scope({ dst: '10.0.0.0/26', via: '10.1.0.1' })).toBe(c.RT_SCOPE_UNIVERSE);
    expect(scope({ dst: '10.0.0.0/26', type: 'blackhole' })).toBe(c.RT_SCOPE_UNIVERSE);
    expect(scope({ dst: '::/0', via: 'fe80::1', oif: 2 })).toBe(c.RT_SCOPE_UNIVERSE);
  });

  test('the batch encoder writes the same bytes as the single-request builders', () => {
    const routes: c.Route[] = [
      { dst: '10.1.2.0/26', via: '192.168.0.2', protocol: 80 },
      { dst: '10.1.3.4/32', oif: 12, scope: 'link', protocol: 80 },
      { dst: '10.1.4.0/26', type: 'blackhole', protocol: 80 },
      { dst: '10.1.5.0/26', via: '172.16.0.1', oif: 3, onlink: true, protocol: 81 },
      { dst: 'fd00:1::/122', via: 'fd00::2', protocol: 80 },
      { dst: '::/0', via: 'fe80::1', oif: 2, protocol: 3, table: 1000 },
      { dst: '10.1.6.0/26', via: '192.168.0.3', protocol: 81, metric: 2147482623 },
      { dst: 'fd00:2::/122', via: 'fd00::3', oif: 4, protocol: 81, metric: 0xffffffff },
    ];
    const f = c.frameRouteChanges(
      [
        ...routes.map((route) => ({ del: false as const, route })),
        { del: true, dst: '10.9.0.0/24', protocol: 80 },
        { del: true, dst: '10.9.2.0/24', protocol: 81, metric: 512 },
        {
          del: false,
          route: { dst: '10.9.1.0/24', via: '1.2.3.4', protocol: 80 },
          exclusive: true,
        },
      ],
      100,
    );
    expect(f.bad.size).toBe(0);
    expect(
      f.buf.equals(
        c.frame(
          [
            ...routes.map((r) => c.newRoute(r)),
            c.delRoute('10.9.0.0/24', 80),
            c.delRoute('10.9.2.0/24', 81, undefined, 512),
            c.newRoute({ dst: '10.9.1.0/24', via: '1.2.3.4', protocol: 80 }, true),
          ],
          100,
        ),
      ),
    ).toBe(true);
    // bad input is left out, named, and does not shift the others' sequence numbers
    const g = c.frameRouteChanges(
      [
        { del: false, route: { dst: '10.0.0.0/33', via: '1.2.3.4', protocol: 80 } },
        { del: false, route: { dst: '10.0.1.0/24', via: '1.2.3', protocol: 80 } },
        { del: false, route: { dst: '10.0.2.0/24', via: 'fd00::1', protocol: 80 } },
        { del: false, route: { dst: '10.0.3.0/24', via: '1.2.3.4', protocol: 80 } },
        { del: false, route: { dst: '10.0.4.0/24', via: '1.2.3.4', protocol: 80, metric: -1 } },
        { del: true, dst: '10.0.5.0/24', protocol: 80, metric: 2 ** 32 },
      ],
      1,
    );
    expect([...g.bad]).toEqual([
      [0, '"10.0.0.0/33" is not a CIDR'],
      [1, '"1.2.3" is not an IP address'],
      [2, 'route 10.0.2.0/24: gateway fd00::1 is of another address family'],
      [4, 'route 10.0.4.0/24: metric -1 is not an integer in 0..4294967295'],
      [5, 'route 10.0.5.0/24: metric 4294967296 is not an integer in 0..4294967295'],
    ]);
    expect(g.index).toEqual([3]);
    expect(
      g.buf.equals(c.frame([c.newRoute({ dst: '10.0.3.0/24', via: '1.2.3.4', protocol: 80 })], 1)),
    ).toBe(true);
  });

  test('addresses in and out', () => {
    expect([...c.ipBytes('10.0.0.1').bytes]).toEqual([10, 0, 0, 1]);
    expect(c.ipText(c.ipBytes('fd00:10:244::1').bytes)).toBe('fd00:10:244::1');
    expect(c.ipText(c.ipBytes('fe80::ecee:eeff:feee:eeee').bytes)).toBe(
      'fe80::ecee:eeff:feee:eeee',
    );
    expect(c.cidrBytes('::/0')).toMatchObject({ family: c.AF_INET6, len: 0 });
    expect(c.macText(c.macBytes('EE:ee:ee:ee:ee:01'))).toBe('ee:ee:ee:ee:ee:01');
    expect(() => c.ipBytes('10.0.0.256')).toThrow('"10.0.0.256" is not an IP address');
    expect(() => c.cidrBytes('10.0.0.0/33')).toThrow('"10.0.0.0/33" is not a CIDR');
    expect(() => c.macBytes('ee:ee')).toThrow('"ee:ee" is not a MAC address');
    expect(() => c.newRoute({ dst: '10.0.0.0/24', via: 'fd00::1', protocol: 80 })).toThrow(
      'route 10.0.0.0/24: gateway fd00::1 is of another address family',
    );
  });

  test('a veth with its peer in another namespace nests linkinfo / info_data / peer', () => {
    const req = c.newVeth({
      name: 'cali1',
      mac: 'ee:ee:ee:ee:ee:ee',
      mtu: 1450,
      peer: { name: 'eth0', netnsFd: 9 },
    });
    expect(req.flags).toBe(c.NLM_F_CREATE | c.NLM_F_EXCL);
    const top = c.parseAttrs(req.body, 16);
    expect(top.get(3)!.toString()).toBe('cali1\0'); // IFLA_IFNAME
    expect(top.get(4)!.readUInt32LE(0)).toBe(1450); // IFLA_MTU
    const info = c.parseAttrs(top.get(18)!, 0); // IFLA_LINKINFO
    expect(info.get(1)!.toString()).toBe('veth\0');
    const peer = c.parseAttrs(info.get(2)!, 0).get(1)!; // INFO_DATA > VETH_INFO_PEER
    const peerAttrs = c.parseAttrs(peer, 16); // after the peer's ifinfomsg
    expect(peerAttrs.get(3)!.toString()).toBe('eth0\0');
    expect(peerAttrs.get(28)!.readUInt32LE(0)).toBe(9); // IFLA_NET_NS_FD
  });

  test('a VXLAN device: vni, local, learning off, port in network order; parsed back', () => {
    const req = c.newVxlan({
      name: 'vxlan.tortie',
      vni: 4097,
      port: 4789,
      local: '192.168.0.1',
      learning: false,
      mtu: 1450,
    });
    const top = c.parseAttrs(req.body, 16);
    const info = c.parseAttrs(top.get(18)!, 0);
    expect(info.get(1)!.toString()).toBe('vxlan\0');
    const data = c.parseAttrs(info.get(2)!, 0);
    expect(data.get(1)!.readUInt32LE(0)).toBe(4097); // IFLA_VXLAN_ID
    expect([...data.get(4)!]).toEqual([192, 168, 0, 1]); // IFLA_VXLAN_LOCAL
    expect([...data.get(7)!]).toEqual([0]); // IFLA_VXLAN_LEARNING
    expect([...data.get(15)!]).toEqual([0x12, 0xb5]); // IFLA_VXLAN_PORT, 4789 big-endian
    // the kernel answers a GETLINK with the same linkinfo: parseLink reads it back
    const link = c.parseLink({ type: c.RTM_NEWLINK, flags: 0, seq: 1, data: req.body });
    expect(link).toMatchObject({
      name: 'vxlan.tortie',
      mtu: 1450,
      kind: 'vxlan',
      vxlan: { vni: 4097, port: 4789, local: '192.168.0.1', learning: false },
    });
    expect(() =>
      c.newVxlan({ name: 'v', vni: 1 << 24, port: 4789, local: '10.0.0.1', learning: false }),
    ).toThrow('VXLAN v: VNI 16777216 is not in 0..16777215');
    expect(() =>
      c.newVxlan({ name: 'v', vni: 1, port: 0, local: '10.0.0.1', learning: false }),
    ).toThrow('VXLAN v: port 0 is not in 1..65535');
    expect(() =>
      c.newVxlan({ name: 'v', vni: 1, port: 4789, local: 'nope', learning: false }),
    ).toThrow('"nope" is not an IP address');
  });

  test('VXLAN FDB entries: AF_BRIDGE, NTF_SELF, permanent, MAC and remote', () => {
    const add = c.replaceFdb('66:00:00:00:00:02', '192.168.0.2', 7);
    expect(add.type).toBe(c.RTM_NEWNEIGH);
    expect(add.flags).toBe(c.NLM_F_CREATE | c.NLM_F_REPLACE);
    expect(add.body.readUInt8(0)).toBe(c.AF_BRIDGE);
    expect(add.body.readInt32LE(4)).toBe(7);
    expect(add.body.readUInt16LE(8)).toBe(c.NUD_PERMANENT);
    expect(add.body.readUInt8(10)).toBe(2); // NTF_SELF
    const a = c.parseAttrs(add.body, 12);
    expect(c.macText(a.get(2)!)).toBe('66:00:00:00:00:02');
    expect(c.ipText(a.get(1)!)).toBe('192.168.0.2');
    const del = c.delFdb('66:00:00:00:00:02', 7);
    expect(del.type).toBe(c.RTM_DELNEIGH);
    expect(c.parseAttrs(del.body, 12).has(1)).toBe(false); // every remote of that MAC
    expect(() => c.replaceFdb('66:00', '192.168.0.2', 7)).toThrow('"66:00" is not a MAC address');
  });

  test('errors name the request, the errno and the kernel text', () => {
    const e = new NetlinkError(
      'route replace 10.0.0.0/26 via 1.2.3.4 proto 80',
      101,
      'Nexthop has invalid gateway',
    );
    expect(e.code).toBe('ENETUNREACH');
    expect(e.message).toBe(
      'netlink route replace 10.0.0.0/26 via 1.2.3.4 proto 80: ENETUNREACH (network is unreachable): Nexthop has invalid gateway',
    );
    expect(routeText({ dst: '10.0.0.0/26', type: 'blackhole', protocol: 80 })).toBe(
      'blackhole 10.0.0.0/26 proto 80',
    );
  });
});
