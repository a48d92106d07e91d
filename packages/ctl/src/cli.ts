#!/usr/bin/env node
// tortiectl: kubectl-style management of tortie resources in etcd or a datastore file.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { Datastore } from '@tortie/datastore';
import type { Io } from './commands';
import { DEFAULT_BGP_SOCKET, DEFAULT_STATUS_SOCKET, UsageError } from './usage';

// Each command loads what it uses when it runs (the datastore with the API schemas, the
// BGP speaker's client, the policy evaluator, IPAM): loading them all took ~1 s per
// call before anything was parsed, --help included.
const load = {
  datastore: () => require('@tortie/datastore') as typeof import('@tortie/datastore'),
  commands: () => require('./commands') as typeof import('./commands'),
  ipam: () => require('./ipam') as typeof import('./ipam'),
  nodeStatus: () => require('./node-status') as typeof import('./node-status'),
  policyExplain: () => require('./policy-explain') as typeof import('./policy-explain'),
  policyStatus: () => require('./policy-status') as typeof import('./policy-status'),
};

const USAGE = `usage: tortiectl COMMAND [options]
  apply   -f FILE|-          create or update the resources in FILE (YAML or JSON, multi-document)
  create  -f FILE|-          create them (AlreadyExists is an error)
  replace -f FILE|-          replace them (NotFound is an error)
  get KIND [NAME] [-n NS | -A] [-o yaml|json|wide|name]
  delete KIND NAME... [-n NS] | delete -f FILE|-
  policy explain SRC DST [PORT] [--protocol TCP|UDP|SCTP|ICMP]
                             is SRC -> DST allowed, and which tier/policy/rule decides
                             (SRC/DST: an IP or namespace/pod); exit 0 allowed, 3 denied,
                             4 depends on the port (no PORT given)
  policy status [--status-socket PATH] [-o json]
                             policies this node's agent could not program (they fail
                             closed), and why (the agent's TORTIE_STATUS_SOCKET, default
                             ${DEFAULT_STATUS_SOCKET}); exit 3 when there are some
  ipam show [--show-blocks]  pools (and blocks) with addresses in use and free
  ipam check                 leaked addresses, missing handles, endpoints without an address
  ipam release --ip IP...    release addresses
  ipam gc [--grace-period 60s]
                             release what check finds leaked (older than the grace period)
  node status [--bgp-socket PATH]
                             this node's BGP sessions (the agent's TORTIE_BGP_SOCKET,
                             default ${DEFAULT_BGP_SOCKET})
datastore: --etcd-endpoints URLS (or ETCD_ENDPOINTS), --datastore-file PATH, --kubeconfig PATH (or KUBECONFIG)
`;

// a reader that stops early (`| head`) is not an error
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });

const io: Io = {
  out: (t) => process.stdout.write(t + '\n'),
  err: (t) => process.stderr.write(t + '\n'),
};

function openFromFlags(v: {
  'etcd-endpoints'?: string;
  'datastore-file'?: string;
  kubeconfig?: string;
}): Datastore {
  const { datastoreSpec, openDatastore } = load.datastore();
  try {
    return openDatastore(
      datastoreSpec(
        { etcdEndpoints: v['etcd-endpoints'], file: v['datastore-file'], kubeconfig: v.kubeconfig },
        process.env,
      ),
    );
  } catch (e) {
    throw new UsageError((e as Error).message); // a missing or bad datastore is a usage error
  }
}

