// The lab's Kubernetes control plane in --datastore kubernetes mode: tortie-apiserver
// (over the lab's etcd, HTTPS with a lab CA, a bearer token) and real kubectl against
// it. The lab plays the parts of kubelet and the scheduler through this API: it
// registers the nodes and creates pods with their node, and writes each pod's status
// once the CNI plugin has wired it.
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeLabCertificates } from '@tortie/apiserver';
import { stopProcess, type Testbed } from '@tortie/testbed';

const ROOT = path.resolve(__dirname, '../../..');
const APISERVER = path.join(ROOT, 'packages/apiserver/dist/main.js');
/** Where the nodes reach the API server (a relay on each node's loopback). */
export const NODE_API_PORT = 6443;
/** The service-account token issuer (kubeadm's --service-account-issuer). */
export const SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A kubeconfig for `server` trusting the lab CA, with the lab's token. Pure. */
export function kubeconfigText(server: string, caFile: string, token: string): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'tortie-lab', cluster: { server, 'certificate-authority': caFile } }],
      users: [{ name: 'tortie-lab', user: { token } }],
      contexts: [{ name: 'tortie-lab', context: { cluster: 'tortie-lab', user: 'tortie-lab' } }],
      'current-context': 'tortie-lab',
    },
    null,
    2,
  );
}

export class KubeApi {
  private constructor(
    /** The API server's URL on this host's loopback. */
    readonly url: string,
    /** kubectl's kubeconfig on this host. */
    readonly kubeconfig: string,
    /**
     * The agents' and the CNI plugin's kubeconfig (the relay at 127.0.0.1:6443 in each
     * node) in process mode, with the tortie-node service account's token:
     * writeNodeKubeconfig() writes it once that account exists.
     */
    readonly nodeKubeconfig: string,
    /** The lab CA, which the nodes trust (a pod's ca.crt). */
    readonly caFile: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Starts tortie-apiserver over `etcd` and writes both kubeconfigs into a temp dir. */
  static async start(tb: Testbed, etcd: string[]): Promise<KubeApi> {
    const dir = tb.tempDir('kube');
    const certs = await makeLabCertificates(path.join(dir, 'pki'));
    // RBAC as in a cluster: kubectl is an administrator (system:masters, as kubeadm's
    // admin.conf), the agents and the CNI plugin are the tortie-node service account, bound
    // by deploy/tortie.yaml's ClusterRole (the lab applies that whole file), with tokens
    // the API server issues (TokenRequest) and signs with the service-account key
    const token = crypto.randomBytes(16).toString('hex');
    const tokens = path.join(dir, 'tokens.csv');
    fs.writeFileSync(tokens, `${token},tortie-lab,1,"system:masters"\n`, { mode: 0o600 });
    const saKey = path.join(dir, 'pki', 'sa.key');
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const p = spawn(
      process.execPath,
      [
        APISERVER,
        '--etcd-servers',
        etcd.join(','),
        '--port',
        '0',
        '--tls-cert-file',
        certs.certFile,
        '--tls-private-key-file',
        certs.keyFile,
        '--token-auth-file',
        tokens,
        '--authorization-mode',
        'RBAC',
        '--service-account-signing-key-file',
        saKey,
        '--service-account-issuer',
        SA_ISSUER,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    tb.onCleanup(() => stopProcess(p));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      p.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n')) resolve(line.trim());
      });
      p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      p.once('exit', (code) =>
        reject(new Error(`tortie-apiserver exited ${code}: ${err.trim().slice(-500)}`)),
      );
    });
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, kubeconfigText(url, certs.caFile, token), { mode: 0o600 });
    const nodeKubeconfig = path.join(dir, 'node-kubeconfig');
    // kubectl's discovery cache in the lab's dir, not in the user's home
    const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: path.join(dir, 'cache') };
    return new KubeApi(url, kubeconfig, nodeKubeconfig, certs.caFile, env);
  }

  /** A token for a service account from the TokenRequest API (`kubectl create token`). */
  async createToken(namespace: string, name: string, seconds: number): Promise<string> {
    return (
      await this.must(['create', 'token', name, '-n', namespace, '--duration', `${seconds}s`])
    ).trim();
  }

  /** Writes nodeKubeconfig with a token of the service account (a year: the lab's life). */
  async writeNodeKubeconfig(namespace: string, name: string): Promise<void> {
    const token = await this.createToken(namespace, name, 365 * 24 * 3600);
    fs.writeFileSync(
      this.nodeKubeconfig,
      kubeconfigText(`https://127.0.0.1:${NODE_API_PORT}`, this.caFile, token),
      { mode: 0o600 },
    );
  }

  /**
   * What a kubelet puts in every container's environment for the API server: the
   * address the nodes reach it at (their relay). A kubelet takes it from the kubernetes
   * Service; a cluster without kube-proxy, as this lab, sets it as Calico's
   * kubernetes-services-endpoint ConfigMap does.
   */
  serviceEnv(): Record<string, string> {
    return {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: String(NODE_API_PORT),
      KUBERNETES_SERVICE_PORT_HTTPS: String(NODE_API_PORT),
    };
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** Real kubectl against the lab's API server: its output and exit code. */
  kubectl(args: string[], stdin?: string): Promise<KubectlResult> {
    return new Promise((resolve) => {
      const child = execFile(
        'kubectl',
        args,
        { env: this.env, timeout: 120_000, maxBuffer: 16 << 20 },
        (err, stdout, stderr) =>
          resolve({
            code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
            stdout,
            stderr,
          }),
      );
      child.stdin!.end(stdin ?? '');
    });
  }

  /** kubectl that must succeed: its stdout; otherwise an error with what it said. */
  async must(args: string[], stdin?: string): Promise<string> {
    const r = await this.kubectl(args, stdin);
    if (r.code !== 0)
      throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** `kubectl apply -f -` of these objects (a stream of JSON objects). */
  apply(objects: object[]): Promise<string> {
    return this.must(['apply', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
  }
}
