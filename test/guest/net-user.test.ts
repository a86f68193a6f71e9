/**
 * virtio-net on the rootless user-mode network, as a real Linux guest (the reference guest on the interpreter)
 * uses it: udhcpc gets 10.0.2.15 from the built-in DHCP server; busybox wget fetches pages (6 bytes, 256 KiB
 * checked by sha256, 2 MiB counted and timed) from an HTTP server this test runs on host loopback, reached as
 * 10.0.2.2; the guest uploads 256 KiB (base64 text: busybox wget posts files as C strings) and the host checks
 * the hash; names resolve through 10.0.2.3 against a DNS server this test runs (A record, NXDOMAIN, and wget by
 * name); the gateway answers ping; and two hostfwd rules carry host connections into the guest: raw TCP both
 * ways to `nc -l` (128 KiB from the host, 64 KiB back, hashed on both sides) and an HTTP GET from busybox httpd.
 * One boot; every check is its own test, in order.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, freePort, httpGet, sha256, TestDnsServer, TestHttpServer } from './net-servers.js';
import { NetGuest, netGuestFiles } from './net-vm.js';

const files = netGuestFiles();
const skip = 'skip' in files ? files.skip : undefined;
const label = 'guest-net user';
if (skip) console.warn(`[${label}] skipped: ${skip}`);

const SMALL = Buffer.from('hello from the host\n');
const MEDIUM = randomBytes(256 * 1024);
const LARGE = randomBytes(2 * 1024 * 1024);

describe.skipIf(skip !== undefined)('virtio-net, user-mode network, in the reference guest (interp)', () => {
  let vm: NetGuest | undefined;
  let http: TestHttpServer;
  let dns: TestDnsServer;
  let ncPort: number;
  let httpdPort: number;

  beforeAll(async () => {
    if ('skip' in files) return;
    http = await TestHttpServer.start({ '/': SMALL, '/medium': MEDIUM, '/large': LARGE });
    dns = await TestDnsServer.start({ 'web.nodevmm.test': '10.0.2.2', 'other.nodevmm.test': '192.0.2.77' });
    ncPort = await freePort();
    httpdPort = await freePort();
    vm = await NetGuest.boot(files, {
      label,
      nets: [`user,hostfwd=tcp:127.0.0.1:${ncPort}-:7000,hostfwd=tcp:127.0.0.1:${httpdPort}-:8080`],
      userNet: { dnsServers: [`127.0.0.1:${dns.port}`] },
    });
    const seconds = await vm.shell();
    vm.progress(`boot to shell took ${seconds.toFixed(1)} s`);
    // Kernel messages (e.g. "random: crng init done") would land in the middle of command output.
    await vm.ok('dmesg -n 1');
  }, 900_000);

  afterAll(async () => {
    await vm?.kill();
    await http?.close();
    await dns?.close();
  });

  it('udhcpc gets 10.0.2.15/24, router 10.0.2.2 and DNS 10.0.2.3 from the DHCP server', async () => {
    const out = await vm!.dhcp();
    vm!.progress(`udhcpc: ${out.trim().split('\n').filter((l) => l.startsWith('udhcpc: lease')).join('')}`);
    expect(out).toMatch(/lease: bound ip=10\.0\.2\.15 subnet=255\.255\.255\.0 router=10\.0\.2\.2 dns=10\.0\.2\.3 lease=\d+/);
    expect(await vm!.run('ip -4 addr show dev eth0')).toMatch(/inet 10\.0\.2\.15\/24 /);
    expect(await vm!.run('ip route')).toMatch(/^default via 10\.0\.2\.2 dev eth0/m);
    expect((await vm!.run('cat /etc/resolv.conf')).trim()).toBe('nameserver 10.0.2.3');
    expect(await vm!.run('cat /sys/class/net/eth0/address')).toBe('52:54:00:12:34:56\n');
  }, 300_000);

  it('the gateway answers ping', async () => {
    const out = await vm!.ok('ping -c 2 -W 5 10.0.2.2');
    expect(out).toMatch(/2 packets transmitted, 2 packets received, 0% packet loss/);
  }, 120_000);

  it('wget fetches a page, 256 KiB (sha256) and 2 MiB (size) from a host HTTP server via 10.0.2.2', async () => {
    const small = await vm!.ok(`wget -q -O - http://10.0.2.2:${http.port}/`);
    expect(small).toBe(SMALL.toString());

    const medium = await vm!.ok(`wget -q -O /tmp/medium http://10.0.2.2:${http.port}/medium && wc -c < /tmp/medium && sha256sum /tmp/medium`);
    const [size, hash] = medium.trim().split('\n');
    expect(Number(size)).toBe(MEDIUM.length);
    expect(hash!.split(/\s+/)[0]).toBe(sha256(MEDIUM));

    const t0 = performance.now();
    const large = await vm!.ok(`wget -q -O - http://10.0.2.2:${http.port}/large | wc -c`, 600_000);
    const seconds = (performance.now() - t0) / 1000;
    expect(Number(large.trim())).toBe(LARGE.length);
    vm!.progress(`2 MiB download to the guest: ${seconds.toFixed(1)} s wall (${(LARGE.length / 1024 / seconds).toFixed(0)} KiB/s, console round trip included)`);

    // The server saw the guest's requests from the host's loopback, made by busybox wget.
    const gets = http.requests.filter((r) => r.method === 'GET');
    expect(gets.map((r) => r.url)).toEqual(['/', '/medium', '/large']);
    for (const r of gets) {
      expect(r.remoteAddress).toBe('127.0.0.1');
      expect(r.userAgent).toMatch(/wget/i);
    }
  }, 900_000);

  it('the guest uploads 256 KiB (base64) with wget --post-file; the host receives it intact', async () => {
    const out = await vm!.ok('dd if=/dev/urandom of=/tmp/up.bin bs=1024 count=256 2>/dev/null && base64 /tmp/up.bin > /tmp/up.b64 && sha256sum /tmp/up.b64');
    const guestHash = out.trim().split(/\s+/)[0];
    const reply = await vm!.ok(`wget -q -O - --post-file /tmp/up.b64 http://10.0.2.2:${http.port}/upload`, 600_000);
    const post = http.requests.find((r) => r.method === 'POST');
    expect(post).toBeDefined();
    expect(post!.url).toBe('/upload');
    // 256 KiB is 349,528 base64 characters, plus line breaks.
    expect(post!.body.length).toBeGreaterThan(349_528);
    expect(sha256(post!.body)).toBe(guestHash);
    expect(reply.trim()).toBe(guestHash);
  }, 600_000);

  it('names resolve through 10.0.2.3 against the test DNS server (A record, NXDOMAIN, wget by name)', async () => {
    const a = await vm!.ok('nslookup other.nodevmm.test');
    expect(a).toMatch(/Server:\s+10\.0\.2\.3/);
    expect(a).toMatch(/Name:\s+other\.nodevmm\.test\s+Address:\s+192\.0\.2\.77/);
    const missing = await vm!.status('nslookup missing.nodevmm.test');
    expect(missing.status).not.toBe(0);
    expect(missing.output).toMatch(/NXDOMAIN/);
    expect(await vm!.ok(`wget -q -O - http://web.nodevmm.test:${http.port}/`)).toBe(SMALL.toString());

    const names = dns.queries.filter((q) => q.type === 1).map((q) => q.name);
    expect(names).toEqual(expect.arrayContaining(['other.nodevmm.test', 'missing.nodevmm.test', 'web.nodevmm.test']));
    // The forwarder asked from the host (the test server listens on loopback only).
    for (const q of dns.queries) expect(q.from).toMatch(/^127\.0\.0\.1:/);
  }, 300_000);

  it('hostfwd: a host client exchanges data both ways with `nc -l` in the guest', async () => {
    const toGuest = randomBytes(128 * 1024);
    // Guest → host: 64 KiB of text, known by hash.
    const prepared = await vm!.ok('dd if=/dev/urandom bs=1024 count=48 2>/dev/null | base64 | head -c 65536 > /tmp/reply && wc -c < /tmp/reply && sha256sum /tmp/reply');
    const [replySize, replyHashLine] = prepared.trim().split('\n');
    expect(Number(replySize)).toBe(65536);
    await vm!.ok('(nc -l -p 7000 < /tmp/reply > /tmp/fromhost; echo "nc exit $?" > /tmp/nc.status) > /dev/null 2>&1 & true');
    // Wait until the listener is up before connecting (otherwise the guest would answer with a reset).
    await vm!.ok('for i in $(seq 50); do netstat -ltn | grep -q ":7000 " && break; sleep 0.2; done; netstat -ltn | grep ":7000 "');

    const t0 = performance.now();
    const fromGuest = await exchange('127.0.0.1', ncPort, toGuest, 65536);
    vm!.progress(`hostfwd exchange (128 KiB in, 64 KiB out): ${((performance.now() - t0) / 1000).toFixed(1)} s wall`);
    expect(fromGuest.length).toBe(65536);
    expect(sha256(fromGuest)).toBe(replyHashLine!.split(/\s+/)[0]);

    const status = await vm!.ok('for i in $(seq 50); do [ -s /tmp/nc.status ] && break; sleep 0.2; done; cat /tmp/nc.status; wc -c < /tmp/fromhost; sha256sum /tmp/fromhost');
    const [ncExit, size, hashLine] = status.trim().split('\n');
    expect(ncExit).toBe('nc exit 0');
    expect(Number(size)).toBe(toGuest.length);
    expect(hashLine!.split(/\s+/)[0]).toBe(sha256(toGuest));
  }, 600_000);

  it('hostfwd: a host HTTP request reaches busybox httpd in the guest', async () => {
    await vm!.ok('mkdir -p /www && echo "served by the guest" > /www/index.html && httpd -p 8080 -h /www');
    await vm!.ok('for i in $(seq 50); do netstat -ltn | grep -q ":8080 " && break; sleep 0.2; done; netstat -ltn | grep ":8080 "');
    const res = await httpGet('127.0.0.1', httpdPort, '/index.html');
    expect(res.status).toBe(200);
    expect(res.body).toBe('served by the guest\n');
    expect((await httpGet('127.0.0.1', httpdPort, '/nothing-here')).status).toBe(404);
  }, 300_000);

  it('powers off cleanly', async () => {
    const exit = await vm!.powerOff();
    expect(exit.reason).toBe('power-off');
    expect(exit.status).toBe(0);
  }, 300_000);
});
