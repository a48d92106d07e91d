#!/usr/bin/env node
// tortie-rr: a standalone route reflector (RFC 4456) from a YAML/JSON config. Read its
// state with `tortie-bgp peers|routes -s SOCKET`: it is a tortie BGP speaker.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { BgpSpeaker, createLogger } from '@tortie/bgp-speaker';
import { reflectorSpeakerConfig } from './config';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, socket: { type: 'string', short: 's' } },
  });
  if (positionals[0] !== 'run' || !values.config) {
    process.stderr.write('usage: tortie-rr run -c CONFIG [-s SOCKET]\n');
    process.exitCode = 2;
    return;
  }
  const text = fs.readFileSync(values.config, 'utf8');
  const config = reflectorSpeakerConfig(
    values.config.endsWith('.json') ? JSON.parse(text) : YAML.parse(text),
  );
  const log = createLogger('rr', config.logLevel);
  const speaker = new BgpSpeaker(config, { logger: log });
  await speaker.start();
  await speaker.serveControl(values.socket ?? config.controlSocket ?? '/run/tortie-rr.sock');
  log.info('route reflector up', {
    clusterId: config.clusterId,
    clients: config.peers.filter((p) => p.routeReflectorClient).length,
  });
  const stop = () => void speaker.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`tortie-rr: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
