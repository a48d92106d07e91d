#!/usr/bin/env node
// tortie-controllers: the cluster-wide controllers (one replica per cluster, like Calico's
// kube-controllers): LoadBalancer address management. Datastore from the same settings
// as tortie-node (DATASTORE_TYPE, ETCD_ENDPOINTS, KUBECONFIG, TORTIE_DATASTORE_FILE).
import type { Logger } from 'winston';

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
  // winston, the datastore clients and the controllers load only for a run, not for --help
  const winston = require('winston') as typeof import('winston');
  const { datastoreSpec, describeDatastore, openDatastore } =
    require('@tortie/datastore') as typeof import('@tortie/datastore');
  const { Controllers } = require('./controller') as typeof import('./controller');
  const log: Logger = winston.createLogger({
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
