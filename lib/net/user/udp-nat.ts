/**
 * UDP NAT: one host datagram socket per guest (address, port). Datagrams the guest sends anywhere go out of
 * that socket; whatever comes back to it is relayed to the guest port, from the sender's address as the guest
 * sees it (full-cone, like slirp). Idle flows are closed after a timeout; the oldest flow is evicted at the limit.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { ipv4ToNumber } from '../spec.js';

export interface UdpNatOptions {
  /** Send a UDP payload to the guest. */
  output(srcIp: number, dstIp: number, srcPort: number, dstPort: number, payload: Uint8Array): void;
  /** Host destination for a guest destination, or null to drop the datagram. */
  mapDestination(ip: number, port: number): { host: string; port: number } | null;
  /** Address the guest should see for a reply from host address `ip` (numeric IPv4). */
  mapSource(ip: number): number;
  idleTimeoutMs?: number;
  maxFlows?: number;
}

interface Flow {
  socket: Socket;
  timer: NodeJS.Timeout;
}

export class UdpNat {
  readonly stats = { sent: 0, received: 0, dropped: 0, flowsOpened: 0 };
  private readonly flows = new Map<string, Flow>();
  private readonly idleMs: number;
  private readonly maxFlows: number;

  constructor(private readonly options: UdpNatOptions) {
    this.idleMs = options.idleTimeoutMs ?? 60_000;
    this.maxFlows = options.maxFlows ?? 1024;
  }

  get flowCount(): number {
    return this.flows.size;
  }

  send(guestIp: number, guestPort: number, dstIp: number, dstPort: number, payload: Uint8Array): void {
    const target = this.options.mapDestination(dstIp, dstPort);
    if (!target) {
      this.stats.dropped++;
      return;
    }
    const flow = this.flow(guestIp, guestPort);
    flow.socket.send(payload, target.port, target.host, (err) => {
      if (err) this.stats.dropped++;
      else this.stats.sent++;
    });
  }

  close(): void {
    for (const k of [...this.flows.keys()]) this.closeFlow(k);
  }

  private flow(guestIp: number, guestPort: number): Flow {
    const k = `${guestIp}:${guestPort}`;
    const existing = this.flows.get(k);
    if (existing) {
      existing.timer.refresh();
      // Map iteration order is insertion order: re-inserting keeps the least recently used flow first.
      this.flows.delete(k);
      this.flows.set(k, existing);
      return existing;
    }
    if (this.flows.size >= this.maxFlows) this.closeFlow(this.flows.keys().next().value!);
    const socket = createSocket('udp4');
    const timer = setTimeout(() => this.closeFlow(k), this.idleMs);
    const flow: Flow = { socket, timer };
    socket.on('message', (msg, rinfo) => {
      if (!isIPv4(rinfo.address)) return;
      this.stats.received++;
      timer.refresh();
      const from = this.options.mapSource(ipv4ToNumber(rinfo.address));
      this.options.output(from, guestIp, rinfo.port, guestPort, new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
    });
    // Send failures (unreachable destinations) only lose datagrams, as UDP may.
    socket.on('error', () => {
      this.stats.dropped++;
    });
    this.flows.set(k, flow);
    this.stats.flowsOpened++;
    return flow;
  }

  private closeFlow(k: string): void {
    const f = this.flows.get(k);
    if (!f) return;
    this.flows.delete(k);
    clearTimeout(f.timer);
    f.socket.close();
  }
}
