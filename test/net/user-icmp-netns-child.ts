/**
 * Child of user-icmp-netns.test.ts, run as `unshare -n node --import tsx user-icmp-netns-child.ts <kind>` inside
 * a fresh network namespace (so the sysctls below never touch the host's): pings through UserNetwork with an ICMP
 * socket of `kind` ('dgram' or 'raw') and prints what it observed as one JSON line for the parent to check.
 */
import { execFileSync } from 'node:child_process';
import { IcmpEchoForwarder } from '../../lib/net/user/icmp-forwarder.js';
import { UserNetwork } from '../../lib/net/user/user-network.js';
import { GuestStack, icmpEcho, ip, type RxPacket } from './guest-stack.js';

const kind = process.argv[2] === 'raw' ? 'raw' : 'dgram';
const TARGET = ip('198.51.100.1'); // on lo in this namespace: the kernel answers it
const NO_ROUTE = ip('203.0.113.9'); // no route in a namespace that has only lo

const sysctl = (setting: string): void => void execFileSync('sysctl', ['-qw', setting]);
sysctl('net.ipv4.ping_group_range=0 2147483647');
execFileSync('ip', ['link', 'set', 'lo', 'up']);
execFileSync('ip', ['addr', 'add', '198.51.100.1/32', 'dev', 'lo']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const payload = (seq: number) => Uint8Array.from({ length: 24 }, (_, i) => (i + seq * 13) & 255);
const echoReply = (p: RxPacket, id: number, seq: number) =>
  p.proto === 1 && p.l4[0] === 0 && p.l4[4]! * 256 + p.l4[5]! === id && p.l4[6]! * 256 + p.l4[7]! === seq;

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

const logs: string[] = [];
const net = await UserNetwork.create({ dnsServers: [], icmpSocket: kind, icmpEchoTimeoutMs: 300, log: (m) => logs.push(m) });
const g = new GuestStack(net);

// Replies: two identifiers sharing sequence numbers, all in flight at once.
const sent: Array<[number, number]> = [[0x4242, 1], [0x4242, 2], [0x4242, 3], [0x4343, 1], [0x4343, 2]];
for (const [id, seq] of sent) g.sendIp(TARGET, 1, icmpEcho(8, id, seq, payload(seq)));
const replies: Array<{ id: number; seq: number; src: string; dataOk: boolean }> = [];
for (const [id, seq] of sent) {
  const r = await g.waitFor((p) => echoReply(p, id, seq), 5000, `reply ${id}/${seq}`);
  replies.push({ id, seq, src: r.src === TARGET ? 'target' : String(r.src), dataOk: Buffer.from(r.l4.subarray(8)).equals(payload(seq)) });
}
const socketKind = net.icmp.socketKind;

// Unanswered: the kernel ignores echo requests now; entries must expire and leave the table empty.
sysctl('net.ipv4.icmp_echo_ignore_all=1');
for (let seq = 10; seq < 13; seq++) g.sendIp(TARGET, 1, icmpEcho(8, 0x4242, seq, payload(seq)));
const pendingAfterSend = net.icmp.pendingCount;
const drained = await until(() => net.icmp.pendingCount === 0, 5000);
const expired = net.icmp.stats.expired;
const strayReplies = g.received.filter((p) => p.proto === 1).length;
sysctl('net.ipv4.icmp_echo_ignore_all=0');

// No route: the host refuses the send, the guest hears destination unreachable from the gateway.
g.sendIp(NO_ROUTE, 1, icmpEcho(8, 0x4242, 20, payload(20)));
const unreach = await g.waitFor((p) => p.proto === 1 && p.l4[0] === 3, 3000, 'destination unreachable');
const unreachable = { src: unreach.src === ip('10.0.2.2') ? 'gateway' : String(unreach.src), code: unreach.l4[1], quotesDst: unreach.l4.subarray(8 + 16, 8 + 20).join('.') };

// A bounded table: 10 requests no one answers with room for 4.
sysctl('net.ipv4.icmp_echo_ignore_all=1');
const small = new IcmpEchoForwarder({ output: () => {}, kind, maxPending: 4, timeoutMs: 60_000 });
const request = icmpEcho(8, 1, 1, payload(1));
for (let i = 0; i < 10; i++) small.forward(ip('10.0.2.15'), TARGET, request);
const bounded = { pending: small.pendingCount, evicted: small.stats.evicted, forwarded: small.stats.forwarded };
small.close();
sysctl('net.ipv4.icmp_echo_ignore_all=0');

const stats = { ...net.stats };
await net.close();
console.log(JSON.stringify({
  socketKind, replies, pendingAfterSend, drained, expired, strayReplies, unreachable, bounded, stats,
  closedKind: net.icmp.socketKind, guestErrors: g.errors, logs,
}));
