// Service-account tokens, as kube-apiserver issues and checks them: the TokenRequest API
// (POST .../serviceaccounts/<name>/token, what `kubectl create token` and a kubelet's
// projected token volume call) returns a JWT signed with the service-account signing key
// (--service-account-signing-key-file), and the service-account authenticator accepts a
// bearer JWT whose issuer, audience, signature and lifetime check out and whose service
// account (and bound object) still exists with the same uid. Its user is
// system:serviceaccount:<namespace>:<name> in system:serviceaccounts and
// system:serviceaccounts:<namespace>, which is what RBAC's ServiceAccount subjects match.
import crypto, { type KeyObject } from 'node:crypto';
import { AUTHENTICATED, serviceAccountUser, type UserInfo } from './auth';

export interface ServiceAccountIssuer {
  /** The signing key (RSA: RS256; EC P-256: ES256). */
  signingKey: KeyObject;
  /** Keys tokens may be verified with (the signing key's public half among them). */
  publicKeys: KeyObject[];
  /** --service-account-issuer: the iss claim written, and accepted. */
  issuer: string;
  /** --api-audiences: a TokenRequest's default audiences, and the audiences accepted. */
  audiences: string[];
}

/** The claims of a token this server issued. */
export interface ServiceAccountClaims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  'kubernetes.io': {
    namespace: string;
    serviceaccount: { name: string; uid: string };
    pod?: { name: string; uid: string };
    node?: { name: string; uid: string };
  };
}

/** A bound object as TokenRequest's spec.boundObjectRef names it. */
export interface BoundObject {
  kind: 'Pod' | 'Node';
  name: string;
  uid: string;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

function algOf(key: KeyObject): 'RS256' | 'ES256' {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1')
    return 'ES256';
  throw new Error(
    `service-account key: ${key.asymmetricKeyType} keys are not supported (RSA or EC P-256)`,
  );
}

/** kube-apiserver's key id: the unpadded base64url SHA-256 of the public key's DER. */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  return b64url(
    crypto
      .createHash('sha256')
      .update(pub.export({ type: 'spki', format: 'der' }))
      .digest(),
  );
}

/** An issuer from PEM texts (the public keys default to the signing key's). */
export function serviceAccountIssuer(o: {
  signingKeyPem: string | Buffer;
  publicKeyPems?: Array<string | Buffer>;
  issuer: string;
  audiences?: string[];
}): ServiceAccountIssuer {
  const signingKey = crypto.createPrivateKey(o.signingKeyPem);
  algOf(signingKey);
  const publicKeys = (o.publicKeyPems ?? []).map((p) => crypto.createPublicKey(p));
  publicKeys.push(crypto.createPublicKey(signingKey));
  if (!o.issuer) throw new Error('--service-account-issuer is required');
  const audiences = o.audiences?.length ? o.audiences : [o.issuer];
  return { signingKey, publicKeys, issuer: o.issuer, audiences };
}

/** A signed token for these claims. Pure but for the signature's randomness (ES256). */
export function signToken(key: KeyObject, claims: ServiceAccountClaims): string {
  const alg = algOf(key);
  const head = b64url(JSON.stringify({ alg, kid: keyId(key) }));
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.sign('sha256', Buffer.from(`${head}.${body}`), {
    key,
    ...(alg === 'ES256' ? { dsaEncoding: 'ieee-p1363' as const } : {}),
  });
  return `${head}.${body}.${b64url(sig)}`;
}

/** The claims of a token issued for a service account (and optionally a bound object). */
export function tokenClaims(
  iss: ServiceAccountIssuer,
  o: {
    namespace: string;
    name: string;
    uid: string;
    audiences: string[];
    expirationSeconds: number;
    bound?: BoundObject;
    nowSeconds: number;
  },
): ServiceAccountClaims {
  const k8s: ServiceAccountClaims['kubernetes.io'] = {
    namespace: o.namespace,
    serviceaccount: { name: o.name, uid: o.uid },
  };
  if (o.bound?.kind === 'Pod') k8s.pod = { name: o.bound.name, uid: o.bound.uid };
  if (o.bound?.kind === 'Node') k8s.node = { name: o.bound.name, uid: o.bound.uid };
  return {
    iss: iss.issuer,
    sub: serviceAccountUser(o.namespace, o.name).name,
    aud: o.audiences,
    exp: o.nowSeconds + o.expirationSeconds,
    iat: o.nowSeconds,
    nbf: o.nowSeconds,
    jti: crypto.randomUUID(),
    'kubernetes.io': k8s,
  };
}

/** Does this bearer token look like a JWT (three base64url parts)? Pure. */
export const looksLikeJwt = (token: string): boolean =>
  /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);

/**
 * The claims of a token this issuer accepts: a known key's valid signature, our issuer,
 * one of our audiences, inside its lifetime (60 s of leeway, as kube), and the
 * kubernetes.io claims of a service account. Undefined for anything else. Pure.
 */
