/**
 * A multiboot kernel written by the test (hand-assembled ELF32: prints on COM1, writes a code to
 * isa-debug-exit) booted through the Machine API and through the real CLI; and the Machine lifecycle
 * (pause/resume/reset/stop, SIGINT) on a small spinning guest.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmAccelerator } from '../../lib/accel/kvm/index.js';
import { kvmHostModule } from '../../lib/accel/probe.js';
import { probeKvm } from '../../lib/kvm/index.js';
import { validateMachineConfig } from '../../lib/machine/config.js';
import { Machine } from '../../lib/machine/machine.js';
import { collect, errorLines, runCli, spawnCli } from '../cli/run-cli.js';
import { multibootElf, printAndExitCode, printAndSpin } from './test-kernels.js';

const kvm = probeKvm();
if (!kvm.usable) console.warn(`skipping KVM machine tests: /dev/kvm is not usable (${kvm.reason})`);

const COUNTER = 0x8000;

function serialText(m: Machine): { text: () => string } {
  let out = '';
  m.serial.addOutputListener((c) => { out += Buffer.from(c).toString('latin1'); });
  return { text: () => out };
}

async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(!kvm.usable)('multiboot test kernel on KVM', () => {
  let dir = '';
  let exitKernel = '';
  let spinKernel = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodevmm-mb-'));
    exitKernel = join(dir, 'exit.elf');
    writeFileSync(exitKernel, multibootElf(printAndExitCode('Hello from a multiboot kernel!\n', 0x2a)));
    spinKernel = join(dir, 'spin.elf');
    writeFileSync(spinKernel, multibootElf(printAndSpin('spinning\n', COUNTER)));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const accelerator = (): KvmAccelerator => new KvmAccelerator({ emulatingHost: kvmHostModule() === 'kvm_pvm' });

  it('runs through the Machine API and exits with (code << 1) | 1', async () => {
    const m = await Machine.create(
      validateMachineConfig({ memoryMiB: 32, kernel: exitKernel, serial: 'none', cmdline: '' }),
      { accelerator: accelerator() },
    );
    expect(m.bootInfo.loader).toBe('multiboot');
    const serial = serialText(m);
    m.start();
    const exit = await m.wait();
    expect(exit).toMatchObject({ reason: 'debug-exit', status: (0x2a << 1) | 1 });
    expect(serial.text()).toBe('Hello from a multiboot kernel!\n');
    expect(m.state).toBe('stopped');
  });

  it('runs through `nodevmm run -k FILE --serial file:PATH` with the same status and output', async () => {
    const log = join(dir, 'serial.log');
    const r = await runCli(['run', '-k', exitKernel, '--accel', 'kvm', '--serial', `file:${log}`, '-m', '32']);
    expect(r.status, r.stderr).toBe((0x2a << 1) | 1);
    expect(readFileSync(log, 'latin1')).toBe('Hello from a multiboot kernel!\n');
    const lines = errorLines(r.stderr);
    expect(lines[0]).toMatch(/^nodevmm: using KVM: --accel kvm; \/dev\/kvm is /);
    expect(lines).toContain('nodevmm: guest wrote 42 to isa-debug-exit: exit status 85');
  });

  it('places --disk and --rng devices in the MMIO window and announces them on the command line', async () => {
    const disk = join(dir, 'disk.raw');
    writeFileSync(disk, Buffer.alloc(1024 * 1024));
    const m = await Machine.create(
      validateMachineConfig({ memoryMiB: 32, kernel: exitKernel, serial: 'none', cmdline: 'console=ttyS0', disks: [{ path: disk }] }),
      { accelerator: accelerator(), rng: true },
    );
    try {
      expect(m.cmdline).toBe('console=ttyS0 virtio_mmio.device=0x200@0xd0000000:5 virtio_mmio.device=0x200@0xd0001000:6');
      expect(m.mmio.read(0xd000_0000, 4)).toBe(0x74726976); // "virt"
      expect(m.mmio.read(0xd000_0008, 4)).toBe(2); // block device
      expect(m.mmio.read(0xd000_1008, 4)).toBe(4); // entropy source
    } finally {
      await m.stop();
    }
  });

  it('pauses, resumes, resets and stops a running guest while the event loop stays live', async () => {
    const m = await Machine.create(
      validateMachineConfig({ memoryMiB: 32, kernel: spinKernel, serial: 'none', cmdline: '' }),
      { accelerator: accelerator() },
    );
    const serial = serialText(m);
    const states: string[] = [];
    m.on('state', (s: string) => states.push(s));
    let ticks = 0;
    const ticker = setInterval(() => { ticks++; }, 5);
    try {
      m.start();
      await until(() => serial.text() === 'spinning\n', 'the first message');
      const counter = (): number => new DataView(m.memory.view(COUNTER, 4).buffer, m.memory.view(COUNTER, 4).byteOffset).getUint32(0, true);
      await until(() => counter() > 1000, 'the guest to count');
      expect(ticks).toBeGreaterThan(0); // timers fire while the vCPU runs

      await m.pause();
      expect(m.state).toBe('paused');
      const frozen = counter();
      await new Promise((r) => setTimeout(r, 200));
      expect(counter()).toBe(frozen);

      m.resume();
      expect(m.state).toBe('running');
      await until(() => counter() > frozen + 1000, 'the guest to count after resume');

      const resetSeen = new Promise<void>((resolve) => m.once('reset', () => resolve()));
      await m.reset();
      await resetSeen;
      await until(() => serial.text() === 'spinning\nspinning\n', 'the message after reset');

      const exit = await m.stop();
      expect(exit).toMatchObject({ reason: 'stopped', status: 0 });
      expect(m.state).toBe('stopped');
      expect(states).toEqual(['running', 'paused', 'running', 'stopped']);
    } finally {
      clearInterval(ticker);
      if (m.state !== 'stopped') await m.stop();
    }
  });

  it('SIGINT stops `nodevmm run` cleanly with status 130', async () => {
    const log = join(dir, 'spin.log');
    const child = spawnCli(['run', '-k', spinKernel, '--accel', 'kvm', '--serial', `file:${log}`, '-m', '32']);
    const result = collect(child);
    await until(() => {
      try { return readFileSync(log, 'latin1') === 'spinning\n'; } catch { return false; }
    }, 'the guest to print', 30_000);
    child.kill('SIGINT');
    const r = await result;
    expect(r.status, r.stderr).toBe(130);
    expect(errorLines(r.stderr)).toContain('nodevmm: SIGINT: stopping the VM');
    expect(r.stderr).toContain('stopped by SIGINT');
  });
});

const interpPresent = existsSync(fileURLToPath(new URL('../../lib/accel/interp/index.ts', import.meta.url)));
if (!interpPresent) console.warn('skipping the interpreter variant: lib/accel/interp is not in this build');

describe.skipIf(!interpPresent)('multiboot test kernel on the interpreter accelerator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodevmm-mb-interp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the same kernel, devices and exit status through Machine with accel "interp"', async () => {
    const kernel = join(dir, 'exit.elf');
    writeFileSync(kernel, multibootElf(printAndExitCode('Hello from a multiboot kernel!\n', 7)));
    const m = await Machine.create(validateMachineConfig({ memoryMiB: 32, kernel, serial: 'none', cmdline: '', accel: 'interp' }));
    expect(m.accelerator.name).toBe('interp');
    const serial = serialText(m);
    m.start();
    expect(await m.wait()).toMatchObject({ reason: 'debug-exit', status: 15 });
    expect(serial.text()).toBe('Hello from a multiboot kernel!\n');
  });
});
