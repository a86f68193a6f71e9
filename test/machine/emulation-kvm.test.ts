/**
 * Instructions KVM's in-kernel emulator cannot run (kvm_pvm hosts: KVM_EXIT_INTERNAL_ERROR), completed by the
 * KVM accelerator in userspace. On a VT-x/AMD-V host they run natively and the same results must come out.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KvmAccelerator } from '../../lib/accel/kvm/index.js';
import { kvmHostModule } from '../../lib/accel/probe.js';
import { probeKvm } from '../../lib/kvm/index.js';
import { BOOT_CS_SELECTOR } from '../../lib/machine/boot/gdt.js';
import { validateMachineConfig } from '../../lib/machine/config.js';
import { Machine } from '../../lib/machine/machine.js';
import { DONE_MAGIC, emulationKernel, readResults, RESULTS } from './emulation-kernel.js';
import { multibootElf } from './test-kernels.js';

const kvm = probeKvm();
if (!kvm.usable) console.warn(`skipping KVM emulation-completion test: /dev/kvm is not usable (${kvm.reason})`);

describe.skipIf(!kvm.usable)('failed emulations completed in userspace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodevmm-emul-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // The interpreter models a CPU without SMAP (as is this host's), so there stac/clac raise #UD: that variant
  // runs the kernel with NOPs in their place. The by-hand path completes them whatever CPUID says.
  it.each([
    ['int3/clac/stac by hand, the rest by the interpreter', true],
    ['everything by the interpreter (lib/cpu stepExternal)', false],
  ])('popcnt, stac/clac and int3 at CPL0 give the architectural results: %s', async (name, completeByHand) => {
    const kernel = join(dir, `emul-${completeByHand}.elf`);
    writeFileSync(kernel, multibootElf(emulationKernel(undefined, completeByHand)));
    const pvm = kvmHostModule() === 'kvm_pvm';
    // CPUID unmasked on purpose: the test is about completing the instructions, not about hiding them.
    const accelerator = new KvmAccelerator({ emulatingHost: false, completeByHand });
    const m = await Machine.create(validateMachineConfig({ memoryMiB: 32, kernel, serial: 'none', cmdline: '' }), { accelerator });
    expect(m.bootInfo.entry.sregs.cs.selector).toBe(BOOT_CS_SELECTOR); // the IDT gate the kernel builds uses it
    const view = (): DataView => { const b = m.memory.view(RESULTS, 32); return new DataView(b.buffer, b.byteOffset, 32); };
    m.start();
    const t0 = Date.now();
    while (readResults(view()).done !== DONE_MAGIC && m.state === 'running' && Date.now() - t0 < 30_000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const r = readResults(view());
    const completed = accelerator.emulationsCompleted;
    const exit = await m.stop();
    console.log(`host ${kvmHostModule()}: ${completed} instructions completed in userspace; exit ${exit.reason}`);
    expect(exit.reason, exit.message).toBe('stopped');
    expect(r).toEqual({
      popcntReg: 8, popcntMemEarly: 1, flagsAfterStac: expect.any(Number), flagsAfterClac: expect.any(Number),
      int3Handler: 0xb9b9b9b9, afterInt3: 1, popcntMem: 1, done: DONE_MAGIC,
    });
    if (completeByHand) expect(r.flagsAfterStac & (1 << 18)).not.toBe(0);
    expect(r.flagsAfterClac & (1 << 18)).toBe(0);
    if (pvm) expect(completed, name).toBeGreaterThanOrEqual(completeByHand ? 6 : 4);
  });
});
