/**
 * TAP backend against the host kernel, and the user-mode network against a real Linux network stack: a TAP
 * moved into a private network namespace plays the guest, busybox udhcpc/wget/nslookup/httpd run inside it.
 * Needs root, /dev/net/tun, `ip`, and the native openTap() and PacketFd (NODEVMM_TEST_TAP_ADDON=/path/to/a .node
 * exporting openTap with the same contract replaces only the opener; frames still go through this addon's
 * PacketFd); otherwise skipped with the reason.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpGet, createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { TapBackend } from '../../lib/net/tap.js';
import { setTapOpener, tapUnavailableReason, type TapOpener } from '../../lib/net/tap-open.js';
import { UserNetwork } from '../../lib/net/user/user-network.js';
import { GUEST_MAC, eth, ip, ipv4, parseRx } from './guest-stack.js';

const run = promisify(execFile);
const addon = process.env['NODEVMM_TEST_TAP_ADDON'];
if (addon) setTapOpener((createRequire(import.meta.url)(addon) as { openTap: TapOpener }).openTap);

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (!existsSync('/usr/sbin/ip') && !existsSync('/sbin/ip') && !existsSync('/usr/bin/ip')) return 'no ip(8)';
  return tapUnavailableReason();
}
const reason = skipReason();
if (reason) console.warn(`skipping TAP tests: ${reason}`);
const hasBusybox = existsSync('/usr/bin/busybox') || existsSync('/bin/busybox');
if (!reason && !hasBusybox) console.warn('skipping the real-Linux-guest TAP test: busybox is not installed');

const cleanups: Array<() => Promise<unknown> | void> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
});

const sha = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(reason !== null)('TAP backend', () => {
  it('the host kernel answers ARP and ping sent through a TAP at 192.168.123.1/24', async () => {
    const tap = TapBackend.open(`nvt${process.pid % 100000}`);
    cleanups.push(() => run('ip', ['link', 'del', tap.ifname]), () => tap.close());
    await run('ip', ['addr', 'add', '192.168.123.1/24', 'dev', tap.ifname]);
    await run('ip', ['link', 'set', tap.ifname, 'up']);
    const got: ReturnType<typeof parseRx>[] = [];
    tap.onFrame((f) => got.push(parseRx(f)));
    const me = ip('192.168.123.2');
    const host = ip('192.168.123.1');
    tap.send(eth(Uint8Array.of(255, 255, 255, 255, 255, 255), GUEST_MAC, 0x0806, Uint8Array.from([0, 1, 8, 0, 6, 4, 0, 1, ...GUEST_MAC, 192, 168, 123, 2, 0, 0, 0, 0, 0, 0, 192, 168, 123, 1])));
    await until(() => got.some((p) => p.type === 0x0806 && p.frame[21] === 2), 'the kernel ARP reply');
    const arp = got.find((p) => p.type === 0x0806 && p.frame[21] === 2)!;
    expect(Array.from(arp.frame.subarray(28, 32))).toEqual([192, 168, 123, 1]);
    const hostMac = arp.frame.slice(22, 28);
    const icmp = Uint8Array.from([8, 0, 0, 0, 0x77, 0x01, 0, 1, ...new TextEncoder().encode('nodevmm tap ping')]);
    let s = 0;
    for (let i = 0; i < icmp.length; i += 2) s += (icmp[i]! << 8) | (icmp[i + 1] ?? 0);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    icmp[2] = (~s >>> 8) & 255;
    icmp[3] = ~s & 255;
    tap.send(eth(hostMac, GUEST_MAC, 0x0800, ipv4(me, host, 1, icmp)));
    await until(() => got.some((p) => p.proto === 1 && p.l4[0] === 0), 'the echo reply');
    const reply = got.find((p) => p.proto === 1 && p.l4[0] === 0)!;
    expect(reply.src).toBe(host);
    expect(new TextDecoder().decode(reply.l4.subarray(8))).toBe('nodevmm tap ping');
    expect(tap.stats.framesSent).toBe(2);
  });

  describe.skipIf(!hasBusybox)('user-mode network with a real Linux stack (network namespace) as the guest', () => {
    it('udhcpc gets a lease; wget, nslookup and ping go through the NAT; hostfwd reaches busybox httpd', { timeout: 120_000 }, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'nodevmm-tap-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const big = Buffer.alloc(1 << 20);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >>> 9)) & 255;
      const server = createHttpServer((_q, res) => res.end(big));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
      const fakeDns = createSocket('udp4');
      fakeDns.on('message', (m, r) => {
        const resp = Buffer.from(m);
        resp[2] = 0x81;
        resp[3] = 0x80;
        resp.writeUInt16BE(0, 10); // drop any additional (EDNS) record count we do not echo
        const qEnd = 12 + m.subarray(12).indexOf(0) + 5;
        const answer = m.readUInt16BE(qEnd - 4) === 1 ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 77]) : Buffer.alloc(0);
        resp.writeUInt16BE(answer.length ? 1 : 0, 6);
        fakeDns.send(Buffer.concat([resp.subarray(0, qEnd), answer]), r.port, r.address);
      });
      await new Promise<void>((r) => fakeDns.bind(0, '127.0.0.1', r));
      cleanups.push(() => new Promise<void>((r) => fakeDns.close(() => r())));

      const logs: string[] = [];
      const net = await UserNetwork.create({
        hostForwards: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 0, guestAddress: undefined, guestPort: 8080 }],
        dnsServers: [`127.0.0.1:${fakeDns.address().port}`],
        log: (m) => logs.push(m),
      });
      cleanups.push(() => net.close());
      const tap = TapBackend.open('');
      cleanups.push(() => tap.close());
      tap.onFrame((f) => net.send(f));
      net.onFrame((f) => tap.send(f));

      const ns = `nodevmm-${process.pid}`;
      await run('ip', ['netns', 'add', ns]);
      cleanups.push(() => run('ip', ['netns', 'del', ns]));
      await run('ip', ['link', 'set', 'dev', tap.ifname, 'netns', ns]);
      const inNs = (cmd: string[], opts: { timeout?: number } = {}) =>
        run('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'buffer', maxBuffer: 8 << 20, timeout: opts.timeout ?? 30_000 });
      await inNs(['ip', 'link', 'set', 'lo', 'up']);
      await inNs(['ip', 'link', 'set', tap.ifname, 'up']);

      // DHCP with busybox udhcpc; the script records the lease and configures the interface.
      const script = join(dir, 'udhcpc.sh');
      await writeFile(script, `#!/bin/sh\nenv > ${dir}/env.$1\nif [ "$1" = bound ]; then ip addr add $ip/$mask dev $interface && ip route add default via $router; fi\n`);
      await chmod(script, 0o755);
      await inNs(['busybox', 'udhcpc', '-i', tap.ifname, '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script]);
      const env = Object.fromEntries((await readFile(join(dir, 'env.bound'), 'utf8')).split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      expect(env).toMatchObject({ ip: '10.0.2.15', router: '10.0.2.2', dns: '10.0.2.3', subnet: '255.255.255.0', mask: '24', lease: '86400', serverid: '10.0.2.2' });

      // ICMP echo to the gateway.
      const ping = await inNs(['busybox', 'ping', '-c', '2', '-W', '2', '10.0.2.2']);
      expect(ping.stdout.toString()).toMatch(/2 packets received/);

      // DNS through the forwarder to the fake upstream.
      const ns1 = await inNs(['busybox', 'nslookup', '-type=a', 'nodevmm.test', '10.0.2.3']);
      expect(ns1.stdout.toString()).toMatch(/192\.0\.2\.77/);

      // 1 MiB over the TCP NAT, guest kernel TCP against ours: 10.0.2.2 is the host loopback.
      const port = (server.address() as AddressInfo).port;
      const t0 = process.hrtime.bigint();
      const w = await inNs(['busybox', 'wget', '-q', '-O', '-', `http://10.0.2.2:${port}/big`]);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      expect(w.stdout.length).toBe(big.length);
      expect(sha(w.stdout)).toBe(sha(big));
      console.log(`tap: 1 MiB through the TCP NAT into a Linux guest stack in ${ms.toFixed(0)} ms (${(1 / (ms / 1000)).toFixed(1)} MiB/s, incl. wget start-up)`);

      // hostfwd: a host connection to 127.0.0.1:HOSTPORT reaches busybox httpd in the namespace.
      const www = join(dir, 'www');
      await run('mkdir', ['-p', www]);
      const page = Buffer.from('served from inside the namespace\n'.repeat(3000));
      await writeFile(join(www, 'page.txt'), page);
      const httpd: ChildProcess = spawn('ip', ['netns', 'exec', ns, 'busybox', 'httpd', '-f', '-p', '8080', '-h', www], { stdio: 'ignore' });
      cleanups.push(() => {
        httpd.kill();
      });
      const hostPort = net.forwardedPorts()[0]!.hostPort;
      let fetched: Buffer | undefined;
      for (let attempt = 0; attempt < 50 && !fetched; attempt++) {
        fetched = await new Promise<Buffer | undefined>((resolve) => {
          const req = httpGet({ host: '127.0.0.1', port: hostPort, path: '/page.txt' }, (res) => {
            const parts: Buffer[] = [];
            res.on('data', (d) => parts.push(d));
            res.on('end', () => resolve(res.statusCode === 200 ? Buffer.concat(parts) : undefined));
            res.on('error', () => resolve(undefined));
          });
          req.on('error', () => resolve(undefined));
        });
        if (!fetched) await new Promise((r) => setTimeout(r, 100));
      }
      expect(fetched && sha(fetched)).toBe(sha(page));
      await until(() => net.tcp.connectionCount === 0, 'all NAT connections to finish');
    });
  });
});
