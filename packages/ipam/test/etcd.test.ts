// IPAM behaviour on a real etcd (Debian's etcd-server) on a loopback port: the same
// suite, with separate client connections racing in the concurrency test.
import { EtcdDatastore, type Datastore } from '@tortie/datastore';
import { Etcd, Testbed, describeIf } from '@tortie/testbed';
import { IPAM_KINDS, ipamSuite } from './ipam-suite';

describeIf(['etcd'], 'ipam on a real etcd', () => {
  let tb: Testbed;
  let etcd: Etcd;
  const open: Datastore[] = [];
  const connect = () => {
    const ds = new EtcdDatastore([etcd.endpoint]);
    open.push(ds);
    return ds;
  };
  beforeAll(async () => {
    tb = new Testbed();
    etcd = await Etcd.start(tb);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close()));
  });
  afterAll(async () => {
    await tb.cleanup();
  });

  ipamSuite(
    async () => {
      const ds = connect();
      for (const kind of IPAM_KINDS) {
        for (const r of (await ds.list({ kind })).items)
          await ds.delete({ kind, name: r.metadata.name, namespace: r.metadata.namespace });
      }
      return ds;
    },
    async () => connect(),
  );
});
