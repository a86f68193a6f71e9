/**
 * The command-line network specifications:
 *   user[,net=10.0.2.0/24][,restrict=on|off][,hostfwd=tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...[,hostfwd=udp:...]
 *   tap,ifname=NAME
 *   socket,listen=HOST:PORT | socket,connect=HOST:PORT
 * Every kind also takes mac=52:54:00:xx:xx:xx (the guest NIC's address). Errors name the field at fault.
 */
import { isIPv4 } from 'node:net';
import { formatMac, parseMac } from '../virtio/net/mac.js';

export interface HostForward {
  protocol: 'tcp' | 'udp';
  /** Host address to listen on (default 127.0.0.1: forwarded ports are not exposed beyond the host unless asked). */
  hostAddress: string;
  /** Host port; 0 picks a free port (see UserNetwork.hostForwardPorts). */
  hostPort: number;
  /** Guest address; undefined means the first DHCP address of the network (10.0.2.15 by default). */
  guestAddress: string | undefined;
  guestPort: number;
}

export interface UserNetSpec {
  kind: 'user';
  /** Network address (host part zero), e.g. "10.0.2.0". */
  network: string;
  prefixLength: number;
  hostForwards: HostForward[];
  /** restrict=on: the guest reaches only the gateway's services and the host loopback, nothing beyond. */
  restrict: boolean;
}

export interface TapNetSpec {
  kind: 'tap';
  ifname: string;
}

export interface SocketNetSpec {
  kind: 'socket';
  mode: 'listen' | 'connect';
  host: string;
  port: number;
}

/** The guest NIC's MAC address ("52:54:00:12:34:56"), when the specification sets one with mac=. */
interface NicAddress {
  mac?: string;
}

export type NetSpec = (UserNetSpec | TapNetSpec | SocketNetSpec) & NicAddress;

export class NetSpecError extends Error {
  readonly code = 'ENETSPEC';
  constructor(readonly spec: string, readonly field: string, problem: string) {
    super(`network "${spec}": ${field}: ${problem}`);
    this.name = 'NetSpecError';
  }
}

export const DEFAULT_USER_NETWORK = '10.0.2.0';
export const DEFAULT_USER_PREFIX = 24;

export function parseNetSpec(spec: string): NetSpec {
  const parts = spec.split(',');
  const kind = parts[0]!.trim();
  const all = parts.slice(1).map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new NetSpecError(spec, p || '(empty)', 'expected KEY=VALUE');
    return { key: p.slice(0, eq).trim(), value: p.slice(eq + 1).trim() };
  });
  const macs = all.filter((f) => f.key === 'mac');
  if (macs.length > 1) throw new NetSpecError(spec, 'mac', 'given more than once');
  const mac = macs[0] === undefined ? undefined : parseMacField(spec, macs[0].value);
  const backend = parseBackend(spec, kind, all.filter((f) => f.key !== 'mac'));
  return mac === undefined ? backend : { ...backend, mac };
}

function parseMacField(spec: string, value: string): string {
  try {
    return formatMac(parseMac(value));
  } catch (e) {
    throw new NetSpecError(spec, 'mac', (e as Error).message.replace(/^mac: /, ''));
  }
}

function parseBackend(spec: string, kind: string, fields: Array<{ key: string; value: string }>): NetSpec {
  switch (kind) {
    case 'user':
      return parseUser(spec, fields);
    case 'tap': {
      let ifname: string | undefined;
      for (const { key, value } of fields) {
        if (key !== 'ifname') throw new NetSpecError(spec, key, 'unknown option for tap (expected ifname or mac)');
        // IFNAMSIZ is 16 including the terminating NUL; '/' and whitespace are not allowed in interface names.
        if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(value)) throw new NetSpecError(spec, 'ifname', `"${value}" is not a valid interface name (1-15 characters)`);
        ifname = value;
      }
      if (!ifname) throw new NetSpecError(spec, 'ifname', 'tap needs ifname=NAME');
      return { kind: 'tap', ifname };
    }
    case 'socket': {
      if (fields.length !== 1 || (fields[0]!.key !== 'listen' && fields[0]!.key !== 'connect')) {
        throw new NetSpecError(spec, fields[0]?.key ?? 'listen/connect', 'socket needs exactly one of listen=HOST:PORT or connect=HOST:PORT');
      }
      const { key, value } = fields[0]!;
      const { host, port } = parseHostPort(spec, key, value, key === 'listen');
      return { kind: 'socket', mode: key as 'listen' | 'connect', host, port };
    }
    default:
      throw new NetSpecError(spec, 'type', `unknown network type "${kind}" (expected user, tap or socket)`);
  }
}