export function verifyToken(
  iss: ServiceAccountIssuer,
  token: string,
  nowSeconds: number,
): ServiceAccountClaims | undefined {
  if (!looksLikeJwt(token)) return undefined;
  const [h, b, s] = token.split('.');
  let head: { alg?: string };
  let claims: ServiceAccountClaims;
  try {
    head = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string };
    claims = JSON.parse(Buffer.from(b, 'base64url').toString()) as ServiceAccountClaims;
  } catch {
    return undefined;
  }
  if (claims?.iss !== iss.issuer) return undefined;
  const signed = iss.publicKeys.some((key) => {
    let alg: string;
    try {
      alg = algOf(key);
    } catch {
      return false;
    }
    if (head.alg !== alg) return false;
    return crypto.verify(
      'sha256',
      Buffer.from(`${h}.${b}`),
      { key, ...(alg === 'ES256' ? { dsaEncoding: 'ieee-p1363' as const } : {}) },
      Buffer.from(s, 'base64url'),
    );
  });
  if (!signed) return undefined;
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.some((a) => iss.audiences.includes(a))) return undefined;
  const LEEWAY = 60;
  if (typeof claims.exp !== 'number' || nowSeconds > claims.exp + LEEWAY) return undefined;
  if (typeof claims.nbf === 'number' && nowSeconds < claims.nbf - LEEWAY) return undefined;
  const k = claims['kubernetes.io'];
  if (!k?.namespace || !k.serviceaccount?.name || !k.serviceaccount.uid) return undefined;
  if (claims.sub !== serviceAccountUser(k.namespace, k.serviceaccount.name).name) return undefined;
  return claims;
}

/** The user of verified claims (uid: the service account's). Pure. */
export function claimsUser(c: ServiceAccountClaims): UserInfo {
  const k = c['kubernetes.io'];
  const u = serviceAccountUser(k.namespace, k.serviceaccount.name);
  return { name: u.name, uid: k.serviceaccount.uid, groups: [...u.groups, AUTHENTICATED] };
}

/** A TokenRequest's spec as the client sent it. */
export interface TokenRequestSpec {
  audiences?: string[];
  expirationSeconds?: number;
  boundObjectRef?: { kind?: string; apiVersion?: string; name?: string; uid?: string };
}

/**
 * A TokenRequest body: JSON, or the Kubernetes protobuf envelope that kubectl's typed
 * client sends ("k8s\0", runtime.Unknown{raw: TokenRequest}). Throws on anything else.
 */
export function parseTokenRequest(body: Buffer, contentType: string): TokenRequestSpec {
  if (contentType === 'application/json') {
    const o = JSON.parse(body.toString() || '{}') as { spec?: TokenRequestSpec };
    return o.spec ?? {};
  }
  if (contentType === 'application/vnd.kubernetes.protobuf') {
    if (body.subarray(0, 4).toString('latin1') !== 'k8s\0')
      throw new Error('not a Kubernetes protobuf envelope (no k8s\\0 prefix)');
    // runtime.Unknown: 1 typeMeta, 2 raw, 3 contentEncoding, 4 contentType
    const raw = fields(body.subarray(4)).find((f) => f.no === 2)?.bytes;
    if (!raw) throw new Error('the protobuf envelope has no object');
    // TokenRequest: 1 metadata, 2 spec, 3 status
    const spec = fields(raw).find((f) => f.no === 2)?.bytes;
    const out: TokenRequestSpec = {};
    // TokenRequestSpec: 1 audiences (repeated), 3 boundObjectRef, 4 expirationSeconds
    for (const f of spec ? fields(spec) : []) {
      if (f.no === 1 && f.bytes) (out.audiences ??= []).push(f.bytes.toString());
      if (f.no === 4 && f.varint !== undefined) out.expirationSeconds = f.varint;
      if (f.no === 3 && f.bytes) {
        // BoundObjectReference: 1 kind, 2 apiVersion, 3 name, 4 uid
        const names = ['', 'kind', 'apiVersion', 'name', 'uid'] as const;
        const ref: Record<string, string> = {};
        for (const g of fields(f.bytes))
          if (g.bytes && names[g.no]) ref[names[g.no]] = g.bytes.toString();
        out.boundObjectRef = ref;
      }
    }
    return out;
  }
  throw new Error(`unsupported content type ${contentType}`);
}

interface Field {
  no: number;
  varint?: number;
  bytes?: Buffer;
}

/** The top-level fields of a protobuf message (varints and length-delimited only). */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length) throw new Error('a truncated protobuf varint');
      const byte = buf[i++];
      v += (byte & 0x7f) * mul;
      if (!(byte & 0x80)) return v;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) out.push({ no, varint: varint() });
    else if (wire === 2) {
      const len = varint();
      if (i + len > buf.length) throw new Error('a truncated protobuf field');
      out.push({ no, bytes: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`protobuf wire type ${wire} is not supported`);
  }
  return out;
}
