// Picks the ACL dataplane once the datastore is in sync, as FelixConfiguration's
// nftablesMode says (Calico's field, default Auto; see nft-mode.ts): Enabled -> the native
// nftables dataplane (nft-acl), Disabled -> iptables (acl), Auto -> whichever kube-proxy
// uses. Updates before in-sync are held (nothing is written before it anyway) and replayed
// into the chosen one. Falls back to iptables, logging why, when nft is missing or too old.
// Both dataplanes program workload and host endpoints alike.
// After the chosen dataplane's first write, and at each resync, what the other one left is
// removed (mode-cleanup.ts), as Felix does; on iptables, also what the other iptables
// backend holds of tortie's. A later change of nftablesMode (or, in Auto, of
// kube-proxy's mode) takes effect when the agent restarts (Felix restarts itself for it).
import winston, { type Logger } from 'winston';
import type { DataplaneManager } from '../agent';
import type { DataplaneUpdate } from '../types';
import type { AclStats } from './acl/acl-manager';
import type { NftAclStats } from './nft-acl';
import { linuxAclManager, type PolicyFailure } from './acl/acl-manager';
import { linuxNftAclManager, nftProblem } from './nft-acl';
import type { Backend } from './acl/iptables-runner';
import {
  removeIptablesState,
  removeNftAclState,
  removeOtherIptablesBackend,
  type Removed,
} from './mode-cleanup';
import {
  decideNftables,
  detectKubeProxyNftables,
  needsKubeProxy,
  type KubeProxyMode,
  type NftablesMode,
} from './nft-mode';

export type { NftablesMode } from './nft-mode';

export interface AclLike extends DataplaneManager {
  status(): AclStats | NftAclStats;
}

export interface AclBackendOptions {
  iptables: () => AclLike;
  nftables: () => AclLike;
  /** why nft cannot be used here, or undefined */
  nftProblem: () => Promise<string | undefined>;
  /** Auto: kube-proxy's mode (nftables when its table has chains) */
  kubeProxyNftables?: () => Promise<KubeProxyMode>;
  /** removes what the dataplane not chosen left behind (Felix's cleanup on a switch) */
  removeIptables?: () => Promise<Removed>;
  removeNftables?: () => Promise<Removed>;
  /** on iptables: removes tortie's chains from the iptables backend not in use */
  removeOtherIptables?: (inUse: Backend) => Promise<Removed>;
  /** overrides FelixConfiguration (FELIX_NFTABLESMODE) */
  mode?: NftablesMode;
  logger?: Logger;
}

export class AclBackend implements DataplaneManager {
  readonly name = 'acl';
  private chosen?: AclLike;
  private held: DataplaneUpdate[] = [];
  private mode?: NftablesMode;
  private inSync = false;
  private readonly log: Logger;
  /** Why nftables was asked for but not used. */
  fallbackReason?: string;
  /** Why the chosen dataplane was chosen (also logged). */
  reason?: string;
  /** The other dataplane's leftovers are gone (false: try again at the next apply). */
  private cleaned = false;
  private kubeProxy?: KubeProxyMode;

  constructor(private readonly opts: AclBackendOptions) {
    this.log = opts.logger ?? winston.createLogger({ silent: true });
  }

  send(u: DataplaneUpdate): void {
    if (u.type === 'config-update' && u.config.nftablesMode !== undefined) {
      const m = String(u.config.nftablesMode);
      const mode = (['Enabled', 'Disabled', 'Auto'] as const).find(
        (x) => x.toLowerCase() === m.toLowerCase(),
      );
      if (!mode)
        this.log.error('nftablesMode is not one of Enabled, Disabled, Auto; ignored', {
          component: 'acl',
          nftablesMode: m,
        });
      else if (this.chosen && mode !== this.mode)
        this.log.warn('nftablesMode changed: it takes effect when the agent restarts', {
          component: 'acl',
          nftablesMode: mode,
        });
      else this.mode = mode;
    }
    if (u.type === 'in-sync') this.inSync = true;
    if (this.chosen) this.chosen.send(u);
    else this.held.push(u);
  }

  private async choose(): Promise<AclLike> {
    const mode = this.opts.mode ?? this.mode ?? 'Auto';
    let kubeProxy: KubeProxyMode | Error | undefined;
    if (needsKubeProxy(mode))
      kubeProxy = await (this.opts.kubeProxyNftables ?? notChecked)().then(
        (k) => (this.kubeProxy = k),
        (e: Error) => e,
      );
    const wantsNft =
      mode === 'Enabled' ||
      (mode === 'Auto' && !(kubeProxy instanceof Error) && kubeProxy?.nftables === true);
    const d = decideNftables(mode, {
      kubeProxy,
      nftProblem: wantsNft ? await this.opts.nftProblem() : undefined,
    });
    this.reason = d.reason;
    if (d.fallback) {
      this.fallbackReason = d.fallback;
      this.log.error('nftables wanted, but using iptables', {
        component: 'acl',
        nftablesMode: mode,
        reason: d.reason,
      });
    }
    this.log.info('ACL dataplane chosen', {
      component: 'acl',
      dataplane: d.nftables ? 'nftables' : 'iptables',
      nftablesMode: mode,
      reason: d.reason,
    });
    this.nft = d.nftables;
    const m = d.nftables ? this.opts.nftables() : this.opts.iptables();
    for (const u of this.held) m.send(u);
    this.held = [];
    return m;
  }

