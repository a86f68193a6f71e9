/**
 * Fuzzes the user-mode network with what a hostile or broken guest could send: random frames, truncated and
 * bit-flipped packets, and checksum-correct packets with random header fields (TCP flags, sequence numbers,
 * windows, MSS 0, odd option lengths; DHCP with random options; DNS junk; ICMP of any type) aimed at the
 * gateway's services and at one loopback echo server (nothing leaves the machine: restrict=on). Afterwards the
 * network must still work. Counts: NODEVMM_NET_FUZZ_FRAMES (default 20,000), NODEVMM_FUZZ_SEED.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserNetwork } from '../../lib/net/user/user-network.js';
import { Rng } from '../virtio/fuzz-harness.js';
import { dhcpMessage } from './dhcp-client.js';
import { F, GuestStack, GUEST_MAC, TestTcp, eth, ip, ipv4, tcp, udp } from './guest-stack.js';

const FRAMES = Number(process.env['NODEVMM_NET_FUZZ_FRAMES'] ?? 20_000);
const SEED = Number(process.env['NODEVMM_FUZZ_SEED'] ?? 0x75736572);
const GW = ip('10.0.2.2');
const DNS = ip('10.0.2.3');
const GUEST = ip('10.0.2.15');
const GW_MAC = Uint8Array.of(0x52, 0x55, 10, 0, 2, 2);

let echo: Server;
let echoPort = 0;
beforeAll(async () => {
  echo = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((r) => echo.close(() => r()));
});

function bytes(rng: Rng, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

describe('user-mode network fuzzing', () => {
  it(`survives ${FRAMES} hostile frames and still works`, { timeout: Math.max(120_000, FRAMES * 5) }, async () => {
    const logs: string[] = [];
    const net = await UserNetwork.create({ restrict: true, dnsServers: [], log: (m) => logs.push(m), tcp: { initialRtoMs: 20, maxRetries: 2, maxRtoMs: 40 } });
    const g = new GuestStack(net);
    g.gwMac = GW_MAC;
    const rng = new Rng(SEED);
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => void uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    const ports = [echoPort, echoPort, echoPort, 53, 67, 80];
    const seqs = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff];
    try {
      for (let i = 0; i < FRAMES; i++) {
        const kind = rng.int(12);
        const dst = rng.pick([GW, GW, GW, DNS, 0xffffffff, ip('10.0.2.77'), ip('192.0.2.9')]);
        let frame: Uint8Array;
        if (kind === 0) {
          frame = bytes(rng, rng.int(200));
        } else if (kind <= 6) {
          const sp = rng.chance(0.7) ? 40000 + rng.int(64) : rng.int(65536);
          const seg = {
            sp,
            dp: rng.pick(ports),
            seq: rng.chance(0.5) ? rng.pick(seqs) : rng.u32(),
            ack: rng.chance(0.5) ? rng.pick(seqs) : rng.u32(),
            flags: rng.chance(0.3) ? F.SYN : rng.int(64),
            win: rng.chance(0.3) ? 0 : rng.int(65536),
            ...(rng.chance(0.5) ? { mss: rng.pick([0, 1, 63, 536, 1460, 65535]) } : {}),
            data: bytes(rng, rng.chance(0.7) ? 0 : rng.int(2000)),
          };
          let t = tcp(GUEST, dst, seg);
          if (rng.chance(0.1)) {
            // Data offset pointing past the end, or options with bad lengths (checksum fixed up after).
            t[12] = rng.int(256);
            if (t.length > 21) t[21] = rng.int(256);
            t[16] = t[17] = 0;
            let s = 0;
            const ps = [GUEST >>> 16, GUEST & 0xffff, dst >>> 16, dst & 0xffff, 6, t.length];
            for (const w of ps) s += w;
            for (let k = 0; k < t.length; k += 2) s += (t[k]! << 8) | (t[k + 1] ?? 0);
            while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
            t[16] = (~s >>> 8) & 255;
            t[17] = ~s & 255;
          }
          if (rng.chance(0.05)) t = t.subarray(0, rng.int(t.length));
          frame = eth(GW_MAC, GUEST_MAC, 0x0800, ipv4(GUEST, dst, 6, t, { ttl: rng.chance(0.05) ? 1 : 64 }));
        } else if (kind === 7) {
          const m = rng.chance(0.5) ? dhcpMessage(1 + rng.int(9), rng.u32(), Array.from(bytes(rng, rng.int(40)))) : bytes(rng, rng.int(600));
          frame = eth(Uint8Array.of(255, 255, 255, 255, 255, 255), GUEST_MAC, 0x0800, ipv4(0, 0xffffffff, 17, udp(0, 0xffffffff, 68, 67, m)));
        } else if (kind === 8) {
          frame = eth(GW_MAC, GUEST_MAC, 0x0800, ipv4(GUEST, DNS, 17, udp(GUEST, DNS, 1000 + rng.int(100), 53, bytes(rng, rng.int(100)))));
        } else if (kind === 9) {
          const icmp = bytes(rng, 4 + rng.int(100));
          frame = eth(GW_MAC, GUEST_MAC, 0x0800, ipv4(GUEST, dst, 1, icmp, { flagsFrag: rng.chance(0.1) ? 0x2000 : 0x4000 }));
        } else if (kind === 10) {
          frame = eth(rng.chance(0.5) ? GW_MAC : Uint8Array.of(255, 255, 255, 255, 255, 255), GUEST_MAC, 0x0806, bytes(rng, rng.int(60)));
        } else {
          frame = eth(GW_MAC, GUEST_MAC, 0x0800, ipv4(GUEST, dst, 17, udp(GUEST, dst, rng.int(65536), rng.pick(ports), bytes(rng, rng.int(300)))));
          if (rng.chance(0.3)) frame[14 + rng.int(frame.length - 14)] ^= 1 << rng.int(8);
        }
        net.send(frame);
        if (i % 200 === 0) await new Promise((r) => setImmediate(r));
      }
      // Let connect attempts, retransmissions and aborts run out.
      await new Promise((r) => setTimeout(r, 500));
      expect(uncaught).toEqual([]);
      expect(logs.filter((l) => l.includes('frame handling failed'))).toEqual([]);
      const out = net.stats.framesToGuest;
      console.log(
        `fuzz user-net: ${FRAMES} frames (seed 0x${SEED.toString(16)}), ${out} frames back, ${net.tcp.connectionCount} TCP connections open, ` +
          `stats ${JSON.stringify(net.stats)}, tcp ${JSON.stringify(net.tcp.stats)}, dhcp ${JSON.stringify(net.dhcp.stats)}`,
      );
      expect(out).toBeGreaterThan(FRAMES / 20);

      // Still healthy: a clean connection through the NAT echoes.
      const c = new TestTcp(g, 41999, GW, echoPort);
      await c.connect();
      c.write(new TextEncoder().encode('still alive'));
      await c.until(() => c.receivedBytes === 11, 'the echo');
      expect(new TextDecoder().decode(c.data)).toBe('still alive');
      c.dispose();
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
      await net.close();
    }
  });
});
