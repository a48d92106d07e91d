export {
  parseSelector,
  printSelector,
  normalizeSelector,
  canonicalSelector,
  matches,
  selectorKeys,
  SelectorError,
  type Selector,
  type Labels,
  type MatchContext,
} from './selector';
