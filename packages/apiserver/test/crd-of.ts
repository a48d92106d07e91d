// A CustomResourceDefinition as the tests apply or read it: one version, v1, served and
// stored, named <plural>.<group> as kube-apiserver requires.
import type { KubeObject } from '../src';

export interface CrdOptions {
  scope?: 'Cluster' | 'Namespaced';
  /** More of spec.names (singular, listKind, shortNames). */
  names?: Record<string, unknown>;
  /** More of the version (additionalPrinterColumns, subresources, served: false). */
  version?: Record<string, unknown>;
}

export function crdOf(
  group: string,
  kind: string,
  plural: string,
  openAPIV3Schema?: Record<string, unknown>,
  opts: CrdOptions = {},
): KubeObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      names: { kind, plural, ...opts.names },
      scope: opts.scope ?? 'Cluster',
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          ...(openAPIV3Schema ? { schema: { openAPIV3Schema } } : {}),
          ...opts.version,
        },
      ],
    },
  };
}
