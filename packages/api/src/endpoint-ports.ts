// An endpoint's named ports: the ports a rule can name. A workload endpoint's unnamed
// port (a bare host port mapping) is no named port; a host endpoint's always has a name.
export function namedPorts<P extends { name?: string }>(
  ports: readonly P[] | undefined,
): Array<P & { name: string }> {
  return (ports ?? []).filter((p): p is P & { name: string } => !!p.name);
}
