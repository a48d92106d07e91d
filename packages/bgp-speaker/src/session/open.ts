// Building our OPEN and checking the peer's (RFC 4271 §6.2, RFC 5492, RFC 6793):
// pure functions from configuration and message to the negotiated session parameters.
import { AS_TRANS, ErrorCode, OpenSubcode } from '../constants';
import { BgpError } from '../codec/errors';
import type { Afi, Capability, OpenMessage } from '../types';
import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST } from '../types';
import {
  gracefulRestartCapability,
  peerGracefulRestart,
  type GracefulRestartSettings,
  type PeerGracefulRestart,
} from './graceful-restart';

export interface LocalOpenParams {
  asn: number;
  routerId: string;
  holdTime: number;
  families: Afi[];
  /** Graceful restart on (RFC 4724); without it we announce End-of-RIB support only. */
  gracefulRestart?: GracefulRestartSettings;
  /** The Restart State bit of this OPEN (our first session since we started). */
  restarting?: boolean;
}

export interface ExpectedPeer {
  /** The AS we configured for this peer. */
  asn: number;
  localRouterId: string;
  localAsn: number;
}

export interface Negotiated {
  peerAsn: number;
  peerRouterId: string;
  holdTime: number;
  /** Both sides sent the 4-octet AS capability. */
  as4: boolean;
  /** Unicast families both sides announced (IPv4 only when the peer announced none). */
  families: Afi[];
  routeRefresh: boolean;
  enhancedRouteRefresh: boolean;
  gracefulRestart: boolean;
  /** The peer's graceful-restart capability, unicast families only. */
  peerGracefulRestart?: PeerGracefulRestart;
  peerCapabilities: Capability[];
}

export function buildOpen(local: LocalOpenParams): OpenMessage {
  const capabilities: Capability[] = local.families.map((afi) => ({
    code: 'multiprotocol' as const,
    afi,
    safi: SAFI_UNICAST,
  }));
  capabilities.push(
    { code: 'route-refresh' },
    // Enhanced route refresh (RFC 7313) is not announced: we do not send BoRR/EoRR.
    { code: 'as4', asn: local.asn },
    gracefulRestartCapability(local.gracefulRestart, local.families, local.restarting ?? false),
  );
  return {
    type: 'open',
    version: 4,
    myAs: local.asn > 0xffff ? AS_TRANS : local.asn,
    holdTime: local.holdTime,
    routerId: local.routerId,
    capabilities,
  };
}

function ipv4ToNumber(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** Which connection survives a collision (§6.8): true when ours (outgoing) should close. */
export function outgoingLosesCollision(localRouterId: string, peerRouterId: string): boolean {
  return ipv4ToNumber(localRouterId) < ipv4ToNumber(peerRouterId);
}

/** Checks the peer's OPEN against our configuration; throws the NOTIFICATION to send. */
export function negotiate(
  open: OpenMessage,
  ourHoldTime: number,
  ours: Afi[],
  expected: ExpectedPeer,
): Negotiated {
  if (open.version !== 4) {
    throw new BgpError(
      ErrorCode.OPEN_MESSAGE,
      OpenSubcode.UNSUPPORTED_VERSION,
      Buffer.from([0, 4]),
      `peer speaks BGP version ${open.version}, we support 4`,
    );
  }
  const as4cap = open.capabilities.find((c) => c.code === 'as4');
  const peerAsn = as4cap && as4cap.code === 'as4' ? as4cap.asn : open.myAs;
  if (open.myAs === 0 || peerAsn === 0) {
    // RFC 7607 §2: AS 0 as the peer AS, in My Autonomous System or the capability
    throw new BgpError(
      ErrorCode.OPEN_MESSAGE,
      OpenSubcode.BAD_PEER_AS,
      Buffer.alloc(0),
      'peer announced AS 0',
    );
  }
  if (peerAsn !== expected.asn) {
    throw new BgpError(
      ErrorCode.OPEN_MESSAGE,
      OpenSubcode.BAD_PEER_AS,
      Buffer.alloc(0),
      `peer announced AS ${peerAsn}, configured AS ${expected.asn}`,
    );
  }
  const ibgp = peerAsn === expected.localAsn;
  if (open.routerId === '0.0.0.0' || (ibgp && open.routerId === expected.localRouterId)) {
    throw new BgpError(
      ErrorCode.OPEN_MESSAGE,
      OpenSubcode.BAD_BGP_IDENTIFIER,
      Buffer.alloc(0),
      `peer BGP identifier ${open.routerId} is not acceptable`,
    );
  }
  if (open.holdTime === 1 || open.holdTime === 2) {
    throw new BgpError(
      ErrorCode.OPEN_MESSAGE,
      OpenSubcode.UNACCEPTABLE_HOLD_TIME,
      Buffer.alloc(0),
      `peer hold time ${open.holdTime}s is not acceptable (must be 0 or >= 3)`,
    );
  }
  const mp = open.capabilities.filter((c) => c.code === 'multiprotocol');
  const theirs: Afi[] =
    mp.length === 0
      ? [AFI_IPV4]
      : mp.flatMap((c) =>
          c.code === 'multiprotocol' &&
          c.safi === SAFI_UNICAST &&
          (c.afi === AFI_IPV4 || c.afi === AFI_IPV6)
            ? [c.afi as Afi]
            : [],
        );
  return {
    peerAsn,
    peerRouterId: open.routerId,
    holdTime: Math.min(ourHoldTime, open.holdTime),
    as4: as4cap !== undefined,
    families: ours.filter((f) => theirs.includes(f)),
    routeRefresh: open.capabilities.some((c) => c.code === 'route-refresh'),
    enhancedRouteRefresh: open.capabilities.some((c) => c.code === 'enhanced-route-refresh'),
    gracefulRestart: open.capabilities.some((c) => c.code === 'graceful-restart'),
    peerGracefulRestart: peerGracefulRestart(open.capabilities),
    peerCapabilities: open.capabilities,
  };
}
