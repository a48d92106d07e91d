// The ACL dataplane's desired state, kept the same way for every backend: the calculation
// graph's updates (policies, profiles, workload and host endpoints, pools, host addresses,
// FelixConfiguration, in-sync) go into plain maps, and what changed since the last apply
// is collected for the backend (iptables in ./acl-manager.ts, nftables in
// ../nft-acl/nft-acl-manager.ts) to render from. IP set updates are the backends' own
// (ipset vs nft sets): they go to an IpSetSink.
import type { Logger } from 'winston';
import type {
  DataplaneRule,
  DataplaneUpdate,
  HostEndpoint,
  IpPoolInfo,
  IpSetType,
  WorkloadEndpoint,
} from '../../types';
import { aclConfig, DEFAULT_ACL_CONFIG, type AclConfig } from './acl-config';
import { allocateMarks, type MarkBits } from './marks';

export interface Rules {
  inbound: DataplaneRule[];
  outbound: DataplaneRule[];
}

/** Where a backend keeps its IP sets. */
export interface IpSetSink {
  has(id: string): boolean;
  replace(id: string, type: IpSetType, members: string[]): void;
  delta(id: string, added: string[], removed: string[]): void;
  remove(id: string): void;
}

/** What changed since the backend last took the changes. */
export interface DesiredChanges {
  policies: Set<string>;
  profiles: Set<string>;
  workloads: Set<string>;
  heps: boolean;
  pools: boolean;
  hostAddresses: boolean;
  /** a new (valid) FelixConfiguration */
  config: boolean;
  /** the mark bits moved (iptablesMarkMask changed): every chain changes */
  marks: boolean;
}

const noChanges = (): DesiredChanges => ({
  policies: new Set(),
  profiles: new Set(),
  workloads: new Set(),
  heps: false,
  pools: false,
  hostAddresses: false,
  config: false,
  marks: false,
});

export class AclDesiredState {
  readonly policies = new Map<string, Rules>();
  readonly profiles = new Map<string, Rules>();
  readonly workloads = new Map<string, WorkloadEndpoint>();
  readonly heps = new Map<string, HostEndpoint>();
  readonly pools = new Map<string, IpPoolInfo>();
  /** Every node's address (host-addresses), for the all-hosts set. */
  hostAddresses: string[] = [];
  config: AclConfig = DEFAULT_ACL_CONFIG;
  marks: MarkBits = allocateMarks(DEFAULT_ACL_CONFIG.iptablesMarkMask);
  inSync = false;
  /** Why the last config-update was ignored, if it was. */
  lastConfigError?: string;
  private changed = noChanges();

  constructor(
    private readonly sets: IpSetSink,
    private readonly log: Logger,
    private readonly component: string,
  ) {}

  /** Takes one update (those of other managers are ignored). */
  send(u: DataplaneUpdate): void {
    const ch = this.changed;
    switch (u.type) {
      case 'ipset-update':
        this.sets.replace(u.id, u.setType, u.members);
        break;
      case 'ipset-delta':
        if (this.sets.has(u.id)) this.sets.delta(u.id, u.added, u.removed);
        // out of order (a calculation graph bug): say so, never break the update stream
        else
          this.log.error('IP set delta before the set itself, ignored', {
            component: this.component,
            ipset: u.id,
          });
        break;
      case 'ipset-remove':
        this.sets.remove(u.id);
        break;
      case 'policy-update':
        this.policies.set(u.id, { inbound: u.inbound, outbound: u.outbound });
        ch.policies.add(u.id);
        break;
      case 'policy-remove':
        this.policies.delete(u.id);
        ch.policies.add(u.id);
        break;
      case 'profile-update':
        this.profiles.set(u.id, { inbound: u.inbound, outbound: u.outbound });
        ch.profiles.add(u.id);
        break;
      case 'profile-remove':
        this.profiles.delete(u.id);
        ch.profiles.add(u.id);
        break;
      case 'workload-update':
        this.workloads.set(u.endpoint.id, u.endpoint);
        ch.workloads.add(u.endpoint.id);
        break;
      case 'workload-remove':
        this.workloads.delete(u.id);
        ch.workloads.add(u.id);
        break;
      case 'host-endpoint-update':
        this.heps.set(u.endpoint.id, u.endpoint);
        ch.heps = true;
        break;
      case 'host-endpoint-remove':
        this.heps.delete(u.id);
        ch.heps = true;
        break;
      case 'pool-update':
        this.pools.set(u.pool.cidr, u.pool);
        ch.pools = true;
        break;
      case 'pool-remove':
        this.pools.delete(u.cidr);
        ch.pools = true;
        break;
      case 'host-addresses':
        this.hostAddresses = u.addresses;
        ch.hostAddresses = true;
        break;
      case 'config-update': {
        let next: AclConfig;
        try {
          next = aclConfig(u.config);
        } catch (e) {
          // a bad FelixConfiguration must not take the dataplane down: keep the last good one
          this.lastConfigError = (e as Error).message;
          this.log.error('bad configuration ignored', {
            component: this.component,
            error: (e as Error).message,
          });
          break;
        }
        this.lastConfigError = undefined;
        if (next.iptablesMarkMask !== this.config.iptablesMarkMask) {
          this.marks = allocateMarks(next.iptablesMarkMask);
          ch.marks = true;
        }
        this.config = next;
        ch.config = true;
        break;
      }
      case 'in-sync':
        this.inSync = true;
        break;
      default:
        break; // routes, host and BGP updates belong to other managers
    }
  }

  /** What changed since the last call; the next call starts from nothing. */
  takeChanges(): DesiredChanges {
    const c = this.changed;
    this.changed = noChanges();
    return c;
  }
}
