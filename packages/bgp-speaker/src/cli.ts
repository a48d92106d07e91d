#!/usr/bin/env node
// tortie-bgp: run a BGP speaker from a YAML/JSON config, and talk to a running one
// over its control socket (like bird + birdc in one binary).
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { ConfigError, parseSpeakerConfig } from './config';
import { controlRequest } from './control';
import { createLogger } from './log';
import { BgpSpeaker, peerKey } from './speaker';
import { formatTable } from './table';

const DEFAULT_SOCKET = '/run/tortie-bgp.sock';

const USAGE = `usage:
  tortie-bgp run -c CONFIG [-s SOCKET]        run a speaker (YAML or JSON config)
  tortie-bgp check -c CONFIG                  validate a config and exit
  tortie-bgp peers [-s SOCKET] [-o json]      session states, like "birdc show protocols"
  tortie-bgp routes [-s SOCKET] [-o json]     best routes in the Loc-RIB
  tortie-bgp originate PREFIX [--community ASN:V | ASN:V:V]... [--med N] [-s SOCKET]
  tortie-bgp withdraw PREFIX [-s SOCKET]
`;

interface PeerRow {
  address: string;
  port?: number;
  asn: number;
  state: string;
  since?: string;
  counters: { updatesIn: number; updatesOut: number };
  prefixesReceived?: number;
  lastNotification?: { direction: string; meaning: string };
  lastError?: string;
}

interface RouteRow {
  prefix: string;
  nextHop?: string;
  asPath: string;
  from: string;
  localPref?: number;
  med?: number;
  origin: string;
}

function readConfig(file: string | undefined) {
  if (!file) throw new Error('missing -c CONFIG');
  const text = fs.readFileSync(file, 'utf8');
  let doc: unknown;
  try {
    doc = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new Error(
      `${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    );
  }
  return parseSpeakerConfig(doc);
}

async function run(configFile: string | undefined, socket: string | undefined): Promise<void> {
  const config = readConfig(configFile);
  const log = createLogger('bgp', config.logLevel);
  const speaker = new BgpSpeaker(config, { logger: log });
  await speaker.start();
  await speaker.serveControl(socket ?? config.controlSocket ?? DEFAULT_SOCKET);
  const shutdown = (sig: string) => {
    log.info('shutting down', { signal: sig });
    void speaker.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      socket: { type: 'string', short: 's' },
      output: { type: 'string', short: 'o' },
      community: { type: 'string', multiple: true },
      med: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, arg] = positionals;
  const socket = values.socket ?? process.env.TORTIE_BGP_SOCKET ?? DEFAULT_SOCKET;
  const json = values.output === 'json';
  switch (cmd) {
    case 'run':
      await run(values.config, values.socket);
      return -1; // keep running
    case 'check':
      readConfig(values.config);
      console.log('configuration ok');
      return 0;
    case 'peers': {
      const peers = (await controlRequest(socket, { cmd: 'peers' })) as PeerRow[];
      if (json) console.log(JSON.stringify(peers, null, 2));
      else {
        const rows = [['PEER', 'AS', 'STATE', 'SINCE', 'RECEIVED', 'UPDATES IN/OUT', 'INFO']];
        for (const p of peers) {
          rows.push([
            peerKey(p.address, p.port),
            String(p.asn),
            p.state,
            p.since ?? '',
            String(p.prefixesReceived ?? 0),
            `${p.counters.updatesIn}/${p.counters.updatesOut}`,
            p.lastNotification
              ? `${p.lastNotification.direction}: ${p.lastNotification.meaning}`
              : (p.lastError ?? ''),
          ]);
        }
        console.log(formatTable(rows));
      }
      return 0;
    }
    case 'routes': {
      const routes = (await controlRequest(socket, { cmd: 'routes' })) as RouteRow[];
      if (json) console.log(JSON.stringify(routes, null, 2));
      else {
        const rows = [['PREFIX', 'NEXT HOP', 'AS PATH', 'ORIGIN', 'LOCPRF', 'MED', 'FROM']];
        for (const r of routes) {
          rows.push([
            r.prefix,
            r.nextHop ?? '',
            r.asPath,
            r.origin,
            r.localPref === undefined ? '' : String(r.localPref),
            r.med === undefined ? '' : String(r.med),
            r.from,
          ]);
        }
        console.log(formatTable(rows));
      }
      return 0;
    }
    case 'originate':
    case 'withdraw': {
      if (!arg) throw new Error(`${cmd}: missing PREFIX`);
      await controlRequest(socket, {
        cmd,
        prefix: arg,
        // aa:nn is a community (RFC 1997), aa:nn:mm a large one (RFC 8092)
        communities: values.community?.filter((c) => c.split(':').length !== 3),
        largeCommunities: values.community?.filter((c) => c.split(':').length === 3),
        med: values.med === undefined ? undefined : Number(values.med),
      });
      return 0;
    }
    default:
      process.stderr.write(USAGE);
      return values.help ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(err.message + '\n');
    else process.stderr.write(`tortie-bgp: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
