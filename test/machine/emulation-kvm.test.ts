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
import { DONE_MAGIC, emulationKernel, readResults, RESULTS, RESULTS_SIZE } from './emulation-kernel.js';
import { multibootElf } from './test-kernels.js';

const kvm = probeKvm();
if (!kvm.usable) console.warn(`skipping KVM emulation-completion test: /dev/kvm is not usable (${kvm.reason})`);

describe.skipIf(!kvm.usable)('failed emulations completed in userspace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodevmm-emul-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // The interpreter path follows the vCPU's CPUID (stac/clac only with SMAP there, as on a real CPU); the kernel
  // uses them only when CPUID has SMAP (kvm_pvm reports it), and its #BP handler starts with clac like Linux's
  // exception entry. Sending int3 through the interpreter used to fail in the 64-bit Linux kernel for exactly
  // that reason: the interpreter raised #UD for the clac at the handler's entry, recursively, up to a triple fault.
  it.each([
    ['clac/stac by hand (the default), the rest — int3 included — by the interpreter', true],
    ['everything by the interpreter (lib/cpu stepExternal)', false],
  ])('popcnt, stac/clac and int3 at CPL0 give the architectural results: %s', async (name, completeByHand) => {
    const kernel = join(dir, `emul-${completeByHand}.elf`);
    writeFileSync(kernel, multibootElf(emulationKernel()));
    const pvm = kvmHostModule() === 'kvm_pvm';
    // CPUID unmasked on purpose: the test is about completing the instructions, not about hiding them.
    const accelerator = new KvmAccelerator({ emulatingHost: false, completeByHand });
    const m = await Machine.create(validateMachineConfig({ memoryMiB: 32, kernel, serial: 'none', cmdline: '' }), { accelerator });
    expect(m.bootInfo.entry.sregs.cs.selector).toBe(BOOT_CS_SELECTOR); // the IDT gate the kernel builds uses it
    const view = (): DataView => { const b = m.memory.view(RESULTS, RESULTS_SIZE); return new DataView(b.buffer, b.byteOffset, RESULTS_SIZE); };
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
      int3Handler: 0xb9b9b9b9, afterInt3: 1, popcntMem: 1, done: DONE_MAGIC, smap: expect.any(Number),
    });
    if (r.smap) {
      expect(r.flagsAfterStac & (1 << 18)).not.toBe(0);
      expect(r.flagsAfterClac & (1 << 18)).toBe(0);
    }
    console.log(`guest CPUID SMAP: ${r.smap ? 'yes (stac/clac executed)' : 'no'}`);
    // popcnt x3 and int3, plus stac, clac and the handler's clac where SMAP is on.
    if (pvm) expect(completed, name).toBeGreaterThanOrEqual(r.smap ? 7 : 4);
  });
});
