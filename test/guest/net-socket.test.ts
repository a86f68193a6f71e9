/**
 * Two real Linux guests (the reference guest on the interpreter, both in this process) joined by the socket
 * backend: VM A listens (`--net socket,listen=127.0.0.1:P`), VM B connects (`--net socket,connect=127.0.0.1:P`),
 * so their eth0s share one Ethernet segment carried over a host TCP connection. With static addresses
 * (10.77.0.1 and 10.77.0.2) they ping each other and send 64 KiB each way with busybox nc, checked by sha256.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './net-servers.js';
import { NetGuest, netGuestFiles } from './net-vm.js';

const label = 'guest-net socket';
const files = netGuestFiles();
const skip = 'skip' in files ? files.skip : undefined;
if (skip) console.warn(`[${label}] skipped: ${skip}`);

const A_IP = '10.77.0.1';
const B_IP = '10.77.0.2';
const A_MAC = '52:54:00:77:00:01';
const B_MAC = '52:54:00:77:00:02';

/** Sends a 64 KiB text file from `from` to `to` over TCP port `port` with nc; returns both sides' sha256. */
async function ncTransfer(from: NetGuest, to: NetGuest, toIp: string, port: number): Promise<{ sent: string; received: string; size: number }> {
  const sent = (await from.ok('dd if=/dev/urandom bs=1024 count=48 2>/dev/null | base64 | head -c 65536 > /tmp/send && sha256sum /tmp/send')).trim().split(/\s+/)[0]!;
  await to.ok(`rm -f /tmp/recv /tmp/nc.status; (nc -l -p ${port} > /tmp/recv; echo "nc exit $?" > /tmp/nc.status) > /dev/null 2>&1 & true`);
  await to.ok(`for i in $(seq 50); do netstat -ltn | grep -q ":${port} " && break; sleep 0.2; done; netstat -ltn | grep ":${port} "`);
  // nc shuts its sending side down at the end of its input; the listener then sees EOF and exits, and so does nc.
  await from.ok(`nc ${toIp} ${port} < /tmp/send`, 600_000);
  const out = (await to.ok('for i in $(seq 50); do [ -s /tmp/nc.status ] && break; sleep 0.2; done; cat /tmp/nc.status; wc -c < /tmp/recv; sha256sum /tmp/recv')).trim().split('\n');
  expect(out[0]).toBe('nc exit 0');
  return { sent, size: Number(out[1]), received: out[2]!.split(/\s+/)[0]! };
}

describe.skipIf(skip !== undefined)('two guests joined by the socket network backend (interp)', () => {
  let a: NetGuest | undefined;
  let b: NetGuest | undefined;

  beforeAll(async () => {
    if ('skip' in files) return;
    const port = await freePort();
    // The listening side must exist before the connecting side is created (connect is refused otherwise).
    a = await NetGuest.boot(files, { label: `${label} A`, nets: [`socket,listen=127.0.0.1:${port},mac=${A_MAC}`] });
    b = await NetGuest.boot(files, { label: `${label} B`, nets: [`socket,connect=127.0.0.1:${port},mac=${B_MAC}`] });
    const [ta, tb] = await Promise.all([a.shell(900_000), b.shell(900_000)]);
    a.progress(`both guests at the shell (A ${ta.toFixed(1)} s, B ${tb.toFixed(1)} s, booting side by side)`);
    await Promise.all([a.ok('dmesg -n 1'), b.ok('dmesg -n 1')]);
  }, 1_200_000);

  afterAll(async () => {
    await b?.kill();
    await a?.kill();
  });

  it('both guests see the MAC their --net mac= set, and configure static addresses on eth0', async () => {
    expect(await a!.run('cat /sys/class/net/eth0/address')).toContain(A_MAC);
    expect(await b!.run('cat /sys/class/net/eth0/address')).toContain(B_MAC);
    await a!.ok(`ip link set lo up && ip link set eth0 up && ip addr add ${A_IP}/24 dev eth0`);
    await b!.ok(`ip link set lo up && ip link set eth0 up && ip addr add ${B_IP}/24 dev eth0`);
    expect(await a!.run('ip -4 addr show dev eth0')).toContain(`inet ${A_IP}/24`);
    expect(await b!.run('ip -4 addr show dev eth0')).toContain(`inet ${B_IP}/24`);
  }, 300_000);

  it('they ping each other', async () => {
    const ab = await a!.ok(`ping -c 2 -W 10 ${B_IP}`, 300_000);
    expect(ab).toMatch(/2 packets transmitted, 2 packets received, 0% packet loss/);
    const ba = await b!.ok(`ping -c 2 -W 10 ${A_IP}`, 300_000);
    expect(ba).toMatch(/2 packets transmitted, 2 packets received, 0% packet loss/);
    // Real ARP across the segment: each learned the other's MAC.
    expect(await a!.run(`ip neigh show ${B_IP}`)).toContain(`lladdr ${B_MAC}`);
    expect(await b!.run(`ip neigh show ${A_IP}`)).toContain(`lladdr ${A_MAC}`);
  }, 600_000);

  it('64 KiB from B to A and from A to B with nc arrive intact', async () => {
    const t0 = performance.now();
    const ba = await ncTransfer(b!, a!, A_IP, 7001);
    expect(ba.size).toBe(65536);
    expect(ba.received).toBe(ba.sent);
    const ab = await ncTransfer(a!, b!, B_IP, 7002);
    expect(ab.size).toBe(65536);
    expect(ab.received).toBe(ab.sent);
    a!.progress(`2 x 64 KiB between the guests: ${((performance.now() - t0) / 1000).toFixed(1)} s wall (setup commands included)`);
  }, 1_200_000);

  it('both power off cleanly', async () => {
    const [ea, eb] = await Promise.all([a!.powerOff(300_000), b!.powerOff(300_000)]);
    expect(ea.reason).toBe('power-off');
    expect(eb.reason).toBe('power-off');
  }, 600_000);
});
