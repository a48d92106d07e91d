#!/usr/bin/env node
// tortie-controllers: the cluster-wide controllers (one replica per cluster, like Calico's
// kube-controllers): LoadBalancer address management. Datastore from the same settings
// as tortie-node (DATASTORE_TYPE, ETCD_ENDPOINTS, KUBECONFIG, TORTIE_DATASTORE_FILE).
import winston from 'winston';
import { datastoreSpec, describeDatastore, openDatastore } from '@tortie/datastore';
import { Controllers } from './controller';

const USAGE = `usage: tortie-controllers
  Gives Services of type LoadBalancer their address from the IP pools whose allowedUses
  include LoadBalancer, and takes it back when the Service goes.
  Datastore: DATASTORE_TYPE (etcdv3, kubernetes, file), ETCD_ENDPOINTS, KUBECONFIG,
  TORTIE_DATASTORE_FILE; log level: TORTIE_LOG_LEVEL (info).
`;

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const log = winston.createLogger({
    level: process.env.TORTIE_LOG_LEVEL ?? 'info',
    defaultMeta: { component: 'controllers' },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [
      new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) }),
    ],
  });
  const spec = datastoreSpec({}, process.env);
  const ds = openDatastore(spec);
  log.info('tortie-controllers starting', { datastore: describeDatastore(spec) });
  const c = new Controllers(ds, log);
  c.start();
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await c.stop();
  await ds.close();
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`tortie-controllers: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
