// Authentication by bearer token, as kube-apiserver's --token-auth-file: each token is a
// user with a name, a uid and groups. Every authenticated user is also in
// system:authenticated, as kube-apiserver adds it. A service account's token is a user
// named system:serviceaccount:<namespace>:<name> in system:serviceaccounts and
// system:serviceaccounts:<namespace>, which is how RBAC matches ServiceAccount subjects.

export interface UserInfo {
  name: string;
  uid?: string;
  groups: string[];
}

export interface TokenUser extends UserInfo {
  token: string;
}

export const AUTHENTICATED = 'system:authenticated';
/** The group kube-apiserver lets do anything (kubeadm's admin.conf is in it). */
export const MASTERS = 'system:masters';

/** The fields of one CSV line, with "quoted" fields (a quote inside doubled). Pure. */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= line.length) throw new Error('an unterminated quoted field');
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += line[i++];
      }
      out.push(v);
      if (i < line.length && line[i] !== ',') throw new Error('text after a quoted field');
      i++;
    } else {
      const end = line.indexOf(',', i);
      const stop = end < 0 ? line.length : end;
      out.push(line.slice(i, stop).trim());
      i = stop + 1;
    }
  }
  return out;
}

/**
 * kube-apiserver's token file: `token,user,uid[,"group1,group2"]` per line; blank lines
 * and lines starting with # are skipped. Throws naming the line of a bad one. Pure.
 */
export function parseTokenFile(text: string): TokenUser[] {
  const users: TokenUser[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!line.trim() || line.trim().startsWith('#')) return;
    let f: string[];
    try {
      f = csvFields(line);
    } catch (err) {
      throw new Error(`line ${i + 1}: ${(err as Error).message}`);
    }
    if (f.length < 3 || !f[0] || !f[1])
      throw new Error(`line ${i + 1}: want token,user,uid[,"groups"], got ${f.length} fields`);
    if (seen.has(f[0])) throw new Error(`line ${i + 1}: a token given twice`);
    seen.add(f[0]);
    const groups = (f[3] ?? '')
      .split(',')
      .map((g) => g.trim())
      .filter(Boolean);
    users.push({ token: f[0], name: f[1], ...(f[2] ? { uid: f[2] } : {}), groups });
  });
  return users;
}

/** The user of a service account's token, as the service account authenticator makes it. */
export function serviceAccountUser(namespace: string, name: string): UserInfo {
  return {
    name: `system:serviceaccount:${namespace}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`],
  };
}

/** The user an Authorization header names among `users`, or undefined. Pure. */
export function authenticate(
  authorization: string | undefined,
  users: readonly TokenUser[],
): UserInfo | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  if (!m) return undefined;
  const u = users.find((x) => x.token === m[1].trim());
  if (!u) return undefined;
  return {
    name: u.name,
    ...(u.uid ? { uid: u.uid } : {}),
    groups: [...new Set([...u.groups, AUTHENTICATED])],
  };
}
