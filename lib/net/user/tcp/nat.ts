/**
 * TCP NAT for the user-mode network: a table of guest connections keyed by the 4-tuple the guest sees.
 * Guest SYNs to an outside address open a host socket to the mapped destination; forwarded host connections
 * (hostfwd) become connections the NAT opens into the guest from the gateway address. Segments for unknown
 * connections get a reset, as from a real host with nothing listening.
 */
import { connect, type Socket } from 'node:net';
import { numberToIpv4 } from '../../spec.js';
import { PROTO_TCP } from '../ipv4.js';
import { TcpConnection, type OutSegment, type TcpTuning } from './connection.js';
import { ACK, RST, SYN, parseTcp, segmentLength, seqAdd, tcpLength, writeTcp, type TcpSegment } from './segment.js';

export interface TcpNatOptions {
  /** Send an IPv4 payload of `length` bytes to the guest; `fill` writes it into the (zeroed) frame area. */
  output(src: number, dst: number, protocol: number, length: number, fill: (area: Uint8Array) => void): void;
  /** Host destination for a guest destination, or null to refuse (reset) the connection. */
  mapDestination(ip: number, port: number): { host: string; port: number } | null;
  tuning?: TcpTuning;
  /** Most connections at once (default 4096); more SYNs are reset. */
  maxConnections?: number;
  log?(message: string): void;
}

interface Entry {
  conn: TcpConnection;
  guestIp: number;
  guestPort: number;
  remoteIp: number;
  remotePort: number;
}

export class TcpNat {
  readonly stats = { connectionsOut: 0, connectionsIn: 0, resets: 0, badSegments: 0 };
  private readonly table = new Map<string, Entry>();
  private nextPort = 49152;
  private readonly maxConnections: number;

  constructor(private readonly options: TcpNatOptions) {
    this.maxConnections = options.maxConnections ?? 4096;
  }

  get connectionCount(): number {
    return this.table.size;
  }

  /** A TCP segment from the guest (`src` is the guest, `dst` what it addressed). */
  input(src: number, dst: number, bytes: Uint8Array): void {
    const seg = parseTcp(bytes, src, dst);
    if (!seg) {
      this.stats.badSegments++;
      return;
    }
    const entry = this.table.get(key(src, seg.srcPort, dst, seg.dstPort));
    if (entry) {
      entry.conn.input(seg);
      return;
    }
    if ((seg.flags & (SYN | ACK | RST)) === SYN) {
      this.openFromGuest(src, dst, seg);
      return;
    }
    if (!(seg.flags & RST)) this.reset(src, dst, seg);
  }

  /** Forward a host connection to guestIp:guestPort, appearing to come from `fromIp` (the gateway). */
  openToGuest(socket: Socket, fromIp: number, guestIp: number, guestPort: number): void {
    if (this.table.size >= this.maxConnections) {
      socket.destroy();
      return;
    }
    const remotePort = this.allocatePort(fromIp, guestIp, guestPort);
    this.stats.connectionsIn++;
    this.add(guestIp, guestPort, fromIp, remotePort, (hooks) => TcpConnection.toGuest(socket, hooks, this.options.tuning));
  }

  /** Reset every connection and forget them. */
  closeAll(): void {
    for (const e of [...this.table.values()]) e.conn.abort('network shutting down');
    this.table.clear();
  }

  private openFromGuest(src: number, dst: number, syn: TcpSegment): void {
    const target = this.options.mapDestination(dst, syn.dstPort);
    if (!target || this.table.size >= this.maxConnections) {
      this.reset(src, dst, syn);
      return;
    }
    this.stats.connectionsOut++;
    const socket = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    this.add(src, syn.srcPort, dst, syn.dstPort, (hooks) => TcpConnection.fromGuestSyn(syn, socket, hooks, this.options.tuning));
  }

  private add(guestIp: number, guestPort: number, remoteIp: number, remotePort: number, make: (hooks: Parameters<typeof TcpConnection.toGuest>[1]) => TcpConnection): void {
    const k = key(guestIp, guestPort, remoteIp, remotePort);
    let entry: Entry | undefined;
    const hooks = {
      emit: (s: OutSegment): void => {
        const seg: TcpSegment = { srcPort: remotePort, dstPort: guestPort, seq: s.seq, ack: s.ack, flags: s.flags, window: s.window, mss: s.mss, wscale: s.wscale, payload: s.payload };
        this.options.output(remoteIp, guestIp, PROTO_TCP, tcpLength(seg), (area) => writeTcp(area, remoteIp, guestIp, seg));
      },
      closed: (): void => {
        if (entry && this.table.get(k) === entry) this.table.delete(k);
      },
      log: (m: string): void => this.options.log?.(`${numberToIpv4(guestIp)}:${guestPort} <-> ${numberToIpv4(remoteIp)}:${remotePort} ${m}`),
    };
    entry = { conn: undefined as unknown as TcpConnection, guestIp, guestPort, remoteIp, remotePort };
    this.table.set(k, entry);
    entry.conn = make(hooks);
    if (entry.conn.state === 'closed') this.table.delete(k);
  }

  private allocatePort(fromIp: number, guestIp: number, guestPort: number): number {
    for (let i = 0; i < 16384; i++) {
      const p = this.nextPort;
      this.nextPort = p >= 65535 ? 49152 : p + 1;
      if (!this.table.has(key(guestIp, guestPort, fromIp, p))) return p;
    }
    return this.nextPort;
  }

  /** RFC 9293 reset generation for a segment that belongs to no connection. */
  private reset(src: number, dst: number, seg: TcpSegment): void {
    this.stats.resets++;
    const out: TcpSegment =
      seg.flags & ACK
        ? { srcPort: seg.dstPort, dstPort: seg.srcPort, seq: seg.ack, ack: 0, flags: RST, window: 0, payload: new Uint8Array(0) }
        : { srcPort: seg.dstPort, dstPort: seg.srcPort, seq: 0, ack: seqAdd(seg.seq, segmentLength(seg)), flags: RST | ACK, window: 0, payload: new Uint8Array(0) };
    this.options.output(dst, src, PROTO_TCP, tcpLength(out), (area) => writeTcp(area, dst, src, out));
  }
}

function key(guestIp: number, guestPort: number, remoteIp: number, remotePort: number): string {
  return `${guestIp}:${guestPort}-${remoteIp}:${remotePort}`;
}
