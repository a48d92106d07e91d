// A lab node run as a Kubernetes node runs tortie: the DaemonSet's containers from the
// tortie/node image under runc, in the node's network namespace, with each hostPath
// volume under a directory that stands for the node's root filesystem. The kernel's own
// paths (modules, the xtables lock) are the real host's, shared by every lab node as the
// kernel is. A kubelet's part is played here: init containers to completion first, then
// the agent; pods are added by executing the installed plugin with the installed conflist;
// Secret volumes are written out as files from the Secrets the lab holds, as a kubelet does.
// (The lab's pods are the host's network namespaces, so /var/run/netns is the host's too.)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { OciBundle, OciContainer, OciMount } from '@tortie/testbed';
import { execPlugin } from './cni-exec';
import type { ContainerRun, NodePodPlan, SecretMount } from './daemonset';

/** Secrets by name (of the DaemonSet's namespace), each its keys and values. */
export type Secrets = Record<string, Record<string, string>>;

/** Where a kubelet mounts the pod's service-account token, CA and namespace. */
export const SERVICE_ACCOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The files of a service-account token volume (kubelet's projected kube-api-access). */
export interface ServiceAccountFiles {
  token: string;
  'ca.crt': string;
  namespace: string;
}

/** hostPaths that are the kernel's, not the node's: the same on every lab node. */
export const KERNEL_PATHS = ['/lib/modules', '/run/xtables.lock', '/var/run/netns'];
const REPO = path.resolve(__dirname, '../../..');

/** Where a hostPath volume is for the node whose root directory is `root`. Pure. */
export function hostPathOn(root: string, hostPath: string): string {
  return KERNEL_PATHS.includes(hostPath) ? hostPath : path.join(root, hostPath);
}

/** An image in an OCI layout, as `npm run image` reports it. */
export interface BuiltImage {
  layout: string;
  /** Its tag, tortie/node:<version>. */
  image: string;
}

/**
 * The tortie/node image: `npm run image`'s output in .image/, built again when a built
 * package or the build script is newer. Several callers at once (the lab and the image
 * tests in one CI run) build it once: the first holds .image.lock, the others wait for
 * it and then find the image up to date.
 */
export function labImage(say: (line: string) => void): BuiltImage {
  const out = path.join(REPO, '.image');
  const lock = `${out}.lock`;
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() > deadline) throw new Error(`${lock} held for 15 minutes: remove it`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { TAG } = require(path.join(REPO, 'deploy/image/build.js')) as { TAG: string };
    const index = path.join(out, 'oci', 'index.json');
    if (fs.existsSync(index) && fs.statSync(index).mtimeMs > newestInput()) {
      say(`image ${TAG} from ${path.join(out, 'oci')} (up to date)`);
      return { layout: path.join(out, 'oci'), image: TAG };
    }
    const build = path.join(REPO, 'deploy/image/build.js');
    const r = spawnSync(process.execPath, [build, '--out', out], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`npm run image failed: ${r.stderr || r.stdout}`);
    const built = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as BuiltImage & {
      compressed: string;
      seconds: number;
    };
    say(`image ${built.image} built in ${built.seconds} s (${built.compressed} compressed)`);
    return { layout: built.layout, image: built.image };
  } finally {
    fs.rmdirSync(lock);
  }
}

/** The newest modification time among what the image is built from. */
function newestInput(): number {
  let newest = fs.statSync(path.join(REPO, 'deploy/image/build.js')).mtimeMs;
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const p of fs.readdirSync(path.join(REPO, 'packages'))) {
    const dist = path.join(REPO, 'packages', p, 'dist');
    if (fs.existsSync(dist)) walk(dist);
  }
  return newest;
}

export class NodeHost {
  constructor(
    /** The directory standing for the node's root filesystem. */
    readonly root: string,
    readonly plan: NodePodPlan,
    private readonly bundle: OciBundle,
    /** The node's network namespace (a path such as /run/netns/tt-node1). */
    private readonly netns: string,
    /** The Secrets the pod's secret volumes name. */
    secrets: Secrets = {},
    /**
     * What the kubelet adds to every container: environment (KUBERNETES_SERVICE_HOST and
     * _PORT), under the container's own. With the service account's token volume written
     * (writeServiceAccount), it is mounted at SERVICE_ACCOUNT_PATH in every container.
     */
    private readonly kubelet: { env?: Record<string, string> } = {},
  ) {
    for (const c of [...plan.initContainers, ...plan.containers])
      for (const m of c.mounts) {
        const p = this.path(m.hostPath);
        if (m.type === 'FileOrCreate') {
          fs.mkdirSync(path.dirname(p), { recursive: true });
          if (!fs.existsSync(p)) fs.writeFileSync(p, '');
        } else if (m.type === 'DirectoryOrCreate') fs.mkdirSync(p, { recursive: true });
        else if (!fs.existsSync(p)) throw new Error(`hostPath ${m.hostPath} (${p}) does not exist`);
      }
    for (const c of [...plan.initContainers, ...plan.containers])
      for (const m of c.secrets) this.writeSecret(c.name, m, secrets[m.secretName]);
  }

  /** Where the kubelet keeps the files of secret volume `volume` on this node. */
  secretDir(volume: string): string {
    return path.join(this.root, 'var/lib/kubelet/secrets', volume);
  }

