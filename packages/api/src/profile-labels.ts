// Calico's naming of the profiles that carry Kubernetes namespaces and service accounts
// (libcalico-go's conversion: "kns.<ns>" with the namespace's labels as "pcns.*",
// "ksa.<ns>.<sa>" with the account's as "pcsa.*"), and the labels read back from them.
// One place for the agent's policy views and IPAM's namespace selectors.
type Labels = Readonly<Record<string, string>>;

export const namespaceProfileName = (ns: string): string => `kns.${ns}`;
export const serviceAccountProfileName = (ns: string, sa: string): string => `ksa.${ns}.${sa}`;

function unprefixed(labels: Labels | undefined, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {}))
    if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

/**
 * A namespace's labels: Kubernetes' name label (which the API server sets on every
 * namespace) plus the "pcns.*" labelsToApply of its profile, when there is one.
 */
export function namespaceLabels(ns: string, profileLabels?: Labels): Record<string, string> {
  return { 'kubernetes.io/metadata.name': ns, ...unprefixed(profileLabels, 'pcns.') };
}

/** A service account's labels: the "pcsa.*" labelsToApply of its profile. */
export function serviceAccountLabels(profileLabels?: Labels): Record<string, string> {
  return unprefixed(profileLabels, 'pcsa.');
}
