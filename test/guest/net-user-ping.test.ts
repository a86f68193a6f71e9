/**
 * `ping` from a real Linux guest (the reference guest on the interpreter, busybox ping) to an address outside
 * the user-mode network: this host's own non-loopback IPv4 address, which the host kernel answers through the
 * user network's host ICMP socket. Skipped with the reason when the guest files, the addon's IcmpSocket, a usable
 * ICMP socket (ping_group_range or CAP_NET_RAW) or a non-loopback host address are missing.
 */
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNative } from '../../lib/kvm/native.js';
import { NetGuest, netGuestFiles } from './net-vm.js';

const label = 'guest-net ping';
const files = netGuestFiles();
const hostAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

function icmpSkip(): string | undefined {
  try {
    const ctor = loadNative().IcmpSocket;
    if (typeof ctor !== 'function') return 'the native addon has no IcmpSocket (rebuild it: npm run build:native)';
    new ctor('auto').close();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
const skip = 'skip' in files ? files.skip : icmpSkip() ?? (hostAddress ? undefined : 'this host has no non-loopback IPv4 address');
if (skip) console.warn(`[${label}] skipped: ${skip}`);

describe.skipIf(skip !== undefined)('ping from the reference guest through the user-mode network (interp)', () => {
  let vm: NetGuest | undefined;

  beforeAll(async () => {
    if ('skip' in files) return;
    vm = await NetGuest.boot(files, { label, nets: ['user'], userNet: { dnsServers: [] } });
    const seconds = await vm.shell();
    vm.progress(`boot to shell took ${seconds.toFixed(1)} s`);
    await vm.ok('dmesg -n 1');
    expect(await vm.dhcp()).toMatch(/lease: bound ip=10\.0\.2\.15 /);
  }, 900_000);

  afterAll(async () => {
    await vm?.kill();
  });

  it(`ping -c 2 to the host's address is answered`, async () => {
    const out = await vm!.ok(`ping -c 2 -W 5 ${hostAddress}`);
    vm!.progress(out.trim().split('\n').pop() ?? '');
    expect(out).toMatch(new RegExp(`bytes from ${hostAddress!.replace(/\./g, '\\.')}: seq=0 ttl=\\d+`));
    expect(out).toMatch(/2 packets transmitted, 2 packets received, 0% packet loss/);
  }, 180_000);
});
