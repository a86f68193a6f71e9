/**
 * A DHCP server (RFC 2131/2132) for the user-mode network: leases addresses from .15 upward by client MAC and
 * hands out the subnet mask, router, DNS server and lease times. Replies are broadcast, which every client
 * (including busybox udhcpc before it has an address) accepts.
 */
import type { UserNetAddresses } from './addresses.js';

const MAGIC = 0x63825363;
const OPTIONS_AT = 240;

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

const DISCOVER = 1;
const OFFER = 2;
const REQUEST = 3;
const DECLINE = 4;
const ACK = 5;
const NAK = 6;
const RELEASE = 7;
const INFORM = 8;

const OPT_PAD = 0;
const OPT_SUBNET_MASK = 1;
const OPT_ROUTER = 3;
const OPT_DNS = 6;
const OPT_BROADCAST = 28;
const OPT_REQUESTED_IP = 50;
const OPT_LEASE_TIME = 51;
const OPT_OVERLOAD = 52;
const OPT_MESSAGE_TYPE = 53;
const OPT_SERVER_ID = 54;
const OPT_RENEWAL_TIME = 58;
const OPT_REBINDING_TIME = 59;
const OPT_END = 255;

export interface DhcpReply {
  /** The BOOTP/DHCP message (UDP payload from port 67 to 68). */
  payload: Uint8Array;
  /** IPv4 destination (broadcast unless the client already has an address). */
  dstIp: number;
  /** The client's MAC (from chaddr). */
  clientMac: Uint8Array;
}

export interface DhcpServerOptions {
  /** Addresses handed out, starting at the first guest address (default 16). */
  poolSize?: number;
  leaseSeconds?: number;
}

export class DhcpServer {
  readonly stats = { requests: 0, offers: 0, acks: 0, naks: 0, ignored: 0 };
  private readonly leases = new Map<string, number>();
  private readonly poolSize: number;
  private readonly leaseSeconds: number;

  constructor(private readonly addr: UserNetAddresses, options: DhcpServerOptions = {}) {
    this.poolSize = options.poolSize ?? 16;
    this.leaseSeconds = options.leaseSeconds ?? 86400;
  }

  /** The address leased to `mac`, if any. */
  leaseOf(mac: Uint8Array): number | undefined {
    return this.leases.get(macKey(mac));
  }

  handle(msg: Uint8Array): DhcpReply | null {
    this.stats.requests++;
    const parsed = parseMessage(msg);
    if (!parsed) {
      this.stats.ignored++;
      return null;
    }
    const { type, options, chaddr, ciaddr } = parsed;
    const serverId = readIp(options.get(OPT_SERVER_ID));
    if (serverId !== undefined && serverId !== this.addr.gateway && type !== DISCOVER) {
      this.stats.ignored++; // meant for another server
      return null;
    }
    const key = macKey(chaddr);
    switch (type) {
      case DISCOVER: {
        const ip = this.allocate(key, readIp(options.get(OPT_REQUESTED_IP)));
        if (ip === undefined) return this.ignore();
        this.stats.offers++;
        return this.reply(msg, OFFER, ip, chaddr, 0, true);
      }
      case REQUEST: {
        const wanted = readIp(options.get(OPT_REQUESTED_IP)) ?? (ciaddr || undefined);
        const current = this.leases.get(key);
        const ok = wanted !== undefined && (current === wanted || (current === undefined && this.allocate(key, wanted) === wanted));
        if (!ok) {
          this.stats.naks++;
          return this.reply(msg, NAK, 0, chaddr, 0, false);
        }
        this.stats.acks++;
        return this.reply(msg, ACK, wanted, chaddr, ciaddr, true);
      }
      case INFORM:
        this.stats.acks++;
        return this.reply(msg, ACK, 0, chaddr, ciaddr, false, true);
      case RELEASE:
        this.leases.delete(key);
        return null;
      case DECLINE:
        return null;
      default:
        return this.ignore();
    }
  }

  private ignore(): null {
    this.stats.ignored++;
    return null;
  }

  /** The client's existing lease, the requested address if free, or the lowest free address. */
  private allocate(key: string, requested: number | undefined): number | undefined {
    const existing = this.leases.get(key);
    if (existing !== undefined) return existing;
    const used = new Set(this.leases.values());
    const first = this.addr.firstGuest;
    const inPool = (ip: number): boolean => ip >= first && ip < first + this.poolSize;
    let ip: number | undefined;
    if (requested !== undefined && inPool(requested) && !used.has(requested)) ip = requested;
    for (let i = 0; ip === undefined && i < this.poolSize; i++) if (!used.has(first + i)) ip = first + i;
    if (ip !== undefined) this.leases.set(key, ip);
    return ip;
  }

