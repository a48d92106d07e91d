// The resources the reflector is configured from, as the Syncer reports them. Each is
// validated on arrival (the datastore may hold something written around tortiectl): a
// bad one is reported by kind, name and field, and the last good version of it stays.
import { parseResource, ValidationError, type Resource } from '@tortie/api';
import type { SyncUpdate } from '@tortie/datastore';
import type { ReflectorWorld } from './topology';

export const REFLECTOR_KINDS = ['Node', 'BGPPeer', 'BGPFilter', 'BGPConfiguration'] as const;
type ReflectorKind = (typeof REFLECTOR_KINDS)[number];

export class ReflectorResources {
  private readonly byKind: { [K in ReflectorKind]: Map<string, Resource<K>> } = {
    Node: new Map(),
    BGPPeer: new Map(),
    BGPFilter: new Map(),
    BGPConfiguration: new Map(),
  };

  /** Applies Syncer updates; returns one problem per rejected resource (kept at its last good version). */
  apply(updates: SyncUpdate[]): string[] {
    const problems: string[] = [];
    for (const u of updates) {
      const kind = u.type === 'set' ? u.resource.kind : u.key.kind;
      if (!isReflectorKind(kind)) continue;
      const map = this.byKind[kind] as Map<string, Resource>;
      if (u.type === 'deleted') {
        map.delete(u.key.name);
        continue;
      }
      try {
        map.set(u.resource.metadata.name, parseResource(u.resource));
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        const kept = map.has(u.resource.metadata.name)
          ? 'keeping its last good version'
          : 'ignoring it';
        problems.push(`invalid ${err.problems.join('; ')}; ${kept}`);
      }
    }
    return problems;
  }

  world(me: string): ReflectorWorld {
    return {
      me,
      nodes: this.byKind.Node.values(),
      peers: this.byKind.BGPPeer.values(),
      filters: this.byKind.BGPFilter.values(),
      bgpConfigurations: this.byKind.BGPConfiguration.values(),
    };
  }
}

function isReflectorKind(k: string): k is ReflectorKind {
  return (REFLECTOR_KINDS as readonly string[]).includes(k);
}
