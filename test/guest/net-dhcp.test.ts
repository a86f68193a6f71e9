/**
 * Networking out of the box: `nodevmm run --net user` (the real CLI, reference guest, interpreter) passes
 * `nodevmm.net=dhcp`, and /init's udhcpc with the guest's own event script configures eth0 without anyone typing
 * a command: 10.0.2.15/24, default route via 10.0.2.2, /etc/resolv.conf naming 10.0.2.3, one console line saying
 * so; busybox wget then fetches a page from an HTTP server this test runs on host loopback (10.0.2.2 in the guest).
 * Second boot: without the option (eth0 present on a silent socket backend, command line given with --append)
 * no udhcpc runs and eth0 has no address, but lo is up; udhcpc started by hand with the same event script and no
 * server reports "no lease" on the console once, however many times it retries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DHCP_BOUND_LINE, INIT_SHELL_LINE, REFERENCE_GUEST_CMDLINE } from '../../lib/guest/guest-protocol.js';
import { CliGuest } from './cli-guest.js';
import { referenceImages } from './guest-vm.js';
import { freePort, TestHttpServer } from './net-servers.js';

const images = referenceImages();
const skip = 'skip' in images ? images.skip : undefined;
if (skip) console.warn(`[guest-net dhcp] skipped: ${skip}`);

const PAGE = Buffer.from('fetched by the guest over DHCP-configured networking\n');

/** Guest processes named udhcpc, as `ps` lists them (busybox ps: PID USER TIME COMMAND). */
function udhcpcLines(ps: string): string[] {
  return ps.split('\n').filter((l) => /\budhcpc\b/.test(l) && !/grep/.test(l));
}

describe.skipIf(skip !== undefined)('nodevmm run --net user: the reference guest configures eth0 by DHCP (interp)', () => {
  const label = 'guest-net dhcp';
  let vm: CliGuest | undefined;
  let http: TestHttpServer;

  beforeAll(async () => {
    http = await TestHttpServer.start({ '/': PAGE });
    vm = CliGuest.start(['--accel', 'interp', '--memory', '256M', '--net', 'user'], label);
    await vm.shell();
    // Kernel messages would land in the middle of command output.
    await vm.ok('dmesg -n 1');
  }, 900_000);

  afterAll(async () => {
    vm?.kill();
    await http?.close();
  });

  it('the CLI put nodevmm.net=dhcp on the reference guest command line', async () => {
    // The VMM appends its own virtio_mmio.device= words after the CLI's command line.
    const cmdline = (await vm!.ok('cat /proc/cmdline')).trim();
    expect(cmdline.startsWith(`${REFERENCE_GUEST_CMDLINE} nodevmm.net=dhcp`), cmdline).toBe(true);
    expect(vm!.console.output).toContain('nodevmm-init: DHCP started on eth0');
  }, 120_000);

  it('eth0 gets 10.0.2.15/24, the default route via 10.0.2.2 and DNS 10.0.2.3 with no command typed', async () => {
    // udhcpc runs in the background: the shell may come up before the lease is applied, and the event script
    // sets the address, then the route, then resolv.conf. Poll until all three are there (or give up).
    const state = 'ip -4 addr show dev eth0; ip route; cat /etc/resolv.conf 2>/dev/null';
    const configured = (out: string): boolean =>
      /inet 10\.0\.2\.15\/24 /.test(out) && /^default via 10\.0\.2\.2 /m.test(out) && /^nameserver 10\.0\.2\.3$/m.test(out);
    let out = '';
    for (let attempt = 1; attempt <= 30; attempt++) {
      out = await vm!.ok(state);
      if (configured(out)) {
        vm!.progress(`eth0 configured (poll ${attempt})`);
        break;
      }
      await vm!.ok('sleep 2');
    }
    expect(out).toMatch(/inet 10\.0\.2\.15\/24 /);
    expect(out).toMatch(/^default via 10\.0\.2\.2 dev eth0 /m);
    expect(out).toMatch(/^nameserver 10\.0\.2\.3$/m);

    // The event script's one line for the VMM (its last action), printed once. Waiting for it also keeps it out
    // of later commands' output.
    await vm!.console.waitFor(DHCP_BOUND_LINE, 120_000);
    const bound = DHCP_BOUND_LINE.exec(vm!.console.output);
    expect(bound?.slice(1)).toEqual(['eth0', '10.0.2.15', '24', '10.0.2.2', '10.0.2.3']);
    expect(vm!.console.output.split('\n').filter((l) => DHCP_BOUND_LINE.test(l))).toHaveLength(1);

    // udhcpc stays to renew the lease: one per interface, with the guest's event script.
    const procs = udhcpcLines(await vm!.ok('ps'));
    expect(procs).toHaveLength(1);
    // ps cuts lines at the terminal width; the full command line is in /proc.
    const args = await vm!.ok(`tr '\\0' ' ' < /proc/${procs[0]!.trim().split(/\s+/)[0]}/cmdline`);
    expect(args).toMatch(/^udhcpc -f -i eth0 .*-s \/usr\/share\/udhcpc\/default\.script $/);
  }, 300_000);

  it('busybox wget fetches a page from a host HTTP server through 10.0.2.2', async () => {
    const page = await vm!.ok(`wget -q -O - http://10.0.2.2:${http.port}/`, 300_000);
    expect(page).toBe(PAGE.toString());
    expect(http.requests.map((r) => [r.method, r.url, r.remoteAddress])).toEqual([['GET', '/', '127.0.0.1']]);
  }, 300_000);

  it('powers off with status 0', async () => {
    expect(await vm!.powerOff()).toBe(0);
  }, 300_000);
});

