/**
 * virtio-net on a host TAP interface, with a real Linux guest (the reference guest on the interpreter): the test
 * creates a TAP at 192.168.124.1/24, boots the guest with `--net tap,ifname=...`, the guest takes 192.168.124.2/24;
 * the host pings the guest and the guest pings the host (the host learns the guest's MAC), the guest fetches
 * 256 KiB from a host HTTP server bound to the TAP address (sha256 checked), and a host client exchanges data
 * both ways with `nc -l` in the guest (no NAT: straight to 192.168.124.2). The interface is deleted afterwards.
 * Needs root, /dev/net/tun, ip(8), a ping and the native openTap(); otherwise skipped with the reason.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tapUnavailableReason } from '../../lib/net/tap-open.js';
import { exchange, sha256, TestHttpServer } from './net-servers.js';
import { NetGuest, netGuestFiles } from './net-vm.js';

const run = promisify(execFile);
const label = 'guest-net tap';
const files = netGuestFiles();
const HOST_IP = '192.168.124.1';
const GUEST_IP = '192.168.124.2';
const GUEST_MAC = '52:54:00:7a:90:02';
// Unique per test process, so parallel or leftover runs do not collide (IFNAMSIZ: at most 15 characters).
const ifname = `nvmtap${process.pid % 100000}`;

/** The host's ping: iputils if installed, else busybox's. */
function hostPing(): string[] | undefined {
  for (const p of ['/usr/bin/ping', '/bin/ping']) if (existsSync(p)) return [p];
  for (const b of ['/bin/busybox', '/usr/bin/busybox']) if (existsSync(b)) return [b, 'ping'];
  return undefined;
}
const ping = hostPing();

function skipReason(): string | undefined {
  if ('skip' in files) return files.skip;
  if (process.getuid?.() !== 0) return 'creating a TAP needs root';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (!['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some((p) => existsSync(p))) return 'no ip(8)';
  if (!ping) return 'no ping on the host (iputils-ping or busybox)';
  return tapUnavailableReason() ?? undefined;
}
const skip = skipReason();
if (skip) console.warn(`[${label}] skipped: ${skip}`);

describe.skipIf(skip !== undefined)('virtio-net on a TAP interface, in the reference guest (interp)', () => {
  let vm: NetGuest | undefined;
  let http: TestHttpServer | undefined;
  let tapCreated = false;
  const BODY = randomBytes(256 * 1024);

  beforeAll(async () => {
    if ('skip' in files) return;
    await run('ip', ['link', 'del', ifname]).catch(() => {}); // a leftover from a killed run with this pid
    await run('ip', ['tuntap', 'add', 'dev', ifname, 'mode', 'tap']);
    tapCreated = true;
    await run('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', ifname]);
    await run('ip', ['link', 'set', ifname, 'up']);
    http = await TestHttpServer.start({ '/body': BODY }, HOST_IP);
    vm = await NetGuest.boot(files, { label, nets: [`tap,ifname=${ifname},mac=${GUEST_MAC}`] });
    const seconds = await vm.shell();
    vm.progress(`boot to shell took ${seconds.toFixed(1)} s`);
    await vm.ok('dmesg -n 1');
  }, 900_000);

  afterAll(async () => {
    await vm?.kill();
    await http?.close();
    if (tapCreated) await run('ip', ['link', 'del', ifname]).catch((e: Error) => console.warn(`[${label}] could not delete ${ifname}: ${e.message}`));
  });

  it(`the guest configures ${GUEST_IP}/24 on eth0 and the link is up on both sides`, async () => {
    await vm!.ok(`ip link set lo up && ip link set eth0 up && ip addr add ${GUEST_IP}/24 dev eth0`);
    expect(await vm!.run('ip -4 addr show dev eth0')).toMatch(new RegExp(`inet ${GUEST_IP.replace(/\./g, '\\.')}/24 `));
    const { stdout } = await run('ip', ['link', 'show', ifname]);
    // LOWER_UP on the TAP means a process (the VMM) holds it open.
    expect(stdout).toMatch(/LOWER_UP/);
  }, 300_000);

  it('the host pings the guest, and learns its MAC', async () => {
    const { stdout } = await run(ping![0]!, [...ping!.slice(1), '-c', '2', '-W', '5', GUEST_IP], { timeout: 120_000 });
    vm!.progress(`host ping: ${stdout.trim().split('\n').slice(-2).join(' / ')}`);
    expect(stdout).toMatch(/2 packets transmitted, 2 (packets )?received/);
    const neigh = await run('ip', ['neigh', 'show', GUEST_IP, 'dev', ifname]);
    expect(neigh.stdout).toContain(`lladdr ${GUEST_MAC}`);
  }, 300_000);

  it('the guest pings the host', async () => {
    const out = await vm!.ok(`ping -c 2 -W 5 ${HOST_IP}`);
    expect(out).toMatch(/2 packets transmitted, 2 packets received, 0% packet loss/);
  }, 300_000);

  it('the guest fetches 256 KiB from a host HTTP server on the TAP address', async () => {
    const t0 = performance.now();
    const out = await vm!.ok(`wget -q -O /tmp/body http://${HOST_IP}:${http!.port}/body && wc -c < /tmp/body && sha256sum /tmp/body`, 600_000);
    vm!.progress(`256 KiB over the TAP (download + guest sha256sum): ${((performance.now() - t0) / 1000).toFixed(1)} s wall`);
    const [size, hashLine] = out.trim().split('\n');
    expect(Number(size)).toBe(BODY.length);
    expect(hashLine!.split(/\s+/)[0]).toBe(sha256(BODY));
    const req = http!.requests.find((r) => r.url === '/body');
    expect(req?.remoteAddress).toBe(GUEST_IP);
  }, 600_000);

  it('a host client exchanges data both ways with `nc -l` in the guest', async () => {
    const toGuest = randomBytes(64 * 1024);
    const prepared = await vm!.ok('dd if=/dev/urandom bs=1024 count=24 2>/dev/null | base64 | head -c 32768 > /tmp/reply && sha256sum /tmp/reply');
    await vm!.ok('(nc -l -p 7000 < /tmp/reply > /tmp/fromhost; echo "nc exit $?" > /tmp/nc.status) > /dev/null 2>&1 & true');
    await vm!.ok('for i in $(seq 50); do netstat -ltn | grep -q ":7000 " && break; sleep 0.2; done; netstat -ltn | grep ":7000 "');
    const fromGuest = await exchange(GUEST_IP, 7000, toGuest, 32768);
    expect(sha256(fromGuest)).toBe(prepared.trim().split(/\s+/)[0]);
    const status = await vm!.ok('for i in $(seq 50); do [ -s /tmp/nc.status ] && break; sleep 0.2; done; cat /tmp/nc.status; sha256sum /tmp/fromhost');
    const [ncExit, hashLine] = status.trim().split('\n');
    expect(ncExit).toBe('nc exit 0');
    expect(hashLine!.split(/\s+/)[0]).toBe(sha256(toGuest));
  }, 600_000);

  it('powers off cleanly', async () => {
    const exit = await vm!.powerOff();
    expect(exit.reason).toBe('power-off');
    expect(exit.status).toBe(0);
  }, 300_000);
});
