/** Shared set-up for the user-mode network tests: a network, a test-side guest stack, host servers, cleanup. */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect } from 'vitest';
import { UserNetwork, type UserNetworkOptions } from '../../lib/net/user/user-network.js';
import { BCAST, GuestStack, GUEST_MAC, TestTcp, eth, ip, type TestTcpOptions } from './guest-stack.js';

export const GW = ip('10.0.2.2');
export const DNS = ip('10.0.2.3');
export const GUEST = ip('10.0.2.15');
export const GW_MAC = [0x52, 0x55, 10, 0, 2, 2];

/** Undone after each test, last first. */
export const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

export async function rig(options: UserNetworkOptions = {}): Promise<{ net: UserNetwork; g: GuestStack; logs: string[] }> {
  const logs: string[] = [];
  const net = await UserNetwork.create({ dnsServers: [], log: (m) => logs.push(m), ...options });
  cleanups.push(() => net.close());
  const g = new GuestStack(net);
  cleanups.push(() => expect(g.errors).toEqual([]));
  return { net, g, logs };
}

export function arpRequest(targetIp: number): Uint8Array {
  const t = [targetIp >>> 24, (targetIp >>> 16) & 255, (targetIp >>> 8) & 255, targetIp & 255];
  return eth(BCAST, GUEST_MAC, 0x0806, Uint8Array.from([0, 1, 8, 0, 6, 4, 0, 1, ...GUEST_MAC, 10, 0, 2, 15, 0, 0, 0, 0, 0, 0, ...t]));
}

/** Resolve the gateway MAC like a guest would, then TCP from then on. */
export async function arpGateway(g: GuestStack): Promise<void> {
  g.sendFrame(arpRequest(GW));
  const r = await g.waitFor((p) => p.type === 0x0806, 2000, 'ARP reply');
  g.gwMac = r.frame.slice(22, 28);
}

export async function httpServer(handler: Parameters<typeof createHttpServer>[1]): Promise<number> {
  const server: HttpServer = createHttpServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return (server.address() as AddressInfo).port;
}

export function body(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >>> 11)) & 255;
  return b;
}

export const sha = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');

export async function httpGet(g: GuestStack, port: number, path: string, opts: TestTcpOptions, localPort: number): Promise<{ c: TestTcp; text: string; body: Uint8Array }> {
  const c = new TestTcp(g, localPort, GW, port, opts);
  cleanups.push(() => c.dispose());
  await c.connect();
  c.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: 10.0.2.2\r\nConnection: close\r\n\r\n`));
  await c.until(() => c.finReceived, 'the end of the response', 60_000);
  c.close();
  await c.until(() => c.finAcked, 'our FIN to be acknowledged');
  const data = c.data;
  const split = Buffer.from(data).indexOf('\r\n\r\n');
  return { c, text: Buffer.from(data.subarray(0, split)).toString(), body: data.subarray(split + 4) };
}

/** How many of this process's fds are raw or ping ICMP sockets (their inodes as listed in /proc/net/raw, /proc/net/icmp). */
export function ownIcmpSockets(): number {
  const icmpInodes = new Set<string>();
  for (const table of ['/proc/net/raw', '/proc/net/icmp']) {
    for (const line of readFileSync(table, 'utf8').trim().split('\n').slice(1)) icmpInodes.add(line.trim().split(/\s+/)[9]!);
  }
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && icmpInodes.has(m[1]!)) n++;
  }
  return n;
}
