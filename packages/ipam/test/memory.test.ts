// IPAM behaviour on the memory datastore.
import { MemoryDatastore } from '@tortie/datastore';
import { ipamSuite } from './ipam-suite';

describe('ipam on the memory datastore', () => {
  let ds: MemoryDatastore;
  ipamSuite(
    async () => (ds = new MemoryDatastore()),
    async () => ds,
  );
});
