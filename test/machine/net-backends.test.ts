/**
 * `nets` in the machine configuration: every --net kind lib/net offers (user, tap, socket) becomes a virtio-net
 * device whose backend really exists on the host (a listening/connected TCP socket, a TAP interface), and bad
 * specifications are refused naming the field. The guest is a small multiboot kernel that is never started:
 * this is about device and backend setup, the virtio-net data path has its own tests in test/virtio and test/net.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { probeKvm } from '../../lib/kvm/index.js';
import { ConfigError, validateMachineConfig } from '../../lib/machine/config.js';
import { MMIO_DEVICE_SLOT_SIZE, MMIO_DEVICE_WINDOW_START } from '../../lib/machine/layout.js';
import { Machine } from '../../lib/machine/machine.js';
import { tapUnavailableReason } from '../../lib/net/tap-open.js';
import { multibootElf, printAndExitCode } from './test-kernels.js';

const run = promisify(execFile);
const VIRTIO_MAGIC = 0x74726976; // "virt"
const VIRTIO_ID_NET = 1;

const dir = mkdtempSync(join(tmpdir(), 'nodevmm-nets-'));
const kernel = join(dir, 'exit.elf');
writeFileSync(kernel, multibootElf(printAndExitCode('unused\n', 0)));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Either accelerator will do (nothing runs); the interpreter is the fallback where /dev/kvm is unusable.
const accel = probeKvm().usable ? 'kvm' : 'interp';

async function machineWith(nets: string[]): Promise<Machine> {
  return Machine.create(validateMachineConfig({ memoryMiB: 32, kernel, serial: 'none', cmdline: '', accel, nets }));
}

/** The virtio device ID in virtio-mmio slot `slot` (register 0x008), after checking the magic value. */
function deviceIdInSlot(m: Machine, slot: number): number {
  const base = MMIO_DEVICE_WINDOW_START + slot * MMIO_DEVICE_SLOT_SIZE;
  expect(m.mmio.read(base, 4) >>> 0).toBe(VIRTIO_MAGIC);
  return m.mmio.read(base + 8, 4);
}

