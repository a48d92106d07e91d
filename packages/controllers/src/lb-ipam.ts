// LoadBalancer IP address management, as Calico's kube-controllers does it since 3.29:
// Services of type LoadBalancer (without a loadBalancerClass, or with "tortie") get their
// load-balancer address from the IP pools whose allowedUses include LoadBalancer, through
// the same IPAM as pods (so no address is ever given twice, however many controllers
// run). A requested address (spec.loadBalancerIP, or the annotation
// projectcalico.org/loadBalancerIPs, a JSON list) is honoured when it is in such a pool and
// free. The address goes back when the Service goes or stops being a LoadBalancer.
// What cannot be done is written as a condition on the Service and logged, naming it;
// other Services are not affected.
import type { Resource } from '@tortie/api';
import { DatastoreError, type Datastore } from '@tortie/datastore';
import { IpamClient, IpamError, ipVersionOf, parseCidr, containsIp, parseIp } from '@tortie/ipam';
import type { Logger } from 'winston';

type Service = Resource<'KubernetesService'>;
type Pool = Resource<'IPPool'>;

/** The IPAM "node" load-balancer blocks are affine to (Calico: a virtual load-balancer host). */
export const LB_NODE = 'load-balancer';
export const LB_ANNOTATION = 'projectcalico.org/loadBalancerIPs';
export const CONDITION = 'LoadBalancerAddressAssigned';
const HANDLE_PREFIX = 'lb.';

export const handleOf = (ns: string, name: string) => `${HANDLE_PREFIX}${ns}.${name}`;

/** Whether this controller gives the Service its address. */
export function managed(svc: Service): boolean {
  const cls = svc.spec.loadBalancerClass;
  return svc.spec.type === 'LoadBalancer' && (cls === undefined || cls === 'tortie');
}

/** The addresses the user asked for, or [] for "any"; throws naming a bad annotation. */
export function requested(svc: Service): string[] {
  const note = svc.metadata.annotations?.[LB_ANNOTATION];
  if (note !== undefined) {
    let list: unknown;
    try {
      list = JSON.parse(note);
    } catch {
      throw new Error(`annotation ${LB_ANNOTATION}: ${JSON.stringify(note)} is not a JSON list`);
    }
    if (!Array.isArray(list) || list.some((x) => typeof x !== 'string' || ipVersionOf(x) === 0)) {
      throw new Error(`annotation ${LB_ANNOTATION}: ${note} is not a list of IP addresses`);
    }
    return list as string[];
  }
  return svc.spec.loadBalancerIP ? [svc.spec.loadBalancerIP] : [];
}

const lbPools = (pools: Pool[]) =>
  pools.filter((p) => !p.spec.disabled && p.spec.allowedUses.includes('LoadBalancer'));

const inPool = (ip: string, p: Pool) => {
  const { version, value } = parseIp(ip);
  return containsIp(parseCidr(p.spec.cidr), version, value);
};

const key = (svc: Service) => `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`;
const same = (a: string[], b: string[]) => {
  const [x, y] = [[...a].sort(), [...b].sort()];
  return x.length === y.length && x.every((ip, i) => ip === y[i]);
};

export class LoadBalancerIpam {
  private readonly ipam: IpamClient;

  constructor(
    private readonly ds: Datastore,
    private readonly log: Logger,
  ) {
    this.ipam = new IpamClient(ds);
  }

  /**
   * Brings one Service (or its absence) in line. `pools`: the IP pools as the caller
   * already holds them (the controller's watch); read from the datastore when not given.
   */
  async reconcile(ns: string, name: string, pools?: Pool[]): Promise<void> {
    const handle = handleOf(ns, name);
    try {
      const svc = (await this.ds.get({ kind: 'KubernetesService', name, namespace: ns })) as
        Service | undefined;
      if (!svc || !managed(svc)) {
        const released = await this.ipam.releaseByHandle(handle);
        if (released.length)
          this.log.info('load-balancer address released', { service: `${ns}/${name}`, released });
        if (svc && released.length) await this.write(svc, undefined, undefined);
        return;
      }
      await this.assign(
        svc,
        handle,
        pools ?? ((await this.ds.list({ kind: 'IPPool' })).items as Pool[]),
      );
    } catch (e) {
      if (e instanceof DatastoreError && e.code === 'Conflict') throw e; // the caller retries
      this.log.error('load-balancer address: service not reconciled', {
        service: `${ns}/${name}`,
        error: (e as Error).message,
      });
      throw e;
    }
  }

