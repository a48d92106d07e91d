// Which objects a piece of code reads: each object wrapped under a name, every field read
// records the name (services-plan and services-manager: one change reads one Service).
export function readCounter() {
  const reads = new Set<string>();
  const counted = <T extends object>(o: T, name: string): T =>
    new Proxy(o, {
      get: (t, k) => {
        reads.add(name);
        return Reflect.get(t, k);
      },
    });
  return { reads, counted };
}
