/**
 * Host port forwarding (hostfwd): host listeners whose connections or datagrams are forwarded into the guest,
 * appearing to come from the gateway address.
 */
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import type { HostForward } from '../spec.js';

export class HostForwardError extends Error {
  readonly code: string;
  constructor(fwd: HostForward, cause: NodeJS.ErrnoException) {
    super(`hostfwd=${fwd.protocol}:${fwd.hostAddress}:${fwd.hostPort}-:${fwd.guestPort}: cannot listen on the host (${cause.code ?? cause.message})`);
    this.name = 'HostForwardError';
    this.code = cause.code ?? 'EHOSTFWD';
  }
}

/** Listen for TCP connections; each accepted socket (paused, half-open allowed) goes to `onConnection`. */
export function listenTcp(fwd: HostForward, onConnection: (socket: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, onConnection);
    server.once('error', (e) => reject(new HostForwardError(fwd, e)));
    server.listen(fwd.hostPort, fwd.hostAddress, () => {
      server.removeAllListeners('error');
      server.on('error', () => {}); // accept errors after listening are per-connection; nothing to do
      resolve(server);
    });
  });
}

interface UdpClient {
  address: string;
  port: number;
  gatewayPort: number;
  timer: NodeJS.Timeout;
}

/**
 * A UDP forward: datagrams from each host client go to the guest port from a gateway port allocated for that
 * client; the guest's replies to that gateway port go back to the client.
 */
export class UdpForward {
  readonly socket: DgramSocket;
  private readonly byClient = new Map<string, UdpClient>();
  private readonly byGatewayPort = new Map<number, UdpClient>();

  private constructor(
    readonly forward: HostForward,
    socket: DgramSocket,
    private readonly toGuest: (gatewayPort: number, payload: Uint8Array) => void,
    private readonly allocatePort: () => number,
    private readonly releasePort: (port: number) => void,
    private readonly idleMs: number,
  ) {
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      const client = this.client(rinfo.address, rinfo.port);
      this.toGuest(client.gatewayPort, new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
    });
  }

  static open(
    fwd: HostForward,
    toGuest: (gatewayPort: number, payload: Uint8Array) => void,
    allocatePort: () => number,
    releasePort: (port: number) => void,
    idleMs: number,
  ): Promise<UdpForward> {
    return new Promise((resolve, reject) => {
      const socket = createSocket('udp4');
      socket.once('error', (e) => reject(new HostForwardError(fwd, e)));
      socket.bind(fwd.hostPort, fwd.hostAddress, () => {
        socket.removeAllListeners('error');
        socket.on('error', () => {});
        resolve(new UdpForward(fwd, socket, toGuest, allocatePort, releasePort, idleMs));
      });
    });
  }

  /** The guest sent a datagram to `gatewayPort`: true when it belonged to this forward (and was relayed). */
  fromGuest(gatewayPort: number, payload: Uint8Array): boolean {
    const c = this.byGatewayPort.get(gatewayPort);
    if (!c) return false;
    c.timer.refresh();
    this.socket.send(payload, c.port, c.address);
    return true;
  }

  get port(): number {
    return this.socket.address().port;
  }

  close(): Promise<void> {
    for (const c of this.byClient.values()) clearTimeout(c.timer);
    this.byClient.clear();
    this.byGatewayPort.clear();
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private client(address: string, port: number): UdpClient {
    const k = `${address}:${port}`;
    const existing = this.byClient.get(k);
    if (existing) {
      existing.timer.refresh();
      return existing;
    }
    const gatewayPort = this.allocatePort();
    const c: UdpClient = {
      address,
      port,
      gatewayPort,
      timer: setTimeout(() => {
        this.byClient.delete(k);
        this.byGatewayPort.delete(gatewayPort);
        this.releasePort(gatewayPort);
      }, this.idleMs),
    };
    this.byClient.set(k, c);
    this.byGatewayPort.set(gatewayPort, c);
    return c;
  }
}

export interface ForwardedPort {
  protocol: 'tcp' | 'udp';
  hostAddress: string;
  /** The port actually listened on (differs from the spec when it asked for 0). */
  hostPort: number;
  guestAddress: string;
  guestPort: number;
}

export interface HostForwardHandlers {
  /** A host TCP connection for guestIp:guestPort. */
  tcpConnection(socket: Socket, guestIp: number, guestPort: number): void;
  /** A host datagram for guestIp:guestPort, to be sent from the gateway's `gatewayPort`. */
  udpDatagram(gatewayPort: number, guestIp: number, guestPort: number, payload: Uint8Array): void;
}

/** The set of hostfwd listeners of one user-mode network, and the gateway ports their UDP clients use. */
export class HostForwards {
  private readonly tcp: Array<{ server: Server; fwd: HostForward; guestIp: number }> = [];
  private readonly udp: Array<{ forward: UdpForward; guestIp: number }> = [];
  private readonly usedUdpPorts = new Set<number>();
  private nextUdpPort = 49152;
  private closed = false;

  constructor(private readonly handlers: HostForwardHandlers, private readonly udpIdleMs: number) {}

  /** Start listening for `fwd` (rejects with a HostForwardError naming it). */
  async start(fwd: HostForward, guestIp: number): Promise<void> {
    if (fwd.protocol === 'tcp') {
      const server = await listenTcp(fwd, (socket) => {
        if (this.closed) socket.destroy();
        else this.handlers.tcpConnection(socket, guestIp, fwd.guestPort);
      });
      this.tcp.push({ server, fwd, guestIp });
      return;
    }
    const forward = await UdpForward.open(
      fwd,
      (gatewayPort, payload) => this.handlers.udpDatagram(gatewayPort, guestIp, fwd.guestPort, payload),
      () => this.allocateUdpPort(),
      (p) => this.usedUdpPorts.delete(p),
      this.udpIdleMs,
    );
    this.udp.push({ forward, guestIp });
  }

  /** A datagram the guest sent to the gateway's `gatewayPort`: true when it was a reply to a UDP forward client. */
  udpFromGuest(gatewayPort: number, payload: Uint8Array): boolean {
    for (const u of this.udp) if (u.forward.fromGuest(gatewayPort, payload)) return true;
    return false;
  }

  ports(format: (ip: number) => string): ForwardedPort[] {
    const tcp = this.tcp.map(({ server, fwd, guestIp }) => {
      const a = server.address();
      const hostPort = typeof a === 'object' && a ? a.port : fwd.hostPort;
      return { protocol: 'tcp' as const, hostAddress: fwd.hostAddress, hostPort, guestAddress: format(guestIp), guestPort: fwd.guestPort };
    });
    const udp = this.udp.map(({ forward, guestIp }) => ({
      protocol: 'udp' as const,
      hostAddress: forward.forward.hostAddress,
      hostPort: forward.port,
      guestAddress: format(guestIp),
      guestPort: forward.forward.guestPort,
    }));
    return [...tcp, ...udp];
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.udp.map((u) => u.forward.close()));
    await Promise.all(this.tcp.map(({ server }) => new Promise<void>((r) => server.close(() => r()))));
  }

  private allocateUdpPort(): number {
    for (let i = 0; i < 16384; i++) {
      const p = this.nextUdpPort;
      this.nextUdpPort = p >= 65535 ? 49152 : p + 1;
      if (!this.usedUdpPorts.has(p)) {
        this.usedUdpPorts.add(p);
        return p;
      }
    }
    return this.nextUdpPort;
  }
}
