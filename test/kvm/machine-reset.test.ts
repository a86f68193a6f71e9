/**
 * Machine.reset() on KVM, seen by the guest: a multiboot kernel prints whether IOAPIC pin 5 is masked ('M', the
 * power-on state, or 'U') and whether the master PIC's IMR is clear ('z', power-on, or 'n'), then unmasks the
 * pin and masks PIC lines, and spins. After the reset the rebooted kernel must again find the power-on state.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { KvmAccelerator } from '../../lib/accel/kvm/index.js';
import { kvmHostModule } from '../../lib/accel/probe.js';
import { validateMachineConfig } from '../../lib/machine/config.js';
import { Machine } from '../../lib/machine/machine.js';
import { KERNEL_LOAD, multibootElf } from '../machine/test-kernels.js';
import { u32 } from './asm.js';
import { describeKvm } from './harness.js';

const COUNTER = 0x8000;

/** 32-bit code at KERNEL_LOAD; each instruction's encoding is spelled out. */
function probeAndProgramKernel(): Uint8Array {
  return Uint8Array.from([
    0xc7, 0x05, ...u32(0xfec0_0000), ...u32(0x1a), // mov dword [IOREGSEL], 0x1a (redirection 5, low)
    0xa1, ...u32(0xfec0_0010),                     // mov eax, [IOWIN]
    0xa9, ...u32(0x1_0000),                        // test eax, 0x10000 (mask bit)
    0xb0, 0x4d,                                    // mov al, 'M'
    0x75, 0x02,                                    // jnz +2
    0xb0, 0x55,                                    // mov al, 'U'
    0x66, 0xba, 0xf8, 0x03,                        // mov dx, 0x3f8 (COM1 THR)
    0xee,                                          // out dx, al
    0xe4, 0x21,                                    // in al, 0x21 (master IMR)
    0x84, 0xc0,                                    // test al, al
    0xb0, 0x7a,                                    // mov al, 'z'
    0x74, 0x02,                                    // jz +2
    0xb0, 0x6e,                                    // mov al, 'n'
    0xee,                                          // out dx, al
    0xb0, 0x0a, 0xee,                              // mov al, '\n' ; out dx, al
    0xc7, 0x05, ...u32(0xfec0_0010), ...u32(0xa035), // mov dword [IOWIN], 0xa035 (vector 0x35, level, unmasked)
    0xb0, 0xfa, 0xe6, 0x21,                        // mov al, 0xfa ; out 0x21, al (OCW1)
    0xff, 0x05, ...u32(COUNTER),                   // spin: inc dword [COUNTER]
    0xeb, 0xf8,                                    // jmp spin
  ]);
}

async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describeKvm('Machine.reset on KVM: the rebooted guest finds power-on interrupt controllers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodevmm-reset-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('IOAPIC pin and PIC mask programmed in the first boot are back to power-on in the second', async () => {
    const kernel = join(dir, 'probe.elf');
    writeFileSync(kernel, multibootElf(probeAndProgramKernel(), KERNEL_LOAD));
    const m = await Machine.create(
      validateMachineConfig({ memoryMiB: 32, kernel, serial: 'none', cmdline: '' }),
      { accelerator: new KvmAccelerator({ emulatingHost: kvmHostModule() === 'kvm_pvm' }) },
    );
    let out = '';
    m.serial.addOutputListener((c) => { out += Buffer.from(c).toString('latin1'); });
    try {
      m.start();
      const counter = (): number => m.memory.readU32(COUNTER);
      await until(() => out === 'Mz\n' && counter() > 100, 'the first report and the guest spinning');
      await m.reset();
      await until(() => out.length >= 6, 'the report after reset');
      expect(out).toBe('Mz\nMz\n');
    } finally {
      await m.stop();
    }
  });
});
