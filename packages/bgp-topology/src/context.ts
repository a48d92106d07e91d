// What the peer rules of one node read: the node, its AS and cluster, every node, the
// merged settings. One family at a time, as confd renders bird.cfg and bird6.cfg apart.
import type { Resource } from '@tortie/api';
import type { Family } from './address';
import type { BgpSettings } from './settings';
import type { BgpNode } from './types';

export interface PeerContext {
  me: BgpNode;
  myAsn: number;
  myCluster?: string;
  /** Every node, by name. */
  nodes: BgpNode[];
  settings: BgpSettings;
  family: Family;
  /** My address in this family. */
  myIp: string;
  /** The BGPFilters, by name. */
  filters: ReadonlyMap<string, Resource<'BGPFilter'>>;
}

export const ipOf = (n: BgpNode, family: Family): string | undefined =>
  family === 4 ? n.ip : n.ipv6;

/** A node's AS: its own, else the cluster's. */
export const asnOf = (c: PeerContext, n: BgpNode): number => n.asNumber ?? c.settings.asNumber;

/**
 * The mesh direction, as confd decides it (confd/pkg/backends/calico/bgp_processor.go,
 * processMeshPeers: "Make mesh unidirectional to avoid race conditions":
 * `if peerIP > currentNodeIP { peer.Passive = true }`): a node waits for a peer whose
 * address is greater as a string (Go compares the canonical texts byte by byte, as
 * JavaScript compares these ASCII strings). So "10.0.0.5" waits for "10.0.0.8", and
 * "10.0.0.10" waits for "10.0.0.5": the lexically lower address waits. buildPeerFromData
 * applies the same rule to global BGPPeers whose peerIP is a Calico node.
 */
export const waitsFor = (myIp: string, peerIp: string): boolean => peerIp > myIp;
