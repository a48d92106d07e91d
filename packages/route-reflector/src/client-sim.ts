// Many minimal iBGP route-reflector clients in one process, for scale tests: client i
// connects from its own address, announces its K prefixes in one UPDATE once every
// client is up, and checks each reflected route as it arrives (next hop and
// ORIGINATOR_ID are the originating client's, CLUSTER_LIST is the reflector's, never
// its own prefixes back). Received prefixes are kept in one bit per prefix, so 1,000
// clients x 3,000 routes stay small.
import net from 'node:net';
import {
  encodeMessage,
  encodeUpdates,
  isEndOfRib,
  MessageReader,
  type PathAttributes,
  type UpdateMessage,
} from '@tortie/bgp-speaker';

export interface ClientSimOptions {
  /** The reflector's address and port. */
  rr: string;
  port?: number;
  asn: number;
  /** One client per address; the address is also its router id and next hop. */
  addresses: string[];
  prefixesPerClient: number;
  /** The CLUSTER_LIST reflected routes must carry. */
  clusterList: string[];
  holdTime?: number;
  /** Clients whose routes from these originators are kept as a sample (default: the first). */
  sampleClients?: number[];
}

export interface SampledRoute {
  client: string;
  prefix: string;
  nextHop?: string;
  originatorId?: string;
  clusterList?: string[];
}

export interface ClientSimResult {
  clients: number;
  /** Prefixes each client must learn: every other client's. */
  expectedPerClient: number;
  /** From the first announcement until every client had all of them. */
  seconds: number;
  /** UPDATE messages (End-of-RIB excluded) received per client. */
  updates: { min: number; max: number; mean: number };
  /** Received routes with a wrong next hop, ORIGINATOR_ID or CLUSTER_LIST, or the client's own. */
  wrong: number;
  firstWrong?: string;
  sample: SampledRoute[];
}