describe.skipIf(skip !== undefined)('without nodevmm.net=dhcp the reference guest leaves ethN alone (interp)', () => {
  const label = 'guest-net no dhcp';
  let vm: CliGuest | undefined;

  beforeAll(async () => {
    // A listening socket backend nobody connects to: eth0 exists, and every frame it sends goes nowhere.
    const port = await freePort();
    vm = CliGuest.start([
      '--accel', 'interp', '--memory', '256M', '--net', `socket,listen=127.0.0.1:${port}`, '--append', REFERENCE_GUEST_CMDLINE,
    ], label);
    await vm.shell();
    await vm.ok('dmesg -n 1');
  }, 900_000);

  afterAll(() => vm?.kill());

  it('runs no udhcpc and gives eth0 no address, but brings lo up', async () => {
    const cmdline = (await vm!.ok('cat /proc/cmdline')).trim();
    expect(cmdline.startsWith(REFERENCE_GUEST_CMDLINE), cmdline).toBe(true);
    expect(cmdline).not.toContain('nodevmm.net');
    expect(udhcpcLines(await vm!.ok('ps'))).toEqual([]);
    expect(await vm!.ok('ip -4 addr show dev eth0')).not.toMatch(/inet /);
    expect(await vm!.ok('ip -4 addr show dev lo')).toMatch(/inet 127\.0\.0\.1\/8 /);
    expect(await vm!.ok('ping -c 1 -W 5 127.0.0.1')).toMatch(/1 packets transmitted, 1 packets received/);
    const before = vm!.console.output.slice(0, vm!.console.output.indexOf(INIT_SHELL_LINE));
    expect(before).not.toMatch(/DHCP/);
  }, 300_000);

  it('with no DHCP server the event script reports "no lease" once while udhcpc keeps retrying', async () => {
    const from = vm!.console.mark();
    await vm!.ok('udhcpc -f -i eth0 -t 2 -T 1 -A 2 -s /usr/share/udhcpc/default.script > /tmp/udhcpc.log 2>&1 & echo $! > /tmp/udhcpc.pid');
    await vm!.console.waitFor(/nodevmm-init: eth0 no DHCP lease yet/, 300_000, from);
    // Let it fail at least two more rounds (2 discovers + 2 s pause each), then count.
    let discovers = 0;
    for (let attempt = 0; attempt < 60 && discovers < 6; attempt++) {
      await vm!.ok('sleep 1');
      discovers = Number((await vm!.ok('grep -c "broadcasting discover" /tmp/udhcpc.log || true')).trim());
    }
    await vm!.ok('kill $(cat /tmp/udhcpc.pid)');
    vm!.progress(`udhcpc sent ${discovers} discovers without an answer`);
    expect(discovers).toBeGreaterThanOrEqual(6);
    const lines = vm!.console.output.slice(from).split('\n').filter((l) => l.includes('nodevmm-init: eth0 no DHCP lease yet'));
    expect(lines).toHaveLength(1);
    expect(await vm!.ok('ip -4 addr show dev eth0')).not.toMatch(/inet /);
  }, 600_000);

  it('powers off with status 0', async () => {
    expect(await vm!.powerOff()).toBe(0);
  }, 300_000);
});