describe('machine network backends (--net)', () => {
  it('socket,listen= accepts a peer; socket,connect= reaches a listener; user still works', async () => {
    // A free port for the listening side: bind, note, release.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const listenPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));

    const peers: Socket[] = [];
    const server = createServer((s) => peers.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const connectPort = (server.address() as AddressInfo).port;

    const m = await machineWith([`socket,listen=127.0.0.1:${listenPort}`, `socket,connect=127.0.0.1:${connectPort}`, 'user']);
    try {
      expect([0, 1, 2].map((slot) => deviceIdInSlot(m, slot))).toEqual([VIRTIO_ID_NET, VIRTIO_ID_NET, VIRTIO_ID_NET]);
      expect(m.cmdline.match(/virtio_mmio\.device=/g)?.length).toBe(3);
      // The connecting backend connected to our server...
      await new Promise<void>((resolve, reject) => {
        const t0 = Date.now();
        const poll = (): void => { if (peers.length > 0) resolve(); else if (Date.now() - t0 > 10_000) reject(new Error('no connection')); else setTimeout(poll, 10); };
        poll();
      });
      // ...and the listening one accepts ours.
      const c = connect({ host: '127.0.0.1', port: listenPort });
      await new Promise<void>((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
      c.destroy();
    } finally {
      await m.stop();
      for (const p of peers) p.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('refuses bad specifications naming the field and the option', async () => {
    expect(() => validateMachineConfig({ memoryMiB: 32, kernel, nets: ['user', 'tap'] })).toThrow(ConfigError);
    expect(() => validateMachineConfig({ memoryMiB: 32, kernel, nets: ['user', 'tap'] })).toThrow(/^nets\[1\]: .*ifname/);
    expect(() => validateMachineConfig({ memoryMiB: 32, kernel, nets: ['socket,listen=nohost'] })).toThrow(/^nets\[0\]: .*listen/);
    expect(() => validateMachineConfig({ memoryMiB: 32, kernel, nets: ['slirp'] })).toThrow(/^nets\[0\]: .*unknown network type/);
    expect(() => validateMachineConfig({ memoryMiB: 32, kernel, nets: 'user' })).toThrow(/^nets: expected an array/);
    // A backend that cannot be set up: nothing listens on the port (connect is refused).
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await expect(machineWith([`socket,connect=127.0.0.1:${deadPort}`])).rejects.toThrow(/^nets\[0\]: .*cannot connect/);
  });

  /** The MAC in the virtio-net config space of slot `slot` (virtio-mmio config starts at 0x100; mac is bytes 0-5). */
  function macInSlot(m: Machine, slot: number): string {
    const config = MMIO_DEVICE_WINDOW_START + slot * MMIO_DEVICE_SLOT_SIZE + 0x100;
    return Array.from({ length: 6 }, (_, k) => (m.mmio.read(config + k, 1) & 0xff).toString(16).padStart(2, '0')).join(':');
  }

  it('mac= sets the NIC address; user NICs default to 52:54:00:12:34:56+index, socket ones to a random address', async () => {
    const listeners = await Promise.all([0, 1].map(async () => {
      const probe = createServer();
      await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
      const port = (probe.address() as AddressInfo).port;
      await new Promise<void>((r) => probe.close(() => r()));
      return port;
    }));
    const logged: string[] = [];
    const m = await Machine.create(validateMachineConfig({
      memoryMiB: 32, kernel, serial: 'none', cmdline: '', accel,
      nets: [
        `socket,listen=127.0.0.1:${listeners[0]},mac=52:54:00:AA:bb:0c`,
        `socket,listen=127.0.0.1:${listeners[1]}`,
        'user',
        'user,mac=02-00-00-00-00-07',
      ],
    }), { log: (line) => logged.push(line) });
    try {
      expect(macInSlot(m, 0)).toBe('52:54:00:aa:bb:0c');
      const random = macInSlot(m, 1);
      expect(random).toMatch(/^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
      expect(logged.join('\n')).toContain(`nets[1]: no mac= given, using ${random}`);
      expect(macInSlot(m, 2)).toBe('52:54:00:12:34:58');
      expect(macInSlot(m, 3)).toBe('02:00:00:00:00:07');
    } finally {
      await m.stop();
    }
    expect(() => validateMachineConfig({ memoryMiB: 32, kernel, nets: ['user,mac=01:00:5e:00:00:01'] })).toThrow(/^nets\[0\]: .*mac: .*multicast/);
    expect(() => validateMachineConfig({ memoryMiB: 32, kernel, nets: ['tap,ifname=t0,mac=52:54'] })).toThrow(/^nets\[0\]: .*mac: .*not a MAC address/);
  });

  const tapSkip = process.getuid?.() !== 0 ? 'not running as root'
    : !existsSync('/dev/net/tun') ? 'no /dev/net/tun'
    : tapUnavailableReason();
  if (tapSkip) console.warn(`skipping the machine TAP test: ${tapSkip}`);

  it.skipIf(tapSkip !== null)('tap,ifname= attaches the machine to that TAP interface', async () => {
    const name = `nvm${process.pid % 100000}`;
    const m = await machineWith([`tap,ifname=${name}`]);
    try {
      expect(deviceIdInSlot(m, 0)).toBe(VIRTIO_ID_NET);
      const shown = await run('ip', ['-o', 'link', 'show', 'dev', name]);
      expect(shown.stdout).toContain(`${name}:`);
      expect(shown.stdout).toContain('link/ether');
    } finally {
      // Deleting the interface also ends the backend's read that is blocked in the kernel (see lib/net/tap.ts).
      await run('ip', ['link', 'del', name]).catch(() => {});
      await m.stop();
    }
  });
});
