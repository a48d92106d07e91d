export * from './resources';
export { parseResource, parseManifests, parseManifestDocuments, ValidationError } from './validate';
export { crdFor, allCrds, toStructural } from './crd';
export { cidr, ip, asNumber, selector, port, goDurationSeconds } from './fields';
export {
  namespaceProfileName,
  serviceAccountProfileName,
  namespaceLabels,
  serviceAccountLabels,
} from './profile-labels';
export { namedPorts } from './endpoint-ports';
