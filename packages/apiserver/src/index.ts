export { ApiServer, type ApiServerOptions } from './server';
export { parsePath } from './router';
export { BUILTIN, Registry, findType, apiVersionOf, type ResourceType } from './resources';
export { ApiError, statusBody } from './status';
export { Storage, type KubeObject } from './storage';
export { toTable, age, wantsTable } from './table';
export { checkObjectSchema, type Schema, type Cause } from './schema';
export { applyPatch, mergePatch, jsonPatch, strategicMerge } from './patch';
export { makeLabCertificates, type LabCertificates } from './certs';
export { apiCall, type CallOptions } from './call';
export {
  parseTokenFile,
  authenticate,
  serviceAccountUser,
  type TokenUser,
  type UserInfo,
} from './auth';
export {
  Authorizer,
  allows,
  ruleAllows,
  requestAttributes,
  forbidden,
  type RbacPolicy,
  type RequestAttributes,
} from './rbac';
export {
  serviceAccountIssuer,
  signToken,
  tokenClaims,
  verifyToken,
  parseTokenRequest,
  keyId,
  type ServiceAccountIssuer,
  type ServiceAccountClaims,
} from './sa-token';