function readInput(file: string | undefined): { text: string; source: string } {
  if (!file) throw new UsageError('must specify -f FILE (or -f - for standard input)');
  if (file === '-') return { text: fs.readFileSync(0, 'utf8'), source: 'stdin' };
  if (!fs.existsSync(file)) throw new UsageError(`the path "${file}" does not exist`);
  return { text: fs.readFileSync(file, 'utf8'), source: file };
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      filename: { type: 'string', short: 'f' },
      output: { type: 'string', short: 'o' },
      namespace: { type: 'string', short: 'n' },
      'all-namespaces': { type: 'boolean', short: 'A' },
      'etcd-endpoints': { type: 'string' },
      'datastore-file': { type: 'string' },
      kubeconfig: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      protocol: { type: 'string' },
      'show-blocks': { type: 'boolean' },
      ip: { type: 'string', multiple: true },
      'grace-period': { type: 'string' },
      'bgp-socket': { type: 'string' },
      'status-socket': { type: 'string' },
    },
  });
  const [cmd, ...args] = positionals;
  if (!cmd || values.help) {
    process.stderr.write(USAGE);
    return values.help ? 0 : 2;
  }
  const output = values.output;
  if (output !== undefined && !['yaml', 'json', 'wide', 'name'].includes(output)) {
    throw new UsageError(
      `unable to match a printer suitable for the output format "${output}", allowed formats are: json,name,wide,yaml`,
    );
  }
  if (cmd === 'node') {
    // the agent on this host, not the datastore
    if (args[0] !== 'status')
      throw new UsageError('usage: tortiectl node status [--bgp-socket PATH]');
    return load
      .nodeStatus()
      .nodeStatus(values['bgp-socket'] ?? process.env.TORTIE_BGP_SOCKET ?? DEFAULT_BGP_SOCKET, io);
  }
  if (cmd === 'policy' && args[0] === 'status') {
    if (output !== undefined && output !== 'json')
      throw new UsageError('policy status prints a table, or JSON with -o json');
    return load
      .policyStatus()
      .policyStatus(
        values['status-socket'] ?? process.env.TORTIE_STATUS_SOCKET ?? DEFAULT_STATUS_SOCKET,
        io,
        output === 'json',
      );
  }
  // an unknown command is named before any datastore is looked for
  if (!['apply', 'create', 'replace', 'get', 'delete', 'policy', 'ipam'].includes(cmd))
    throw new UsageError(`unknown command "${cmd}"\n${USAGE}`);
  const ds = openFromFlags(values);
  const { apply, create, deleteTargets, get, remove, replace, resolveKind } = load.commands();
  try {
    switch (cmd) {
      case 'apply':
      case 'create':
      case 'replace': {
        const { text, source } = readInput(values.filename);
        return await { apply, create, replace }[cmd](ds, text, source, io);
      }
      case 'get': {
        if (!args[0]) throw new UsageError('you must specify the type of resource to get');
        return await get(
          ds,
          {
            kind: resolveKind(args[0]),
            name: args[1],
            namespace: values.namespace,
            allNamespaces: values['all-namespaces'],
            output: output as 'yaml' | 'json' | 'wide' | 'name' | undefined,
          },
          io,
        );
      }
      case 'delete': {
        if (values.filename) {
          const { text, source } = readInput(values.filename);
          const targets = deleteTargets(text, source, io);
          return targets ? await remove(ds, targets, io) : 1;
        }
        if (args.length < 2) throw new UsageError('delete needs KIND NAME... or -f FILE');
        const kind = resolveKind(args[0]);
        return await remove(
          ds,
          args.slice(1).map((name) => ({ kind, name, namespace: values.namespace })),
          io,
        );
      }
      case 'policy': {
        if (args[0] !== 'explain' || args.length < 3)
          throw new UsageError(
            'usage: tortiectl policy explain SRC DST [PORT] | tortiectl policy status',
          );
        return await load
          .policyExplain()
          .policyExplain(
            ds,
            { src: args[1], dst: args[2], port: args[3], protocol: values.protocol },
            io,
          );
      }
      case 'ipam':
        return await load.ipam().ipamCommand(
          ds,
          args[0],
          {
            showBlocks: values['show-blocks'],
            ip: values.ip,
            gracePeriod: values['grace-period'],
          },
          io,
        );
      default:
        throw new UsageError(`unknown command "${cmd}"\n${USAGE}`);
    }
  } finally {
    await ds.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
