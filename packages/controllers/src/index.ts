export { Controllers } from './controller';
export {
  CONDITION,
  LB_ANNOTATION,
  LB_NODE,
  LoadBalancerIpam,
  handleOf,
  managed,
  requested,
} from './lb-ipam';
