// Graceful restart (RFC 4724) decisions as pure functions: the capability we announce,
// which of a peer's routes we keep when its session drops (we are its helper), and
// which of those we drop at once when it comes back. Timers and RIB changes are the
// speaker's; this module only says what should happen.
import type { GracefulRestartConfig, PeerConfig } from '../config';
import type { Afi, Capability } from '../types';
import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST } from '../types';

/** Our graceful-restart settings for one peer (speaker config with the peer's overrides). */
export interface GracefulRestartSettings {
  /** Restart Time we announce, seconds. */
  restartTime: number;
  /** How long a peer that came back may take to send End-of-RIB, seconds. */
  staleTime: number;
  /** Announce the Restart State bit on the first session after we started. */
  restarting: boolean;
  /** Announce the Forwarding State bit for every family. */
  forwardingPreserved: boolean;
}

/** What a peer announced in its capability, unicast IPv4/IPv6 only. */
export interface PeerGracefulRestart {
  restarting: boolean;
  restartTime: number;
  families: Array<{ afi: Afi; forwardingPreserved: boolean }>;
}

/**
 * Why a session ended, as graceful restart sees it: `transport` is a TCP close or reset
 * or a hold timer expiry (the peer may be restarting: keep its routes); `notification`
 * is a NOTIFICATION either way (RFC 4724: normal procedures); `stop` is ours.
 */
export type DownCause = 'transport' | 'notification' | 'stop';

/** The settings for a peer, or undefined when graceful restart is off for it. */
export function resolveGracefulRestart(
  speaker: GracefulRestartConfig | undefined,
  peer: PeerConfig['gracefulRestart'],
): GracefulRestartSettings | undefined {
  const enabled = peer?.enabled ?? speaker?.enabled ?? false;
  if (!enabled) return undefined;
  return {
    restartTime: peer?.restartTimeS ?? speaker?.restartTimeS ?? 120,
    staleTime: peer?.staleTimeS ?? speaker?.staleTimeS ?? 360,
    restarting: speaker?.restarting ?? false,
    forwardingPreserved: speaker?.forwardingPreserved ?? true,
  };
}

/**
 * Our capability. Without settings it lists no family: we only tell the peer that we
 * send End-of-RIB (RFC 4724 §3), and it keeps none of our routes when we go.
 */
export function gracefulRestartCapability(
  s: GracefulRestartSettings | undefined,
  families: readonly Afi[],
  restarting: boolean,
): Capability {
  if (!s) return { code: 'graceful-restart', restarting: false, restartTime: 0, families: [] };
  return {
    code: 'graceful-restart',
    restarting,
    restartTime: s.restartTime,
    families: families.map((afi) => ({
      afi,
      safi: SAFI_UNICAST,
      forwardingPreserved: s.forwardingPreserved,
    })),
  };
}

/** The peer's graceful-restart capability (unicast families), if it sent one. */
export function peerGracefulRestart(caps: readonly Capability[]): PeerGracefulRestart | undefined {
  const c = caps.find((x) => x.code === 'graceful-restart');
  if (!c || c.code !== 'graceful-restart') return undefined;
  const families = c.families.flatMap((f) =>
    f.safi === SAFI_UNICAST && (f.afi === AFI_IPV4 || f.afi === AFI_IPV6)
      ? [{ afi: f.afi as Afi, forwardingPreserved: f.forwardingPreserved }]
      : [],
  );
  return { restarting: c.restarting, restartTime: c.restartTime, families };
}

/**
 * The families whose routes we keep, marked stale, when a session ends (RFC 4724 §4.2):
 * we are a helper, the session ended without a NOTIFICATION, and the peer listed the
 * family in its capability with a non-zero restart time.
 */
export function familiesToRetain(
  local: GracefulRestartSettings | undefined,
  peer: PeerGracefulRestart | undefined,
  negotiated: readonly Afi[],
  cause: DownCause,
): Afi[] {
  if (!local || !peer || cause !== 'transport' || peer.restartTime === 0) return [];
  return negotiated.filter((afi) => peer.families.some((f) => f.afi === afi));
}

/**
 * Stale families to flush as soon as the peer is back (RFC 4724 §4.2): it no longer
 * announces graceful restart, or not for the family, or without the Forwarding State
 * bit (its forwarding did not survive), or the family is no longer negotiated.
 */
export function familiesToFlushOnReturn(
  stale: readonly Afi[],
  local: GracefulRestartSettings | undefined,
  peer: PeerGracefulRestart | undefined,
  negotiated: readonly Afi[],
): Afi[] {
  if (!local || !peer) return [...stale];
  return stale.filter(
    (afi) =>
      !negotiated.includes(afi) ||
      !peer.families.some((f) => f.afi === afi && f.forwardingPreserved),
  );
}