const BASE = 0x14000000; // 20.0.0.0: client prefixes are /24s from here up
const ipText = (x: number) => `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
const ipNumber = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);

/** Client i's k-th prefix. */
export function simPrefix(i: number, k: number, perClient: number): string {
  return `${ipText(BASE + (i * perClient + k) * 256)}/24`;
}

/** The index (i * perClient + k) of a sim prefix, or -1: its owner is index / perClient. */
export function simPrefixIndex(p: string): number {
  const slash = p.indexOf('/');
  if (p.slice(slash + 1) !== '24') return -1;
  const x = ipNumber(p.slice(0, slash)) - BASE;
  return x >= 0 && x % 256 === 0 ? x / 256 : -1;
}

interface SimClient {
  index: number;
  address: string;
  socket: net.Socket;
  up: boolean;
  have: Uint8Array;
  count: number;
  updates: number;
  complete: boolean;
}

export class ClientSim {
  private readonly clients: SimClient[] = [];
  private readonly ctx = { as4: true };
  private readonly total: number;
  private readonly sampled: Set<number>;
  private readonly sample: SampledRoute[] = [];
  private wrong = 0;
  private firstWrong?: string;
  private established = 0;
  private completed = 0;
  private t0 = 0;
  private keepalive?: NodeJS.Timeout;
  private onAllUp?: () => void;
  private onConverged?: () => void;
  private fail?: (err: Error) => void;

  constructor(private readonly o: ClientSimOptions) {
    this.total = o.addresses.length * o.prefixesPerClient;
    this.sampled = new Set(o.sampleClients ?? [0]);
  }

  /** Connects every client; resolves when all sessions are established. */
  start(): Promise<void> {
    const up = new Promise<void>((resolve, reject) => {
      this.onAllUp = resolve;
      this.fail = reject;
    });
    this.o.addresses.forEach((address, index) => this.connect(address, index));
    const hold = this.o.holdTime ?? 240;
    this.keepalive = setInterval(
      () => {
        const ka = encodeMessage({ type: 'keepalive' }, this.ctx);
        for (const c of this.clients) if (c.up) c.socket.write(ka);
      },
      (hold * 1000) / 3,
    );
    this.keepalive.unref();
    return up;
  }

  /** Every client announces its prefixes; resolves when every client has all the others'. */
  announce(): Promise<ClientSimResult> {
    const done = new Promise<void>((resolve, reject) => {
      this.onConverged = resolve;
      this.fail = reject;
    });
    const k = this.o.prefixesPerClient;
    const batches = this.clients.map((c) =>
      encodeUpdates(
        {
          attributes: { origin: 0, asPath: [], nextHop: c.address, localPref: 100 },
          nlri: Array.from({ length: k }, (_, j) => simPrefix(c.index, j, k)),
        },
        this.ctx,
      ),
    );
    this.t0 = Date.now();
    batches.forEach((msgs, i) => msgs.forEach((m) => this.clients[i].socket.write(m)));
    return done.then(() => this.result());
  }

  close(): void {
    clearInterval(this.keepalive);
    for (const c of this.clients) c.socket.destroy();
  }

  private result(): ClientSimResult {
    const u = this.clients.map((c) => c.updates);
    return {
      clients: this.clients.length,
      expectedPerClient: this.total - this.o.prefixesPerClient,
      seconds: (Date.now() - this.t0) / 1000,
      updates: {
        min: Math.min(...u),
        max: Math.max(...u),
        mean: u.reduce((a, b) => a + b, 0) / u.length,
      },
      wrong: this.wrong,
      ...(this.firstWrong ? { firstWrong: this.firstWrong } : {}),
      sample: this.sample,
    };
  }

  private connect(address: string, index: number): void {
    const socket = net.connect({
      host: this.o.rr,
      port: this.o.port ?? 179,
      localAddress: address,
    });
    const c: SimClient = {
      index,
      address,
      socket,
      up: false,
      have: new Uint8Array(this.total),
      count: 0,
      updates: 0,
      complete: false,
    };
    this.clients[index] = c;
    const reader = new MessageReader(() => this.ctx);
    socket.on('connect', () => {
      socket.setNoDelay(true);
      socket.write(
        encodeMessage(
          {
            type: 'open',
            version: 4,
            myAs: this.o.asn,
            holdTime: this.o.holdTime ?? 240,
            routerId: address,
            capabilities: [
              { code: 'multiprotocol', afi: 1, safi: 1 },
              { code: 'as4', asn: this.o.asn },
            ],
          },
          this.ctx,
        ),
      );
    });
    socket.on('data', (d: Buffer) => {
      for (const m of reader.push(d)) {
        if (m.type === 'open') socket.write(encodeMessage({ type: 'keepalive' }, this.ctx));
        else if (m.type === 'keepalive' && !c.up) {
          c.up = true;
          if (++this.established === this.clients.length) this.onAllUp?.();
        } else if (m.type === 'update') this.onUpdate(c, m);
        else if (m.type === 'notification') {
          this.fail?.(new Error(`client ${address}: NOTIFICATION ${m.code}/${m.subcode}`));
        }
      }
    });
    socket.on('error', (e) => this.fail?.(new Error(`client ${address}: ${e.message}`)));
  }

  private onUpdate(c: SimClient, m: UpdateMessage): void {
    if (isEndOfRib(m) !== undefined) return;
    c.updates++;
    for (const p of m.withdrawn) {
      const i = simPrefixIndex(p);
      if (i >= 0 && i < this.total && c.have[i]) {
        c.have[i] = 0;
        c.count--;
      }
    }
    for (const p of m.nlri) {
      const i = simPrefixIndex(p);
      const owner = Math.floor(i / this.o.prefixesPerClient);
      const problem = this.check(c, i, owner, m.attributes);
      if (problem) {
        if (this.wrong++ === 0) this.firstWrong = `client ${c.address}, ${p}: ${problem}`;
        continue;
      }
      if (!c.have[i]) {
        c.have[i] = 1;
        c.count++;
      }
      if (this.sampled.has(c.index) && this.sample.length < 50) {
        const a = m.attributes!;
        this.sample.push({
          client: c.address,
          prefix: p,
          nextHop: a.nextHop,
          originatorId: a.originatorId,
          clusterList: a.clusterList,
        });
      }
    }
    if (!c.complete && c.count === this.total - this.o.prefixesPerClient) {
      c.complete = true;
      if (++this.completed === this.clients.length) this.onConverged?.();
    }
  }

  /** What is wrong with a reflected route, or undefined. */
  private check(
    c: SimClient,
    i: number,
    owner: number,
    a: PathAttributes | null,
  ): string | undefined {
    if (i < 0 || i >= this.total) return 'not a prefix of any client';
    if (owner === c.index) return 'its own prefix reflected back';
    const from = this.o.addresses[owner];
    if (!a) return 'no attributes';
    if (a.nextHop !== from) return `next hop ${a.nextHop}, expected ${from}`;
    if (a.originatorId !== from) return `ORIGINATOR_ID ${a.originatorId}, expected ${from}`;
    if ((a.clusterList ?? []).join(',') !== this.o.clusterList.join(','))
      return `CLUSTER_LIST ${a.clusterList?.join(' ')}, expected ${this.o.clusterList.join(' ')}`;
    return undefined;
  }
}
