/**
 * The rootless user-mode network (QEMU slirp's model, written from the protocols): the guest sits alone on
 * 10.0.2.0/24 behind a gateway (10.0.2.2) that answers ARP and ping, serves DHCP, forwards DNS (10.0.2.3) to the
 * host's resolvers, NATs the guest's UDP and TCP onto ordinary host sockets, and relays echo requests to outside
 * addresses through a host ICMP socket (icmp-forwarder.ts). 10.0.2.2 as a destination is the host's loopback. hostfwd listeners forward host connections into the guest.
 */
import type { NetBackend } from '../backend.js';
import { DEFAULT_USER_NETWORK, DEFAULT_USER_PREFIX, ipv4ToNumber, numberToIpv4, type HostForward } from '../spec.js';
import { inSubnet, userNetAddresses, type UserNetAddresses } from './addresses.js';
import { ARP_REPLY, ARP_REQUEST, buildArp, parseArp } from './arp.js';
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpServer } from './dhcp-server.js';
import { DnsForwarder } from './dns-forwarder.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, buildEthernet, isBroadcastOrMulticast, macEquals, parseEthernet } from './ethernet.js';
import { HostForwards, type ForwardedPort } from './hostfwd.js';
import { GuestLink } from './link.js';
import { IcmpEchoForwarder, type IcmpEchoSocket } from './icmp-forwarder.js';
import { UNREACH_HOST, UNREACH_NET, destinationUnreachable, echoReply, isEchoRequest, timeExceeded } from './icmp.js';
import type { IcmpSocketKind } from '../../kvm/native.js';
import { Ipv4Reassembler } from './reassembly.js';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP, buildIpv4, parseIpv4 } from './ipv4.js';
import type { TcpTuning } from './tcp/connection.js';
import { TcpNat } from './tcp/nat.js';
import { buildUdp, parseUdp } from './udp.js';
import { UdpNat } from './udp-nat.js';

export interface UserNetworkOptions {
  /** Network address, default 10.0.2.0, and prefix length, default 24. */
  network?: string;
  prefixLength?: number;
  hostForwards?: HostForward[];
  /** Upstream DNS servers ("ADDR" or "ADDR:PORT"); default: the host's /etc/resolv.conf. */
  dnsServers?: string[];
  dnsTimeoutMs?: number;
  /** Let the gateway address stand for the host's loopback (default true, as in QEMU). */
  hostLoopback?: boolean;
  /** Only the gateway (host loopback), DHCP and DNS are reachable; nothing else leaves the host (default false). */
  restrict?: boolean;
  udpIdleTimeoutMs?: number;
  /** IP MTU of the guest link (default 1500): larger packets to the guest are fragmented, TCP uses MTU - 40. */
  mtu?: number;
  tcp?: TcpTuning;
  /** Host ICMP socket for pings to outside addresses: 'auto' (default: ping socket, else raw), 'dgram', 'raw'. */
  icmpSocket?: IcmpSocketKind | 'auto';
  /** Opens that socket (default: the addon's IcmpSocket). For tests and embedders. */
  openIcmpSocket?: (kind: IcmpSocketKind | 'auto') => IcmpEchoSocket;
  /** How long a forwarded echo request waits for its reply (default 10 s). */
  icmpEchoTimeoutMs?: number;
  log?: (message: string) => void;
}

export interface UserNetworkStats {
  framesFromGuest: number;
  framesToGuest: number;
  /** Frames not for us, unknown EtherTypes, malformed headers. */
  dropped: number;
  badIpv4: number;
  /** IPv4 fragments received (reassembled: see reassembler.stats). */
  fragments: number;
  icmpEchoReplies: number;
  /** ICMP we neither answer nor forward (not an echo request, restrict=on, no ICMP socket, local-only targets). */
  icmpDropped: number;
  /** Echo requests to outside addresses sent through the host ICMP socket (details: icmp.stats). */
  icmpForwarded: number;
  /** Echo replies from outside addresses handed to the guest. */
  icmpRepliesForwarded: number;
  /** Echo requests answered with destination unreachable because the host has no route. */
  icmpUnreachable: number;
  /** Packets for outside addresses that arrived with TTL <= 1 (answered with ICMP time exceeded). */
  ttlExceeded: number;
}

export type { ForwardedPort };

