/**
 * Ping from the guest to outside addresses through the user-mode network's host ICMP socket, against this host's
 * real kernel: the target is the host's own non-loopback IPv4 address (the kernel answers it; 127.0.0.1 is the
 * gateway's loopback alias and is not forwarded). Needs the addon's IcmpSocket and either a ping socket
 * (net.ipv4.ping_group_range) or CAP_NET_RAW; otherwise skipped with the reason. The ping-socket kind, expiry of
 * unanswered requests and "no route" run in a fresh network namespace: see user-icmp-netns.test.ts.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadNative, type NativeIcmpReply } from '../../lib/kvm/native.js';
import { numberToIpv4 } from '../../lib/net/spec.js';
import { GUEST, GW, cleanups, ownIcmpSockets, rig } from './user-rig.js';
import { GUEST_MAC, eth, icmpEcho, ip, ipv4, type GuestStack, type RxPacket } from './guest-stack.js';

function openProbe(kind: 'auto' | 'dgram' | 'raw'): { kind: string } | string {
  try {
    const ctor = loadNative().IcmpSocket;
    if (!ctor) return 'the native addon has no IcmpSocket (rebuild it: npm run build:native)';
    const s = new ctor(kind);
    const k = s.kind;
    s.close();
    return { kind: k };
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

const hostAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
const probe = openProbe('auto');
const reason = typeof probe === 'string' ? probe : hostAddress ? null : 'this host has no non-loopback IPv4 address to ping';
if (reason) console.warn(`skipping user-network ICMP forwarding tests: ${reason}`);
const TARGET = hostAddress ? ip(hostAddress) : 0;

const data = (n: number, salt: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + salt) & 255);

const isEchoReply = (id: number, seq: number) => (p: RxPacket) => p.proto === 1 && p.l4[0] === 0 && p.l4[4]! * 256 + p.l4[5]! === id && p.l4[6]! * 256 + p.l4[7]! === seq;

async function ping(g: GuestStack, dst: number, id: number, seq: number, payload: Uint8Array): Promise<RxPacket> {
  g.sendIp(dst, 1, icmpEcho(8, id, seq, payload));
  return g.waitFor(isEchoReply(id, seq), 5000, `echo reply id ${id} seq ${seq} from ${numberToIpv4(dst)}`);
}

describe.skipIf(reason !== null)('user network: ICMP echo to outside addresses', () => {
  it('an echo request to the host address comes back from it with the guest id, sequence and data', async () => {
    const { net, g } = await rig();
    const payload = data(56, 3);
    const r = await ping(g, TARGET, 0xbeef, 1, payload); // parseRx in the rig verified the IP and ICMP checksums
    expect(r.src).toBe(TARGET);
    expect(r.dst).toBe(GUEST);
    expect(r.l4[1]).toBe(0);
    expect(r.l4.subarray(8)).toEqual(payload);
    expect(net.stats.icmpForwarded).toBe(1);
    expect(net.stats.icmpRepliesForwarded).toBe(1);
    expect(net.stats.icmpDropped).toBe(0);
    expect(net.icmp.socketKind).toBe((probe as { kind: string }).kind);
    expect(net.icmp.pendingCount).toBe(0);
  });

  it('the socket opens on the first outside ping and closes with the network', async () => {
    const before = ownIcmpSockets();
    const { net, g } = await rig();
    await ping(g, GW, 2, 1, data(8, 0));
    expect(ownIcmpSockets()).toBe(before);
    await ping(g, TARGET, 2, 2, data(8, 0));
    expect(ownIcmpSockets()).toBe(before + 1);
    await net.close();
    expect(ownIcmpSockets()).toBe(before);
    expect(net.icmp.socketKind).toBeNull();
  });

  it('concurrent pings: one id with several sequence numbers and a second id reusing them, each answered once', async () => {
    const { net, g } = await rig();
    const wanted: Array<[number, number]> = [];
    for (const id of [0x1111, 0x2222]) for (let seq = 1; seq <= 5; seq++) wanted.push([id, seq]);
    for (const [id, seq] of wanted) g.sendIp(TARGET, 1, icmpEcho(8, id, seq, data(32, id + seq)));
    for (const [id, seq] of wanted) {
      const r = await g.waitFor(isEchoReply(id, seq), 5000, `reply ${id}/${seq}`);
      expect(r.l4.subarray(8)).toEqual(data(32, id + seq));
    }
    // Nothing answered twice: no further echo reply is queued.
    expect(g.received.filter((p) => p.proto === 1)).toEqual([]);
    expect(net.stats.icmpForwarded).toBe(10);
    expect(net.stats.icmpRepliesForwarded).toBe(10);
    expect(net.icmp.pendingCount).toBe(0);
  });

  it('replies to the host\'s own pings on a raw socket are not handed to the guest', async () => {
    const { net, g } = await rig({ icmpSocket: 'raw' });
    await ping(g, TARGET, 7, 1, data(8, 1)); // opens the forwarder's raw socket
    // Another program on the host pings the same address with the same sequence numbers the forwarder uses next.
    const other = new (loadNative().IcmpSocket!)('raw');
    cleanups.push(() => other.close());
    const seen: NativeIcmpReply[] = [];
    other.start((replies) => seen.push(...replies));
    for (let seq = 0; seq < 4; seq++) expect(other.send(TARGET, icmpEcho(8, 0x0bad, seq, data(8, seq)))).toBe(16);
    await ping(g, TARGET, 7, 2, data(8, 2));
    while (seen.filter((r) => r.message[4] === 0x0b && r.message[5] === 0xad).length < 4) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setImmediate(r));
    const replies = g.received.filter((p) => p.proto === 1);
    expect(replies).toEqual([]);
    expect(net.stats.icmpRepliesForwarded).toBe(2);
    expect(net.icmp.stats.unmatched).toBeGreaterThanOrEqual(4);
  }, 15_000);

  it('restrict=on keeps dropping echo requests to outside addresses and never opens a socket', async () => {
    const { net, g } = await rig({ restrict: true });
    g.sendIp(TARGET, 1, icmpEcho(8, 1, 1, data(8, 0)));
    await ping(g, GW, 1, 2, data(8, 0)); // the gateway still answers; by then the first request was handled
    expect(net.stats.icmpDropped).toBe(1);
    expect(net.stats.icmpForwarded).toBe(0);
    expect(net.icmp.socketKind).toBeNull();
    expect(g.received.filter((p) => p.proto === 1)).toEqual([]);
  });

  it('the gateway (host loopback alias) is answered locally; loopback, subnet and multicast targets are dropped', async () => {
    const { net, g } = await rig();
    const r = await ping(g, GW, 3, 1, data(16, 9));
    expect(r.src).toBe(GW);
    for (const dst of ['127.0.0.1', '10.0.2.77', '224.0.0.1', '0.1.2.3']) g.sendIp(ip(dst), 1, icmpEcho(8, 3, 2, data(8, 0)));
    await ping(g, GW, 3, 3, data(16, 9));
    expect(net.stats.icmpEchoReplies).toBe(2);
    expect(net.stats.icmpDropped).toBe(4);
    expect(net.icmp.socketKind).toBeNull();
  });

  it('an echo request with TTL 1 to an outside address gets time exceeded from the gateway, not forwarded', async () => {
    const { net, g } = await rig();
    const pkt = ipv4(GUEST, TARGET, 1, icmpEcho(8, 5, 1, data(8, 0)), { ttl: 1 });
    g.sendFrame(eth(g.gwMac, GUEST_MAC, 0x0800, pkt));
    const r = await g.waitFor((p) => p.proto === 1, 2000, 'time exceeded');
    expect(r.src).toBe(GW);
    expect([r.l4[0], r.l4[1]]).toEqual([11, 0]);
    expect(r.l4.subarray(8, 8 + 28)).toEqual(pkt.subarray(0, 28));
    expect(net.stats.icmpForwarded).toBe(0);
  });

  it('echo requests with a bad checksum are dropped, not forwarded', async () => {
    const { net, g } = await rig();
    const bad = icmpEcho(8, 9, 1, data(8, 0));
    bad[3]! ^= 0x55;
    g.sendIp(TARGET, 1, bad);
    await ping(g, GW, 9, 2, data(8, 0));
    expect(net.stats.icmpDropped).toBe(1);
    expect(net.stats.icmpForwarded).toBe(0);
  });
});

// Debian's default ping_group_range ("1 0") admits nobody: then a ping socket really fails here, and the network
// must say so once and keep dropping.
function pingSocketsDenied(): string | null {
  if (typeof loadNative().IcmpSocket !== 'function') return 'the native addon has no IcmpSocket';
  let range: number[];
  try {
    range = readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8').trim().split(/\s+/).map(Number);
  } catch {
    return 'cannot read /proc/sys/net/ipv4/ping_group_range';
  }
  const gid = process.getgid?.() ?? 0;
  if (range[0]! <= gid && gid <= range[1]!) return `ping sockets are allowed here (ping_group_range ${range.join(' ')} includes gid ${gid})`;
  return null;
}
const deniedSkip = pingSocketsDenied();
if (deniedSkip) console.warn(`skipping the "ping socket not allowed" test: ${deniedSkip}`);

describe.skipIf(deniedSkip !== null)('user network: no usable ICMP socket', () => {
  it('logs one line naming the cause and the sysctl, and keeps dropping outside pings', async () => {
    const { net, g, logs } = await rig({ icmpSocket: 'dgram' });
    for (let seq = 1; seq <= 3; seq++) g.sendIp(ip('192.0.2.77'), 1, icmpEcho(8, 1, seq, data(8, 0)));
    await ping(g, GW, 1, 9, data(8, 0));
    const lines = logs.filter((l) => l.includes('ping'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/EACCES/);
    expect(lines[0]).toMatch(/net\.ipv4\.ping_group_range/);
    expect(net.icmp.unavailableReason).toMatch(/ping_group_range/);
    expect(net.stats.icmpDropped).toBe(3);
    expect(net.stats.icmpForwarded).toBe(0);
  });
});