  /** The chosen dataplane is nftables (undefined: not chosen yet). */
  nft?: boolean;

  /** Removes the other dataplane's leftovers; a failure is logged and retried later. */
  private async removeOther(): Promise<void> {
    const other = this.nft ? 'iptables' : 'nftables';
    try {
      const removed = await this.leftovers();
      this.cleaned = true;
      if (removed.length)
        this.log.info(`removed what the ${other} ACL dataplane left`, {
          component: 'acl',
          removed,
        });
    } catch (e) {
      this.log.error(`cannot remove what the ${other} ACL dataplane left; retrying`, {
        component: 'acl',
        error: (e as Error).message,
      });
    }
  }

  /** On nftables: iptables (both backends). On iptables: nftables, and the other backend. */
  private async leftovers(): Promise<Removed> {
    const o = this.opts;
    if (this.nft) return (await o.removeIptables?.()) ?? [];
    const removed = [...((await o.removeNftables?.()) ?? [])];
    const inUse = (this.chosen?.status() as AclStats | undefined)?.backend;
    if (inUse && o.removeOtherIptables) removed.push(...(await o.removeOtherIptables(inUse)));
    return removed;
  }

  async apply(): Promise<void> {
    if (!this.inSync) return;
    this.chosen ??= await this.choose();
    await this.chosen.apply();
    // after the first write: no moment without the new dataplane's policy
    if (!this.cleaned) await this.removeOther();
  }

  async resync(): Promise<void> {
    if (!this.chosen) return;
    await this.chosen.resync();
    await this.removeOther();
    await this.checkKubeProxy();
  }

  /** Auto: kube-proxy changing mode means the other dataplane, from the next start. */
  private async checkKubeProxy(): Promise<void> {
    const mode = this.opts.mode ?? this.mode;
    if (!this.kubeProxy || mode !== 'Auto' || !this.opts.kubeProxyNftables) return;
    const now = await this.opts.kubeProxyNftables().catch(() => undefined);
    if (now && now.nftables !== this.kubeProxy.nftables)
      this.log.warn(
        'kube-proxy changed its mode: restart the agent to follow it (nftablesMode Auto)',
        { component: 'acl', was: this.kubeProxy.detail, now: now.detail },
      );
  }

  /** Ends the chosen dataplane's long-lived helper process (nft -i), if it has one. */
  close(): void {
    const c = this.chosen as (AclLike & { close?: () => void }) | undefined;
    c?.close?.();
  }

  status(): AclStats | NftAclStats {
    return (
      this.chosen?.status() ?? {
        families: [],
        rules: {},
        chainsWritten: 0,
        chainsDeleted: 0,
        ipsetLines: 0,
        rejected: [],
      }
    );
  }
}

const notChecked = () => Promise.reject(new Error('no kube-proxy check configured'));

/**
 * The node agent's ACL dataplane on this host (or in a namespace): iptables or nftables by
 * nftablesMode, nft's version checked, kube-proxy's mode read for Auto, and the other
 * dataplane's leftovers removed.
 */
export function linuxAclBackend(
  o: {
    netns?: string;
    prefix?: string[];
    iptablesBackend?: 'legacy' | 'nft';
    mode?: NftablesMode;
    logger?: Logger;
    onPolicyFailure?: (f: PolicyFailure) => void;
  } = {},
): AclBackend {
  const where = { netns: o.netns, prefix: o.prefix };
  return new AclBackend({
    iptables: () =>
      linuxAclManager({
        ...where,
        backend: o.iptablesBackend,
        logger: o.logger,
        onPolicyFailure: o.onPolicyFailure,
      }),
    nftables: () =>
      linuxNftAclManager({ ...where, logger: o.logger, onPolicyFailure: o.onPolicyFailure }),
    nftProblem: () => nftProblem(where),
    kubeProxyNftables: () => detectKubeProxyNftables(where),
    removeIptables: () => removeIptablesState(where),
    removeNftables: () => removeNftAclState(where),
    removeOtherIptables: (inUse) => removeOtherIptablesBackend(inUse, where),
    mode: o.mode,
    logger: o.logger,
  });
}
