// Resource names of IPAM objects, as Calico names them: a block "10-244-1-0-26", an
// affinity "<node>-<block>", a handle its handle id (hashed when it is not a valid name).
import { createHash } from 'node:crypto';

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function blockName(cidr: string): string {
  const n = cidr.replace(/[.:/]/g, '-').replace(/^-+/, '0-');
  return n.replace(/-+$/, '');
}

export function affinityName(node: string, cidr: string): string {
  return `${node}-${blockName(cidr)}`;
}

/** Handle ids come from runtimes ("k8s-pod-network.<container id>"); names must be DNS-like. */
export function handleName(handleId: string): string {
  if (NAME.test(handleId) && handleId.length <= 253) return handleId;
  const clean = handleId
    .toLowerCase()
    .replace(/[^-a-z0-9.]/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
    .slice(0, 200);
  const hash = createHash('sha256').update(handleId).digest('hex').slice(0, 12);
  return clean ? `${clean}-${hash}` : hash;
}
