/** The user-mode network's addressing (QEMU slirp's layout): gateway .2, DNS .3, first guest .15. */
import { DEFAULT_USER_NETWORK, DEFAULT_USER_PREFIX, ipv4ToNumber, prefixMask } from '../spec.js';

export interface UserNetAddresses {
  network: number;
  prefixLength: number;
  mask: number;
  broadcast: number;
  /** The host as the guest sees it; as a destination it means the host's loopback. */
  gateway: number;
  /** The DNS forwarder. */
  dns: number;
  /** First DHCP address (the default guest). */
  firstGuest: number;
  /** MAC address the gateway and DNS answer with. */
  gatewayMac: Uint8Array;
}

export function userNetAddresses(network = DEFAULT_USER_NETWORK, prefixLength = DEFAULT_USER_PREFIX): UserNetAddresses {
  const mask = prefixMask(prefixLength);
  const net = (ipv4ToNumber(network) & mask) >>> 0;
  const gateway = (net + 2) >>> 0;
  return {
    network: net,
    prefixLength,
    mask,
    broadcast: (net | ~mask) >>> 0,
    gateway,
    dns: (net + 3) >>> 0,
    firstGuest: (net + 15) >>> 0,
    // Locally administered; the last four bytes are the gateway's IPv4 address, as slirp does.
    gatewayMac: Uint8Array.of(0x52, 0x55, gateway >>> 24, (gateway >>> 16) & 255, (gateway >>> 8) & 255, gateway & 255),
  };
}

export function inSubnet(a: UserNetAddresses, ip: number): boolean {
  return ((ip & a.mask) >>> 0) === a.network;
}
