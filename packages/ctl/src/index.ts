export {
  apply,
  create,
  replace,
  get,
  remove,
  resolveKind,
  UsageError,
  type Io,
  type GetOptions,
} from './commands';