  private reply(request: Uint8Array, type: number, yiaddr: number, chaddr: Uint8Array, ciaddr: number, config: boolean, inform = false): DhcpReply {
    const opts: number[] = [OPT_MESSAGE_TYPE, 1, type, OPT_SERVER_ID, 4, ...ipBytes(this.addr.gateway)];
    if (config) {
      if (!inform) {
        opts.push(OPT_LEASE_TIME, 4, ...u32Bytes(this.leaseSeconds));
        opts.push(OPT_RENEWAL_TIME, 4, ...u32Bytes(Math.floor(this.leaseSeconds / 2)));
        opts.push(OPT_REBINDING_TIME, 4, ...u32Bytes(Math.floor((this.leaseSeconds * 7) / 8)));
      }
      opts.push(OPT_SUBNET_MASK, 4, ...ipBytes(this.addr.mask));
      opts.push(OPT_ROUTER, 4, ...ipBytes(this.addr.gateway));
      opts.push(OPT_DNS, 4, ...ipBytes(this.addr.dns));
      opts.push(OPT_BROADCAST, 4, ...ipBytes(this.addr.broadcast));
    }
    opts.push(OPT_END);
    // BOOTP replies are at least 300 bytes; some clients reject shorter ones.
    const out = new Uint8Array(Math.max(300, OPTIONS_AT + opts.length));
    const dv = new DataView(out.buffer);
    out[0] = 2; // BOOTREPLY
    out[1] = 1;
    out[2] = 6;
    out.set(request.subarray(4, 8), 4); // xid
    out.set(request.subarray(10, 12), 10); // flags
    dv.setUint32(12, ciaddr >>> 0);
    dv.setUint32(16, yiaddr >>> 0);
    dv.setUint32(20, this.addr.gateway); // siaddr
    out.set(request.subarray(28, 44), 28); // chaddr
    dv.setUint32(236, MAGIC);
    out.set(opts, OPTIONS_AT);
    const unicast = ciaddr !== 0 && type !== NAK;
    return { payload: out, dstIp: unicast ? ciaddr : 0xffffffff, clientMac: chaddr };
  }
}

interface ParsedMessage {
  type: number;
  options: Map<number, Uint8Array>;
  chaddr: Uint8Array;
  ciaddr: number;
}

function parseMessage(msg: Uint8Array): ParsedMessage | null {
  if (msg.length < OPTIONS_AT || msg[0] !== 1 || msg[1] !== 1 || msg[2] !== 6) return null;
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  if (dv.getUint32(236) !== MAGIC) return null;
  const options = new Map<number, Uint8Array>();
  if (!parseOptions(msg.subarray(OPTIONS_AT), options)) return null;
  // Option overload (52) moves options into the file/sname fields.
  const overload = options.get(OPT_OVERLOAD)?.[0] ?? 0;
  if (overload & 1 && !parseOptions(msg.subarray(108, 236), options)) return null;
  if (overload & 2 && !parseOptions(msg.subarray(44, 108), options)) return null;
  const type = options.get(OPT_MESSAGE_TYPE);
  if (!type || type.length !== 1) return null;
  return { type: type[0]!, options, chaddr: msg.slice(28, 34), ciaddr: dv.getUint32(12) };
}

function parseOptions(area: Uint8Array, into: Map<number, Uint8Array>): boolean {
  let i = 0;
  while (i < area.length) {
    const code = area[i]!;
    if (code === OPT_PAD) {
      i++;
      continue;
    }
    if (code === OPT_END) return true;
    if (i + 1 >= area.length) return false;
    const len = area[i + 1]!;
    if (i + 2 + len > area.length) return false;
    // Repeated options are concatenated (RFC 3396).
    const value = area.subarray(i + 2, i + 2 + len);
    const prev = into.get(code);
    into.set(code, prev ? Uint8Array.from([...prev, ...value]) : value);
    i += 2 + len;
  }
  return true;
}

function readIp(v: Uint8Array | undefined): number | undefined {
  if (!v || v.length !== 4) return undefined;
  return ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
}

function ipBytes(ip: number): number[] {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255];
}

const u32Bytes = ipBytes;

function macKey(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, 6)).join(':');
}

