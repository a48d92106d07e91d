// The node's BGP addresses from IP / IP6 and the Node resource it already has, as
// calico-node's configureIPsAndSubnets decides:
//   IP=autodetect, or IP unset on a node without an IPv4 address: IP_AUTODETECTION_METHOD
//     picks one (a failure keeps the node's old address, with a warning, if it has one);
//   IP=none, or unset on a node that has one: the Node's address is kept;
//   IP=<address>[/<len>]: that address; without a length, the length of the host
//     interface holding it (/32 when none does, with a warning).
// IP6 likewise, but only IP6=autodetect detects (IPv6 is opt-in).
import { ipVersionOf, type IpVersion } from '@tortie/netaddr';
import {
  AutodetectError,
  detect,
  localCidrOf,
  parseMethod,
  type HostInterface,
} from './autodetect';
import { gatherFacts, type HostProbe } from './host-addresses';

export interface NodeAddresses {
  ipv4Address?: string;
  ipv6Address?: string;
}

export interface AddressLog {
  info(msg: string, meta?: object): void;
  warn(msg: string, meta?: object): void;
}

const VARS = {
  4: { ip: 'IP', method: 'IP_AUTODETECTION_METHOD', bits: 32 },
  6: { ip: 'IP6', method: 'IP6_AUTODETECTION_METHOD', bits: 128 },
} as const;

/** Why IP / IP6's value is unusable, or undefined. Pure. */
export function addressProblem(version: IpVersion, value: string | undefined): string | undefined {
  if (!value || value === 'autodetect' || value === 'none') return undefined;
  const [a, len, extra] = value.split('/');
  const ok =
    extra === undefined &&
    ipVersionOf(a) === version &&
    (len === undefined || (/^\d{1,3}$/.test(len) && Number(len) <= VARS[version].bits));
  return ok
    ? undefined
    : `not "autodetect", "none" or an IPv${version} address with or without its prefix (e.g. ${version === 4 ? '10.0.0.1/24' : 'fd00::1/64'})`;
}

async function one(
  version: IpVersion,
  env: NodeJS.ProcessEnv,
  old: string | undefined,
  probe: HostProbe,
  log: AddressLog,
): Promise<string | undefined> {
  const v = VARS[version];
  const value = env[v.ip] || undefined;
  const detecting = value === 'autodetect' || (version === 4 && !value && !old);
  if (detecting) {
    const method = parseMethod(env[v.method], v.method);
    const facts = await gatherFacts(probe, method, version);
    try {
      const d = detect(method, version, facts, v.method);
      log.info('autodetected the node address', {
        variable: v.ip,
        address: d.cidr,
        interface: d.iface,
        method: d.how,
      });
      return d.cidr;
    } catch (e) {
      if (!(e instanceof AutodetectError) || !old) throw e;
      log.warn('autodetection failed; keeping the Node resource address', {
        variable: v.ip,
        address: old,
        error: e.message,
      });
      return old;
    }
  }
  if (!value || value === 'none') return old;
  const problem = addressProblem(version, value);
  if (problem) throw new AutodetectError(`${v.ip}=${JSON.stringify(value)}: ${problem}`);
  const interfaces: HostInterface[] = await probe.interfaces();
  const [address, len] = value.split('/');
  const local = localCidrOf(interfaces, address);
  if (!local)
    log.warn("the address is on none of this host's interfaces", { variable: v.ip, address });
  return len !== undefined ? value : (local?.cidr ?? `${address}/${v.bits}`);
}

/**
 * The addresses to write to the Node resource. Throws an AutodetectError naming the
 * variable, the method and what was found when an address is required and none results.
 */
export async function resolveNodeAddresses(
  env: NodeJS.ProcessEnv,
  existing: NodeAddresses | undefined,
  probe: HostProbe,
  log: AddressLog,
): Promise<NodeAddresses> {
  const ipv4Address = await one(4, env, existing?.ipv4Address, probe, log);
  const ipv6Address = await one(6, env, existing?.ipv6Address, probe, log);
  const backend = env.TORTIE_NETWORKING_BACKEND ?? 'bgp';
  if (!ipv4Address && !ipv6Address && backend !== 'none') {
    throw new AutodetectError(
      `no IPv4 or IPv6 address configured or detected (IP=${JSON.stringify(env.IP ?? '')}, IP6=${JSON.stringify(env.IP6 ?? '')}), required for ${backend} networking`,
    );
  }
  return {
    ...(ipv4Address ? { ipv4Address } : {}),
    ...(ipv6Address ? { ipv6Address } : {}),
  };
}
