/**
 * The user-mode network's side of the virtual Ethernet link: which MAC each guest address has (learned from
 * what the guest sends), and building frames towards the guest — one allocation per frame, IPv4 fragments when
 * a packet exceeds the link MTU.
 */
import type { UserNetAddresses } from './addresses.js';
import { inSubnet } from './addresses.js';
import { BROADCAST_MAC, ETH_HEADER_BYTES, ETHERTYPE_IPV4, buildEthernet, macEquals } from './ethernet.js';
import { IPV4_HEADER_BYTES, PROTO_UDP, fragmentIpv4, writeIpv4Header } from './ipv4.js';
import { buildUdp } from './udp.js';

export class GuestLink {
  /** Packets larger than the MTU that went out as fragments. */
  fragmentedPackets = 0;
  private readonly macs = new Map<number, Uint8Array>();
  private lastGuestMac: Uint8Array | undefined;

  constructor(
    private readonly addresses: UserNetAddresses,
    readonly mtu: number,
    /** Hands a finished frame to the guest. */
    private readonly transmit: (frame: Uint8Array) => void,
  ) {}

  /** Remember that guest address `ip` uses `mac` (addresses outside the subnet, and our own, are ignored). */
  learn(ip: number, mac: Uint8Array): void {
    const a = this.addresses;
    if (ip === 0 || !inSubnet(a, ip) || ip === a.gateway || ip === a.dns) return;
    const known = this.macs.get(ip);
    if (!known || !macEquals(known, mac)) this.macs.set(ip, mac.slice(0, 6));
    this.lastGuestMac = this.macs.get(ip);
  }

  /** Where a frame for `ip` goes: its learned MAC, else the last guest MAC seen, else broadcast. */
  macFor(ip: number): Uint8Array {
    return ip === 0xffffffff ? BROADCAST_MAC : this.macs.get(ip) ?? this.lastGuestMac ?? BROADCAST_MAC;
  }

  sendFrame(frame: Uint8Array): void {
    this.transmit(frame);
  }

  sendUdp(src: number, dst: number, srcPort: number, dstPort: number, payload: Uint8Array): void {
    this.sendIp(src, dst, PROTO_UDP, buildUdp(src, dst, srcPort, dstPort, payload));
  }

  sendIp(src: number, dst: number, protocol: number, payload: Uint8Array): void {
    this.sendIpWith(src, dst, protocol, payload.length, (area) => area.set(payload));
  }

  /** Ethernet and IPv4 headers here; `fill` writes the `length`-byte payload straight into the frame. */
  sendIpWith(src: number, dst: number, protocol: number, length: number, fill: (area: Uint8Array) => void): void {
    const dstMac = this.macFor(dst);
    if (IPV4_HEADER_BYTES + length > this.mtu) {
      // Large UDP answers (EDNS DNS, big datagrams) reach the guest as fragments, as from a router.
      const payload = new Uint8Array(length);
      fill(payload);
      this.fragmentedPackets++;
      for (const packet of fragmentIpv4(src, dst, protocol, payload, this.mtu)) {
        this.transmit(buildEthernet(dstMac, this.addresses.gatewayMac, ETHERTYPE_IPV4, packet));
      }
      return;
    }
    const frame = new Uint8Array(ETH_HEADER_BYTES + IPV4_HEADER_BYTES + length);
    frame.set(dstMac, 0);
    frame.set(this.addresses.gatewayMac, 6);
    frame[12] = ETHERTYPE_IPV4 >>> 8;
    frame[13] = ETHERTYPE_IPV4 & 0xff;
    writeIpv4Header(frame.subarray(ETH_HEADER_BYTES), src, dst, protocol, length);
    fill(frame.subarray(ETH_HEADER_BYTES + IPV4_HEADER_BYTES));
    this.transmit(frame);
  }
}