  /**
   * A secret volume's files: each key (or each of `items`) a file of the volume's mode;
   * a missing Secret is an empty directory when the volume is optional, else an error
   * naming it, as a kubelet would not start the pod.
   */
  private writeSecret(container: string, m: SecretMount, data: Record<string, string> | undefined) {
    if (!data && !m.optional)
      throw new Error(
        `container ${container}: Secret ${m.secretName} (volume ${m.volume}) does not exist and the volume is not optional`,
      );
    const dir = this.secretDir(m.volume);
    fs.mkdirSync(dir, { recursive: true });
    const files = m.items ?? Object.keys(data ?? {}).map((key) => ({ key, path: key }));
    for (const { key, path: p } of files) {
      const value = data?.[key];
      if (value === undefined) {
        if (m.optional) continue;
        throw new Error(`container ${container}: Secret ${m.secretName} has no key ${key}`);
      }
      const file = path.join(dir, p);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, value, { mode: m.mode });
      fs.chmodSync(file, m.mode);
    }
  }

  /** The node's copy of the pod's service-account token volume. */
  serviceAccountDir(): string {
    return path.join(this.root, 'var/lib/kubelet/pods/tortie-node/volumes/kube-api-access');
  }

  /**
   * Writes (or rewrites, when the kubelet refreshes the token) the token volume's files,
   * each replaced by a rename so a reader never sees half a token.
   */
  writeServiceAccount(files: ServiceAccountFiles): void {
    const dir = this.serviceAccountDir();
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      const tmp = path.join(dir, `.${name}.tmp`);
      fs.writeFileSync(tmp, text, { mode: 0o644 });
      fs.renameSync(tmp, path.join(dir, name));
    }
  }

  /** The environment of container c: the kubelet's, then the manifest's, then `extra`. */
  private env(c: ContainerRun, extra: Record<string, string> = {}): Record<string, string> {
    return { ...this.kubelet.env, ...c.env, ...extra };
  }

  /** A path on this node (the host's for the kernel's paths). */
  path(hostPath: string): string {
    return hostPathOn(this.root, hostPath);
  }

  private mounts(c: ContainerRun): OciMount[] {
    return [
      ...c.mounts.map((m) => ({
        source: this.path(m.hostPath),
        destination: m.mountPath,
        readOnly: m.readOnly,
        ...(m.fromHost ? { propagation: 'rslave' as const } : {}),
      })),
      // always read-only, as the kubelet mounts them
      ...c.secrets.map((m) => ({
        source: this.secretDir(m.volume),
        destination: m.mountPath,
        readOnly: true,
      })),
      // automountServiceAccountToken: in every container of the pod
      ...(this.plan.serviceAccount && fs.existsSync(path.join(this.serviceAccountDir(), 'token'))
        ? [{ source: this.serviceAccountDir(), destination: SERVICE_ACCOUNT_PATH, readOnly: true }]
        : []),
    ];
  }

  /** Runs the init containers to completion, in order; one failing is an error with its output. */
  async init(): Promise<void> {
    for (const c of this.plan.initContainers) {
      const r = await this.bundle.run(c.command, {
        env: this.env(c),
        mounts: this.mounts(c),
        netns: this.netns,
        privileged: c.privileged,
        timeoutMs: 120_000,
      });
      if (r.code !== 0)
        throw new Error(`init container ${c.name} exited ${r.code}: ${r.stderr || r.stdout}`);
    }
  }

  /** Starts the named container, with the lab's extra environment and mounts. */
  start(name: string, extra: { env?: Record<string, string>; mounts?: OciMount[] }): OciContainer {
    const c = this.plan.containers.find((x) => x.name === name);
    if (!c) throw new Error(`the pod has no container ${name}`);
    return this.bundle.start(c.command, {
      env: this.env(c, extra.env),
      mounts: [...this.mounts(c), ...(extra.mounts ?? [])],
      netns: this.netns,
      privileged: c.privileged,
    });
  }

  /**
   * A CNI command as a runtime runs it: the installed plugin from the node's CNI bin
   * directory, with the first plugin of the installed conflist (the list's name and
   * cniVersion added, as libcni does), in a mount namespace where the node's
   * /var/run/tortie and /etc/cni/net.d are at their real paths (the conflist's
   * agent_socket names the one, its kubeconfig is in the other).
   */
  cni(env: Record<string, string>, netnsName: string): Promise<Record<string, unknown>> {
    const binDir = this.path('/opt/cni/bin');
    const list = JSON.parse(
      fs.readFileSync(path.join(this.path('/etc/cni/net.d'), '10-tortie.conflist'), 'utf8'),
    ) as { name: string; cniVersion: string; plugins: Array<Record<string, unknown>> };
    const conf = { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion };
    fs.mkdirSync('/run/tortie', { recursive: true });
    fs.mkdirSync('/etc/cni/net.d', { recursive: true });
    const script =
      'mount --bind "$1" /run/tortie && mount --bind "$2" /etc/cni/net.d && exec ip netns exec "$3" "$4"';
    return execPlugin(
      [
        ...['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh'],
        ...[this.path('/var/run/tortie'), this.path('/etc/cni/net.d'), netnsName],
        path.join(binDir, 'tortie-cni'),
      ],
      JSON.stringify(conf),
      { CNI_PATH: binDir, ...env },
    );
  }
}