export class UserNetwork implements NetBackend {
  readonly addresses: UserNetAddresses;
  readonly stats: UserNetworkStats = { framesFromGuest: 0, framesToGuest: 0, dropped: 0, badIpv4: 0, fragments: 0, icmpEchoReplies: 0, icmpDropped: 0, icmpForwarded: 0, icmpRepliesForwarded: 0, icmpUnreachable: 0, ttlExceeded: 0 };
  readonly dhcp: DhcpServer;
  readonly dns: DnsForwarder;
  readonly tcp: TcpNat;
  readonly udp: UdpNat;
  readonly reassembler = new Ipv4Reassembler();
  readonly link: GuestLink;
  /** Echo to outside addresses; its socket opens on the first such ping. */
  readonly icmp: IcmpEchoForwarder;
  private readonly forwards: HostForwards;
  private receiver: ((frame: Uint8Array) => void) | undefined;
  private inbox: Uint8Array[] = [];
  private processing = false;
  private drainScheduled = false;
  private closed = false;
  private readonly hostLoopback: boolean;
  private readonly restrict: boolean;
  private readonly log: (message: string) => void;

  private constructor(options: UserNetworkOptions) {
    this.addresses = userNetAddresses(options.network ?? DEFAULT_USER_NETWORK, options.prefixLength ?? DEFAULT_USER_PREFIX);
    this.hostLoopback = options.hostLoopback ?? true;
    const mtu = options.mtu ?? 1500;
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new RangeError(`mtu ${options.mtu} is not in 576..65535`);
    this.link = new GuestLink(this.addresses, mtu, (frame) => this.deliver(frame));
    this.restrict = options.restrict ?? false;
    this.log = options.log ?? (() => {});
    this.dhcp = new DhcpServer(this.addresses);
    this.dns = new DnsForwarder({
      ...(options.dnsServers ? { servers: options.dnsServers } : {}),
      ...(options.dnsTimeoutMs !== undefined ? { timeoutMs: options.dnsTimeoutMs } : {}),
    });
    this.tcp = new TcpNat({
      output: (src, dst, proto, length, fill) => this.ifOpen(() => this.link.sendIpWith(src, dst, proto, length, fill)),
      mapDestination: (ip, port) => this.mapDestination(ip, port),
      tuning: { mss: mtu - 40, ...options.tcp },
      log: (m) => this.log(`user-net: ${m}`),
    });
    this.udp = new UdpNat({
      output: (src, dst, sp, dp, payload) => this.ifOpen(() => this.link.sendUdp(src, dst, sp, dp, payload)),
      mapDestination: (ip, port) => this.mapDestination(ip, port),
      mapSource: (ip) => (ip >>> 24 === 127 ? this.addresses.gateway : ip),
      ...(options.udpIdleTimeoutMs !== undefined ? { idleTimeoutMs: options.udpIdleTimeoutMs } : {}),
    });
    this.icmp = new IcmpEchoForwarder({
      output: (src, dst, message) =>
        this.ifOpen(() => {
          this.stats.icmpRepliesForwarded++;
          this.link.sendIp(src, dst, PROTO_ICMP, message);
        }),
      ...(options.icmpSocket ? { kind: options.icmpSocket } : {}),
      ...(options.openIcmpSocket ? { open: options.openIcmpSocket } : {}),
      ...(options.icmpEchoTimeoutMs !== undefined ? { timeoutMs: options.icmpEchoTimeoutMs } : {}),
      log: this.log,
    });
    this.forwards = new HostForwards(
      {
        tcpConnection: (socket, guestIp, guestPort) => {
          if (this.closed) socket.destroy();
          else this.tcp.openToGuest(socket, this.addresses.gateway, guestIp, guestPort);
        },
        udpDatagram: (gatewayPort, guestIp, guestPort, payload) =>
          this.ifOpen(() => this.link.sendUdp(this.addresses.gateway, guestIp, gatewayPort, guestPort, payload)),
      },
      options.udpIdleTimeoutMs ?? 60_000,
    );
  }

  /** Create the network and start its hostfwd listeners (rejects naming the forward that cannot listen). */
  static async create(options: UserNetworkOptions = {}): Promise<UserNetwork> {
    const net = new UserNetwork(options);
    try {
      for (const fwd of options.hostForwards ?? []) {
        await net.forwards.start(fwd, fwd.guestAddress ? ipv4ToNumber(fwd.guestAddress) : net.addresses.firstGuest);
      }
    } catch (e) {
      await net.close();
      throw e;
    }
    return net;
  }

  /** The hostfwd listeners with their actual host ports. */
  forwardedPorts(): ForwardedPort[] {
    return this.forwards.ports(numberToIpv4);
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.receiver = cb;
  }