  /** Releases the addresses of Services that no longer exist (after a restart). */
  async collect(): Promise<string[]> {
    const handles = (await this.ds.list({ kind: 'IPAMHandle' })).items as Resource<'IPAMHandle'>[];
    const gone: string[] = [];
    for (const h of handles) {
      const id = h.spec.handleID;
      if (!id.startsWith(HANDLE_PREFIX)) continue;
      const [ns, ...rest] = id.slice(HANDLE_PREFIX.length).split('.');
      const name = rest.join('.');
      const svc = (await this.ds.get({ kind: 'KubernetesService', name, namespace: ns })) as
        Service | undefined;
      if (svc && managed(svc)) continue;
      gone.push(...(await this.ipam.releaseByHandle(id)));
    }
    return gone;
  }

  private async assign(svc: Service, handle: string, allPools: Pool[]): Promise<void> {
    const pools = lbPools(allPools);
    const held = await this.ipam.ipsByHandle(handle);
    let want: string[];
    try {
      want = requested(svc);
      for (const ip of want) {
        if (!pools.some((p) => inPool(ip, p))) {
          throw new IpamError('NoPool', `${ip} is in no IP pool allowed for LoadBalancer`);
        }
      }
    } catch (e) {
      return this.refuse(svc, held, (e as Error).message);
    }
    let ips = held;
    if (
      want.length > 0
        ? !same(held, want)
        : held.length === 0 || !held.every((ip) => pools.some((p) => inPool(ip, p)))
    ) {
      if (held.length) await this.ipam.releaseByHandle(handle);
      try {
        if (want.length > 0) {
          for (const ip of want)
            await this.ipam.assignIp(ip, handle, LB_NODE, { service: key(svc) });
        } else {
          const v4 = pools.filter((p) => !p.spec.cidr.includes(':')).map((p) => p.metadata.name);
          const v6 = pools.filter((p) => p.spec.cidr.includes(':')).map((p) => p.metadata.name);
          if (v4.length + v6.length === 0)
            throw new IpamError('NoPool', 'no IP pool allows LoadBalancer');
          const r = await this.ipam.autoAssign({
            handleId: handle,
            node: LB_NODE,
            num4: v4.length ? 1 : 0,
            num6: v6.length && !v4.length ? 1 : 0,
            pools4: v4,
            pools6: v6,
            attrs: { service: key(svc) },
          });
          want = [...r.ipv4, ...r.ipv6];
        }
      } catch (e) {
        await this.ipam.releaseByHandle(handle); // all or nothing
        return this.refuse(svc, [], (e as Error).message);
      }
      ips = await this.ipam.ipsByHandle(handle);
      this.log.info('load-balancer address assigned', { service: key(svc), ips });
    }
    if (want.length === 0) ips = await this.oneEach(ips);
    await this.write(svc, ips, { type: CONDITION, status: 'True', reason: 'Assigned' });
  }

  /**
   * One address per family: two controllers racing on one Service can both allocate to
   * its handle; each keeps the lowest and releases the rest, so they agree.
   */
  private async oneEach(ips: string[]): Promise<string[]> {
    const keep = [4, 6].flatMap((v) =>
      ips
        .filter((ip) => ipVersionOf(ip) === v)
        .sort()
        .slice(0, 1),
    );
    const extra = ips.filter((ip) => !keep.includes(ip));
    if (extra.length) await this.ipam.releaseIps(extra);
    return keep;
  }

  private async refuse(svc: Service, held: string[], message: string): Promise<void> {
    this.log.warn('load-balancer address not assigned', { service: key(svc), reason: message });
    await this.write(svc, held.length ? held : undefined, {
      type: CONDITION,
      status: 'False',
      reason: 'NotAssigned',
      message,
    });
  }

  /** Writes the ingress addresses and the condition when they differ (compare-and-swap). */
  private async write(
    svc: Service,
    ips: string[] | undefined,
    condition: NonNullable<Service['spec']['conditions']>[number] | undefined,
  ): Promise<void> {
    const ingress = ips?.map((ip) => ({ ip }));
    const conditions = [
      ...(svc.spec.conditions ?? []).filter((c) => c.type !== CONDITION),
      ...(condition ? [condition] : []),
    ];
    const next = {
      ...svc.spec,
      loadBalancerIngress: ingress,
      conditions: conditions.length ? conditions : undefined,
    };
    if (JSON.stringify(next) === JSON.stringify(svc.spec)) return;
    await this.ds.update({ ...svc, spec: next });
  }
}