function parseUser(spec: string, fields: Array<{ key: string; value: string }>): UserNetSpec {
  const out: UserNetSpec = { kind: 'user', network: DEFAULT_USER_NETWORK, prefixLength: DEFAULT_USER_PREFIX, hostForwards: [], restrict: false };
  for (const { key, value } of fields) {
    if (key === 'net') {
      const m = /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/.exec(value);
      if (!m || !isIPv4(m[1]!)) throw new NetSpecError(spec, 'net', `"${value}" is not ADDRESS/PREFIX (e.g. 10.0.2.0/24)`);
      const prefix = m[2] === undefined ? 24 : Number(m[2]);
      // The gateway (.2), DNS (.3) and the first guest (.15) must fit in the host part.
      if (prefix < 8 || prefix > 27) throw new NetSpecError(spec, 'net', `prefix /${prefix} must be between /8 and /27`);
      const addr = ipv4ToNumber(m[1]!);
      const mask = prefixMask(prefix);
      out.network = numberToIpv4((addr & mask) >>> 0);
      out.prefixLength = prefix;
    } else if (key === 'restrict') {
      if (!['on', 'off', 'yes', 'no'].includes(value)) throw new NetSpecError(spec, 'restrict', `"${value}" is not on or off`);
      out.restrict = value === 'on' || value === 'yes';
    } else if (key === 'hostfwd') {
      out.hostForwards.push(parseHostForward(spec, value));
    } else {
      throw new NetSpecError(spec, key, 'unknown option for user (expected net, hostfwd, restrict or mac)');
    }
  }
  return out;
}

/** `tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT` (protocol optional, default tcp). */
export function parseHostForward(spec: string, value: string): HostForward {
  const m = /^(?:(tcp|udp):)?([^:-]*):([^:-]*)-([^:-]*):([^:-]*)$/.exec(value);
  if (!m) throw new NetSpecError(spec, 'hostfwd', `"${value}" is not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`);
  const [, proto, hostAddr, hostPort, guestAddr, guestPort] = m;
  if (hostAddr && !isIPv4(hostAddr)) throw new NetSpecError(spec, 'hostfwd', `host address "${hostAddr}" is not an IPv4 address`);
  if (guestAddr && !isIPv4(guestAddr)) throw new NetSpecError(spec, 'hostfwd', `guest address "${guestAddr}" is not an IPv4 address`);
  return {
    protocol: (proto as 'tcp' | 'udp' | undefined) ?? 'tcp',
    hostAddress: hostAddr || '127.0.0.1',
    hostPort: parsePort(spec, 'hostfwd', 'host port', hostPort!, true),
    guestAddress: guestAddr || undefined,
    guestPort: parsePort(spec, 'hostfwd', 'guest port', guestPort!, false),
  };
}

function parseHostPort(spec: string, field: string, value: string, allowZero: boolean): { host: string; port: number } {
  const colon = value.lastIndexOf(':');
  if (colon < 0) throw new NetSpecError(spec, field, `"${value}" is not HOST:PORT`);
  let host = value.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!host) throw new NetSpecError(spec, field, `"${value}" has no host`);
  return { host, port: parsePort(spec, field, 'port', value.slice(colon + 1), allowZero) };
}

function parsePort(spec: string, field: string, what: string, text: string, allowZero: boolean): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= (allowZero ? 0 : 1) && n <= 65535)) {
    throw new NetSpecError(spec, field, `${what} "${text}" is not a port number (${allowZero ? 0 : 1}-65535)`);
  }
  return n;
}

export function ipv4ToNumber(s: string): number {
  const p = s.split('.').map(Number);
  return (((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0);
}

export function numberToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}
