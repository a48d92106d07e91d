#!/usr/bin/env node
// tortie-rr: a standalone route reflector (RFC 4456), configured from the datastore as
// Calico's standalone reflector is (its own Node resource plus BGPPeers), or from a
// YAML/JSON file. Read its state with `tortie-bgp peers|routes -s SOCKET`: it is a
// tortie BGP speaker.
import fs from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { rrHealthAddress, serveRrHealth, type RrHealth } from './health';

// The speaker, the datastore clients and the API schemas load when the reflector starts,
// each run mode with what it uses: --help and a usage error answer without them.
const load = {
  yaml: () => require('yaml') as typeof import('yaml'),
  speaker: () => require('@tortie/bgp-speaker') as typeof import('@tortie/bgp-speaker'),
  topology: () => require('@tortie/bgp-topology') as typeof import('@tortie/bgp-topology'),
  datastore: () => require('@tortie/datastore') as typeof import('@tortie/datastore'),
  config: () => require('./config') as typeof import('./config'),
  daemon: () => require('./daemon') as typeof import('./daemon'),
  reflector: () => require('./reflector') as typeof import('./reflector'),
};

const USAGE = `usage: tortie-rr run -c CONFIG [-s SOCKET]
       tortie-rr run [--node NAME] [--datastore-type etcdv3|kubernetes|file]
                     [--etcd-endpoints URLS] [--kubeconfig PATH] [--datastore-file PATH] [-s SOCKET]
  from the datastore, NAME (default NODENAME, else the hostname) is the reflector's Node;
  DATASTORE_TYPE, ETCD_ENDPOINTS, KUBECONFIG, TORTIE_DATASTORE_FILE and CALICO_ROUTER_ID
  work as for tortie-node
  probes: GET /liveness and /readiness on TORTIE_RR_HEALTH_HOST:TORTIE_RR_HEALTH_PORT
  (default 127.0.0.1:9098; port 0: none)
`;

const DEFAULT_SOCKET = '/run/tortie-rr.sock';

interface Running {
  stop: () => Promise<void>;
  health: RrHealth;
}

async function fromFile(file: string, socket: string | undefined): Promise<Running> {
  const text = fs.readFileSync(file, 'utf8');
  const { reflectorSpeakerConfig } = load.config();
  const { BgpSpeaker, createLogger } = load.speaker();
  const YAML = load.yaml();
  const config = reflectorSpeakerConfig(
    file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text),
  );
  const log = createLogger('rr', config.logLevel);
  const speaker = new BgpSpeaker(config, { logger: log });
  await speaker.start();
  await speaker.serveControl(socket ?? config.controlSocket ?? DEFAULT_SOCKET);
  log.info('route reflector up', {
    clusterId: config.clusterId,
    clients: config.peers.filter((p) => p.routeReflectorClient).length,
  });
  // started with its whole configuration: ready
  return { stop: () => speaker.stop(), health: { notReady: () => undefined } };
}

interface DatastoreFlags {
  socket?: string;
  node?: string;
  'datastore-type'?: string;
  'etcd-endpoints'?: string;
  kubeconfig?: string;
  'datastore-file'?: string;
}

function fromDatastore(values: DatastoreFlags): Running {
  const { datastoreSpec, describeDatastore, openDatastore } = load.datastore();
  const { createLogger } = load.speaker();
  const { secretFiles } = load.topology();
  const { Reflector } = load.reflector();
  const { DatastoreReflector } = load.daemon();
  const spec = datastoreSpec(
    {
      type: values['datastore-type'],
      etcdEndpoints: values['etcd-endpoints'],
      kubeconfig: values.kubeconfig,
      file: values['datastore-file'],
    },
    process.env,
  );
  const node = values.node ?? process.env.NODENAME ?? hostname();
  const logger = createLogger('rr');
  const where = describeDatastore(spec);
  const ds = openDatastore(spec);
  const reflector = new Reflector({
    logger,
    controlSocket: values.socket ?? DEFAULT_SOCKET,
    logLevel: logger.level,
    // BGP passwords: Secrets mounted as Kubernetes mounts them, <dir>/<secret>/<key>
    readSecret: secretFiles(process.env.TORTIE_SECRETS_DIR ?? '/etc/tortie/secrets'),
  });
  const daemon = new DatastoreReflector(ds, {
    node,
    logger,
    reflector,
    where,
    routerId: process.env.CALICO_ROUTER_ID || undefined,
  });
  daemon.start();
  logger.info('route reflector reading the datastore', { node, datastore: where });
  return {
    stop: async () => {
      await daemon.stop();
      await ds.close();
    },
    // ready once the speaker runs with a configuration from a full list of the datastore
    health: {
      notReady: () => {
        const s = daemon.status();
        if (s.config) return undefined;
        return s.error ?? `no configuration yet (datastore ${s.syncStatus})`;
      },
    },
  };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      socket: { type: 'string', short: 's' },
      node: { type: 'string' },
      'datastore-type': { type: 'string' },
      'etcd-endpoints': { type: 'string' },
      kubeconfig: { type: 'string' },
      'datastore-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (positionals[0] !== 'run' || values.help) {
    process.stderr.write(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const healthAt = rrHealthAddress(process.env);
  const { stop, health } = values.config
    ? await fromFile(values.config, values.socket)
    : fromDatastore(values);
  const server = healthAt.port ? await serveRrHealth(healthAt, health) : undefined;
  const exit = () => {
    server?.close();
    void stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
}

main().catch((err: unknown) => {
  process.stderr.write(`tortie-rr: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
