/**
 * The native openTap() (native/tap.cc) against the host kernel: its contract (fd, kernel-chosen names, Node-style
 * errors), and a real exchange — ARP and an ICMP echo built by the test, sent through lib/net's TapBackend on
 * the native fd, answered by the host's own network stack. Needs root and /dev/net/tun (skipped with the reason
 * otherwise). Every interface the test creates is deleted again.
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, fstatSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative, type NativeTapHandle } from '../../lib/kvm/native.js';
import { TapBackend } from '../../lib/net/tap.js';
import { GUEST_MAC, eth, ip, ipv4, parseRx, type RxPacket } from './guest-stack.js';

const run = promisify(execFile);

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root (TUNSETIFF needs CAP_NET_ADMIN)';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  try {
    if (typeof loadNative().openTap !== 'function') return 'the native addon has no openTap() (rebuild it: npx node-gyp rebuild)';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  return null;
}
const reason = skipReason();
if (reason) console.warn(`skipping native TAP tests: ${reason}`);

const created: string[] = [];
afterAll(async () => {
  for (const name of created) await run('ip', ['link', 'del', name]).catch(() => {});
});

async function linkExists(name: string): Promise<boolean> {
  try {
    await run('ip', ['-o', 'link', 'show', 'dev', name]);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function openTap(name: string): NativeTapHandle {
  const h = loadNative().openTap!(name);
  created.push(h.ifname);
  return h;
}

describe.skipIf(reason !== null)('native openTap()', () => {
  it('lets the kernel pick a name, and the interface lives exactly as long as the fd', async () => {
    const h = openTap('');
    expect(h.fd).toBeGreaterThan(2);
    expect(h.ifname).toMatch(/^tap\d+$/);
    expect(fstatSync(h.fd).isCharacterDevice()).toBe(true);
    expect(await linkExists(h.ifname)).toBe(true);
    closeSync(h.fd);
    expect(await linkExists(h.ifname)).toBe(false);
  });

  it('throws Node-style errors with code, errno and syscall', () => {
    const native = loadNative().openTap!;
    // "lo" exists and is not a TAP: TUNSETIFF refuses it.
    expect(() => native('lo')).toThrow(expect.objectContaining({ code: 'EINVAL', errno: -22, syscall: 'ioctl', path: 'lo' }));
    expect(() => native('a/b')).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'ioctl' }));
    expect(() => native('x'.repeat(16))).toThrow(RangeError);
    expect(() => (native as unknown as (n: unknown) => unknown)(7)).toThrow(TypeError);
  });

  it('the host kernel answers ARP and an ICMP echo sent through TapBackend on the native fd', async () => {
    const h = openTap(`nvn${process.pid % 100000}`);
    expect(h.ifname).toBe(`nvn${process.pid % 100000}`);
    const logs: string[] = [];
    const tap = TapBackend.fromFd(h.fd, h.ifname, { log: (m) => logs.push(m) });
    try {
      await run('ip', ['addr', 'add', '192.168.123.1/24', 'dev', h.ifname]);
      await run('ip', ['link', 'set', h.ifname, 'up']);
      const got: RxPacket[] = [];
      tap.onFrame((f) => got.push(parseRx(f)));
      const me = ip('192.168.123.2');
      const host = ip('192.168.123.1');

      const arpRequest = Uint8Array.from([0, 1, 8, 0, 6, 4, 0, 1, ...GUEST_MAC, 192, 168, 123, 2, 0, 0, 0, 0, 0, 0, 192, 168, 123, 1]);
      tap.send(eth(Uint8Array.of(255, 255, 255, 255, 255, 255), GUEST_MAC, 0x0806, arpRequest));
      const isArpReply = (p: RxPacket): boolean => p.type === 0x0806 && p.frame[21] === 2;
      await until(() => got.some(isArpReply), 'the kernel ARP reply');
      const arp = got.find(isArpReply)!;
      expect(Array.from(arp.frame.subarray(28, 32))).toEqual([192, 168, 123, 1]); // sender IP
      expect(Array.from(arp.frame.subarray(32, 38))).toEqual(Array.from(GUEST_MAC)); // target MAC
      const hostMac = arp.frame.slice(22, 28);

      const payload = new TextEncoder().encode('native openTap echo');
      const icmp = Uint8Array.from([8, 0, 0, 0, 0x12, 0x34, 0, 7, ...payload]);
      let sum = 0;
      for (let i = 0; i < icmp.length; i += 2) sum += (icmp[i]! << 8) | (icmp[i + 1] ?? 0);
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      icmp[2] = (~sum >>> 8) & 255;
      icmp[3] = ~sum & 255;
      tap.send(eth(hostMac, GUEST_MAC, 0x0800, ipv4(me, host, 1, icmp)));
      const isEchoReply = (p: RxPacket): boolean => p.proto === 1 && p.l4[0] === 0;
      await until(() => got.some(isEchoReply), 'the ICMP echo reply');
      const reply = got.find(isEchoReply)!;
      expect(reply.src).toBe(host);
      expect(reply.dst).toBe(me);
      expect(Array.from(reply.l4.subarray(4, 8))).toEqual([0x12, 0x34, 0, 7]); // identifier and sequence echoed
      expect(new TextDecoder().decode(reply.l4.subarray(8))).toBe('native openTap echo');
    } finally {
      await tap.close();
    }
    // The backend owned the fd: closing it removed the (non-persistent) interface at once, with no error logged.
    expect(await linkExists(h.ifname)).toBe(false);
    expect(logs).toEqual([]);
  });
});
