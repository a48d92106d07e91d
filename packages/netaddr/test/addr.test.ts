// Every textual form of an address and a CIDR, read one way (Go's net package, which
// Calico and Kubernetes use, is the reference for what is accepted).
import {
  cidrProblem,
  formatCidr,
  formatIp,
  ipInNet,
  ipVersionOf,
  parseCidr,
  parseIp,
} from '../src';

describe('addresses', () => {
  test.each<[string, string, string | undefined]>([
    // form, text, canonical text (undefined: refused)
    ['dotted quad', '10.0.0.1', '10.0.0.1'],
    ['leading zero (octal to some readers): refused, as Go', '010.0.0.1', undefined],
    ['three parts: refused', '10.0.1', undefined],
    ['hex octet: refused', '0x0a.0.0.1', undefined],
    ['octet over 255', '10.0.0.256', undefined],
    ['zero-compressed', 'fd00::1', 'fd00::1'],
    ['uncompressed, leading zeros in groups', 'fd00:0000:0000:0000:0000:0000:0000:0001', 'fd00::1'],
    ['upper case', 'FD00::A', 'fd00::a'],
    ['IPv4-mapped, dotted tail', '::ffff:10.0.0.1', '::ffff:a00:1'],
    ['IPv4-mapped, hex', '::ffff:a00:1', '::ffff:a00:1'],
    ['IPv4-embedded after six groups', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['zone: refused (not in policy or IPAM)', 'fe80::1%eth0', undefined],
    ['two "::": refused', '1::2::3', undefined],
    ['nine groups: refused', '1:2:3:4:5:6:7:8:9', undefined],
  ])('%s: %s', (_form, text, canonical) => {
    if (canonical === undefined) {
      expect(ipVersionOf(text)).toBe(0);
      expect(() => parseIp(text)).toThrow(`"${text}" is not an IP address`);
    } else {
      const { version, value } = parseIp(text);
      expect(formatIp(version, value)).toBe(canonical);
    }
  });
});

describe('CIDRs', () => {
  test.each<[string, string | undefined]>([
    ['10.0.0.0/8', '10.0.0.0/8'],
    // host bits are cleared, as Calico's rule nets and Kubernetes' ipBlock read them
    ['10.0.0.5/24', '10.0.0.0/24'],
    ['10.0.0.5', '10.0.0.5/32'], // a bare address is a host
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['::ffff:10.0.0.0/120', '::ffff:a00:0/120'],
    ['fd00::1/64', 'fd00::/64'],
    ['10.0.0.0/33', undefined],
    ['10.0.0.0/', undefined], // was read as /0
    ['10.0.0.0/08', undefined], // a leading zero in the length, as Go's netip
    ['10.0.0.0/8/8', undefined],
    ['fd00::/129', undefined],
  ])('%s', (text, canonical) => {
    if (canonical === undefined) expect(cidrProblem(text)).toBe(`"${text}" is not a valid CIDR`);
    else expect(formatCidr(parseCidr(text))).toBe(canonical);
  });

  test('containment reads every form the same way', () => {
    // the evaluator once said ::ffff:10.0.0.1 is not in ::ffff:a00:0/120
    expect(ipInNet('::ffff:10.0.0.1', '::ffff:a00:0/120')).toBe(true);
    expect(ipInNet('::ffff:a00:1', '::ffff:10.0.0.0/120')).toBe(true);
    expect(ipInNet('10.0.0.1', '::ffff:10.0.0.0/120')).toBe(false); // families differ
    expect(ipInNet('10.0.0.7', '10.0.0.5/29')).toBe(true); // host bits cleared: .0-.7
    expect(ipInNet('10.0.0.9', '10.0.0.5/29')).toBe(false);
    expect(ipInNet('10.0.0.1', '0.0.0.0/0')).toBe(true);
    expect(ipInNet('fd00::1', '::/0')).toBe(true);
    expect(ipInNet('010.0.0.1', '0.0.0.0/0')).toBe(false);
    expect(ipInNet('10.0.0.1', '10.0.0.0/')).toBe(false);
  });
});