  /**
   * A frame from the guest. A frame that arrives while we are handling one, or while we are handing a frame to
   * the receiver (which may answer synchronously), is queued and handled right after, never nested.
   */
  send(frame: Uint8Array): void {
    if (this.closed) return;
    this.inbox.push(frame);
    if (this.processing) this.scheduleDrain();
    else this.drain();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.tcp.closeAll();
    this.udp.close();
    this.reassembler.close();
    this.icmp.close();
    await this.dns.close();
    await this.forwards.close();
  }

  private drain(): void {
    this.processing = true;
    try {
      while (this.inbox.length > 0 && !this.closed) {
        const f = this.inbox.shift()!;
        try {
          this.handleFrame(f);
        } catch (e) {
          // A bug here must not take the VMM down with it: count, log, keep going.
          this.stats.dropped++;
          this.log(`user-net: frame handling failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        }
      }
    } finally {
      this.processing = false;
    }
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    queueMicrotask(() => {
      this.drainScheduled = false;
      if (this.processing) this.scheduleDrain();
      else this.drain();
    });
  }

  private handleFrame(frame: Uint8Array): void {
    this.stats.framesFromGuest++;
    const eth = parseEthernet(frame);
    if (!eth || isBroadcastOrMulticast(eth.src) || !(isBroadcastOrMulticast(eth.dst) || macEquals(eth.dst, this.addresses.gatewayMac))) {
      this.stats.dropped++;
      return;
    }
    if (eth.etherType === ETHERTYPE_ARP) this.handleArp(eth.payload, eth.src);
    else if (eth.etherType === ETHERTYPE_IPV4) this.handleIpv4(eth.payload, eth.src);
    else this.stats.dropped++;
  }

  private handleArp(payload: Uint8Array, srcMac: Uint8Array): void {
    const arp = parseArp(payload);
    if (!arp) {
      this.stats.dropped++;
      return;
    }
    this.link.learn(arp.senderIp, srcMac);
    const a = this.addresses;
    if (arp.op !== ARP_REQUEST || (arp.targetIp !== a.gateway && arp.targetIp !== a.dns)) return;
    const reply = buildArp({ op: ARP_REPLY, senderMac: a.gatewayMac, senderIp: arp.targetIp, targetMac: arp.senderMac, targetIp: arp.senderIp });
    this.link.sendFrame(buildEthernet(srcMac, a.gatewayMac, ETHERTYPE_ARP, reply));
  }

  private handleIpv4(payload: Uint8Array, srcMac: Uint8Array): void {
    const ip = parseIpv4(payload);
    if (typeof ip === 'string') {
      this.stats.badIpv4++;
      return;
    }
    if (ip.fragment) {
      this.stats.fragments++;
      const whole = this.reassembler.add(ip);
      if (!whole) return;
      ip.payload = whole;
      ip.fragment = false;
    }
    this.link.learn(ip.src, srcMac);
    const a = this.addresses;
    // A packet the gateway would route onwards with its TTL used up: answer like a router (traceroute). Not for
    // ICMP errors (no errors about errors); echo requests do get one (traceroute -I, ping -t 1).
    if (ip.ttl <= 1 && this.routedOnwards(ip.dst) && (ip.protocol !== PROTO_ICMP || isEchoRequest(ip.payload)) && inSubnet(a, ip.src)) {
      this.stats.ttlExceeded++;
      this.link.sendIp(a.gateway, ip.src, PROTO_ICMP, timeExceeded(payload));
      return;
    }
    switch (ip.protocol) {
      case PROTO_ICMP: {
        if (ip.dst === a.gateway || ip.dst === a.dns) {
          const reply = echoReply(ip.payload);
          if (!reply) {
            this.stats.icmpDropped++;
            return;
          }
          this.stats.icmpEchoReplies++;
          this.link.sendIp(ip.dst, ip.src, PROTO_ICMP, reply);
          return;
        }
        this.forwardEcho(ip.src, ip.dst, ip.payload, payload);
        return;
      }
      case PROTO_UDP:
        this.handleUdp(ip.src, ip.dst, ip.payload);
        return;
      case PROTO_TCP:
        if (ip.src === 0 || !inSubnet(a, ip.src)) {
          this.stats.dropped++;
          return;
        }
        this.tcp.input(ip.src, ip.dst, ip.payload);
        return;
      default:
        this.stats.dropped++;
    }
  }

  private handleUdp(src: number, dst: number, bytes: Uint8Array): void {
    const udp = parseUdp(bytes, src, dst);
    const a = this.addresses;
    if (!udp) {
      this.stats.dropped++;
      return;
    }
    if (udp.dstPort === DHCP_SERVER_PORT && (dst === 0xffffffff || dst === a.gateway || dst === a.broadcast)) {
      const r = this.dhcp.handle(udp.payload);
      if (!r) return;
      const yiaddr = ((r.payload[16]! << 24) | (r.payload[17]! << 16) | (r.payload[18]! << 8) | r.payload[19]!) >>> 0;
      if (yiaddr !== 0) this.link.learn(yiaddr, r.clientMac);
      const udpOut = buildUdp(a.gateway, r.dstIp, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, r.payload);
      // Broadcast replies go to the broadcast MAC; unicast (renewal) ones to the client's own.
      const dstMac = r.dstIp === 0xffffffff ? this.link.macFor(0xffffffff) : r.clientMac;
      this.link.sendFrame(buildEthernet(dstMac, a.gatewayMac, ETHERTYPE_IPV4, buildIpv4(a.gateway, r.dstIp, PROTO_UDP, udpOut)));
      return;
    }
    if (src === 0 || !inSubnet(a, src)) {
      this.stats.dropped++;
      return;
    }
    if (dst === a.dns && udp.dstPort === 53) {
      this.dns.query(udp.payload, (response) => {
        this.ifOpen(() => this.link.sendUdp(a.dns, src, 53, udp.srcPort, response));
      });
      return;
    }
    if (dst === a.gateway && this.forwards.udpFromGuest(udp.dstPort, udp.payload)) return;
    this.udp.send(src, udp.srcPort, dst, udp.dstPort, udp.payload);
  }

  /** An echo request to an outside address goes out through the host ICMP socket; anything else is dropped. */
  private forwardEcho(src: number, dst: number, message: Uint8Array, packet: Uint8Array): void {
    const first = dst >>> 24;
    if (this.restrict || !inSubnet(this.addresses, src) || !this.routedOnwards(dst) || first === 0 || first === 127 || first >= 224 || !isEchoRequest(message)) {
      this.stats.icmpDropped++;
      return;
    }
    const result = this.icmp.forward(src, dst, message);
    if (result === 'forwarded') {
      this.stats.icmpForwarded++;
    } else if (result === 'net-unreachable' || result === 'host-unreachable') {
      this.stats.icmpUnreachable++;
      const code = result === 'net-unreachable' ? UNREACH_NET : UNREACH_HOST;
      this.link.sendIp(this.addresses.gateway, src, PROTO_ICMP, destinationUnreachable(packet, code));
    } else {
      this.stats.icmpDropped++;
    }
  }

  /** Where a guest destination goes on the host, or null when it is not reachable. */
  private mapDestination(ip: number, port: number): { host: string; port: number } | null {
    const a = this.addresses;
    if (ip === a.gateway) return this.hostLoopback ? { host: '127.0.0.1', port } : null;
    // DNS over TCP (after a truncated UDP answer) goes to the first upstream nameserver.
    if (ip === a.dns) {
      const ns = this.dns.servers[0];
      return port === 53 && ns ? { host: ns.address, port: ns.port } : null;
    }
    if (this.restrict || port === 0) return null;
    // Our own subnet (other than the gateway), "this network", loopback, multicast and broadcast stay inside.
    const first = ip >>> 24;
    if (inSubnet(a, ip) || first === 0 || first === 127 || first >= 224) return null;
    return { host: numberToIpv4(ip), port };
  }

  /** True for destinations beyond the gateway (the NAT), as opposed to the gateway's own services. */
  private routedOnwards(dst: number): boolean {
    const a = this.addresses;
    return dst !== a.gateway && dst !== a.dns && !inSubnet(a, dst) && dst !== 0xffffffff && dst >>> 28 !== 0xe;
  }

  /** Run `fn` unless the network is closed (host-side events can still arrive while closing). */
  private ifOpen(fn: () => void): void {
    if (!this.closed) fn();
  }

  private deliver(frame: Uint8Array): void {
    this.stats.framesToGuest++;
    const receiver = this.receiver;
    if (!receiver) return;
    const was = this.processing;
    this.processing = true;
    try {
      receiver(frame);
    } catch (e) {
      this.log(`user-net: frame receiver failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.processing = was;
    }
  }
}

