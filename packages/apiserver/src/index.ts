export { ApiServer, parsePath } from './server';
export { BUILTIN, findType, apiVersionOf, type ResourceType } from './resources';
export { ApiError, statusBody } from './status';
export { Storage, type KubeObject } from './storage';
export { toTable, age, wantsTable } from './table';
