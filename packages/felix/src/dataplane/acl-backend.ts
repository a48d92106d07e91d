// Picks the ACL dataplane once the datastore is in sync, as FelixConfiguration's
// nftablesMode says (Calico's field): Enabled -> the native nftables dataplane
// (nft-acl), Disabled or Auto -> iptables (acl). Updates before in-sync are held (nothing
// is written before it anyway) and replayed into the chosen one. Falls back to iptables,
// logging why, when nft is missing or too old, or when a host endpoint exists (the
// nftables dataplane programs workload endpoints only). A later change of nftablesMode
// takes effect when the agent restarts (as Felix, which restarts itself for it).
import winston, { type Logger } from 'winston';
import type { DataplaneManager } from '../agent';
import type { DataplaneUpdate } from '../types';
import type { AclStats } from './acl/acl-manager';
import type { NftAclStats } from './nft-acl';

export interface AclLike extends DataplaneManager {
  status(): AclStats | NftAclStats;
}

export type NftablesMode = 'Enabled' | 'Disabled' | 'Auto';

export interface AclBackendOptions {
  iptables: () => AclLike;
  nftables: () => AclLike;
  /** why nft cannot be used here, or undefined */
  nftProblem: () => Promise<string | undefined>;
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
    const mode = this.opts.mode ?? this.mode ?? 'Disabled';
    let nft = mode === 'Enabled';
    if (nft) {
      const hep = this.held.find((u) => u.type === 'host-endpoint-update');
      const problem =
        hep?.type === 'host-endpoint-update'
          ? `host endpoint ${hep.endpoint.id} exists and the nftables dataplane does not program host endpoints yet`
          : await this.opts.nftProblem();
      if (problem) {
        this.fallbackReason = problem;
        this.log.error('nftablesMode Enabled, but using iptables', {
          component: 'acl',
          reason: problem,
        });
        nft = false;
      }
    }
    this.log.info('ACL dataplane chosen', {
      component: 'acl',
      dataplane: nft ? 'nftables' : 'iptables',
    });
    const m = nft ? this.opts.nftables() : this.opts.iptables();
    for (const u of this.held) m.send(u);
    this.held = [];
    return m;
  }

  async apply(): Promise<void> {
    if (!this.inSync) return;
    this.chosen ??= await this.choose();
    await this.chosen.apply();
  }

  async resync(): Promise<void> {
    if (this.chosen) await this.chosen.resync();
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
