/**
 * The reference Linux bzImages (guest/build.sh), loaded by loadLinux and run on the real /dev/kvm from the
 * returned BootCpuState until the kernel's own decompressor has written the kernel image to
 * LOAD_PHYSICAL_ADDR: the decompressed bytes must equal the PT_LOAD contents of the matching vmlinux. This
 * proves that the zero page, identity map, GDT and entry registers are what real Linux startup code needs,
 * for the 64-bit entry (x86_64) and the 32-bit entry (i386). Skipped with the reason when KVM or the
 * artifacts are missing. On kvm_pvm hosts CPL0 code is emulated, so this takes tens of seconds.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { KvmVcpu, RunResult } from '../../lib/kvm/index.js';
import { loadLinux } from '../../lib/machine/loader/linux.js';
import { parseElf } from '../../lib/machine/loader/elf.js';
import { MiB } from '../../lib/machine/layout.js';
import { sameBytes } from './images.js';
import { applyBootState, closeMachine, createMachine, type Machine, probe } from './kvm-support.js';
import { findGuestArtifact } from './reference-artifacts.js';

const COMPARE_BYTES = 64 * 1024;
const TIMEOUT_MS = 240_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

for (const arch of ['x86_64', 'i386'] as const) {
  const bz = findGuestArtifact(`bzImage-${arch}`);
  const vmlinux = findGuestArtifact(`vmlinux-${arch}`);
  const reason = !probe.usable ? probe.reason : !bz || !vmlinux ? `bzImage-${arch}/vmlinux-${arch} not built (run guest/build.sh)` : undefined;
  if (reason) console.warn(`[loader reference-kernel test ${arch} skipped] ${reason}`);

  describe.skipIf(reason !== undefined)(`reference ${arch} bzImage on KVM${reason ? ` (skipped: ${reason})` : ''}`, () => {
    let m: Machine | undefined;
    afterEach(() => {
      if (m) closeMachine(m);
      m = undefined;
    });

    it(`decompresses itself to the vmlinux image (${arch === 'x86_64' ? '64-bit' : '32-bit'} entry)`, async () => {
      const elfBytes = new Uint8Array(readFileSync(vmlinux!));
      const elf = parseElf(elfBytes, vmlinux!);
      const first = elf.segments.reduce((a, b) => (b.paddr < a.paddr ? b : a));
      const n = Math.min(COMPARE_BYTES, first.filesz);
      const expected = elfBytes.subarray(first.offset, first.offset + n);

      const memoryBytes = 256 * MiB;
      m = createMachine(memoryBytes);
      const info = loadLinux(m.mem, {
        kernel: new Uint8Array(readFileSync(bz!)), kernelPath: bz!, cmdline: 'console=ttyS0 earlyprintk=serial nokaslr', memoryBytes,
      });
      expect(info.entry.mode).toBe(arch === 'x86_64' ? 'long' : 'protected');
      expect(sameBytes(m.mem.view(first.paddr, n), expected)).toBe(false);
      applyBootState(m.vcpu, info.entry);

      const serial: number[] = [];
      const vcpu: KvmVcpu = m.vcpu;
      let exit: RunResult | undefined;
      const run = vcpu.runLoop({
        pio: {
          read: (port) => (port === 0x3fd ? 0x60 : 0), // 16550 LSR: transmitter empty
          write: (port, _size, value) => { if (port === 0x3f8) serial.push(value & 0xff); },
        },
      }).then((e) => { exit = e; });

      const started = Date.now();
      let done = false;
      while (!exit && Date.now() - started < TIMEOUT_MS) {
        await sleep(200);
        if (sameBytes(m.mem.view(first.paddr, n), expected)) { done = true; break; }
      }
      vcpu.kick();
      await run;
      const output = Buffer.from(serial).toString('latin1');
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.log(`[reference ${arch}] decompressed=${done} after ${seconds}s, exit=${JSON.stringify(exit, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`);
      expect(done, `kernel not decompressed; exit ${exit?.reason}; serial: ${output}`).toBe(true);
    }, TIMEOUT_MS + 30_000);
  });
}
