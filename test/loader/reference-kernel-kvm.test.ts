/**
 * The reference Linux bzImages (guest/build.sh), loaded by loadLinux and run on the real /dev/kvm from the
 * returned BootCpuState until the kernel's own decompressor has written the kernel image to
 * LOAD_PHYSICAL_ADDR: the decompressed bytes must equal the PT_LOAD contents of the matching vmlinux. This
 * proves that the zero page, identity map, GDT and entry registers are what real Linux startup code needs,
 * for the 64-bit entry (x86_64) and the 32-bit entry (i386). The vmlinux ELF files are entered directly
 * and run (with earlyprintk on a stub serial port) until Linux has parsed our e820 map and MP table; the
 * messages it prints about them must match what the loader wrote. Skipped with the reason when KVM or the
 * artifacts are missing. On kvm_pvm hosts CPL0 code is emulated, so these take tens of seconds each.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { KvmVcpu, RunResult } from '../../lib/kvm/index.js';
import { loadLinux } from '../../lib/machine/loader/linux.js';
import { parseElf } from '../../lib/machine/loader/elf.js';
import { MiB } from '../../lib/machine/layout.js';
import { sameBytes } from './images.js';
import { applyBootState, closeMachine, createMachine, type Machine, probe } from './kvm-support.js';
import { findGuestKernel } from './reference-artifacts.js';

const COMPARE_BYTES = 64 * 1024;
const TIMEOUT_MS = 240_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs until `until` matches the serial output, the vCPU exits, or the timeout; returns the output. */
async function runUntil(vcpu: KvmVcpu, until: RegExp | ((m: Machine) => boolean), m: Machine): Promise<{ output: string; exit: RunResult | undefined; matched: boolean; seconds: string }> {
  const serial: number[] = [];
  let exit: RunResult | undefined;
  const run = vcpu.runLoop({
    pio: {
      read: (port) => (port === 0x3fd ? 0x60 : 0), // 16550 LSR: transmitter empty; other ports read 0
      write: (port, _size, value) => { if (port === 0x3f8) serial.push(value & 0xff); },
    },
  }).then((e) => { exit = e; });
  const started = Date.now();
  const text = () => Buffer.from(serial).toString('latin1');
  const test = () => (until instanceof RegExp ? until.test(text()) : until(m));
  let matched = false;
  while (!exit && Date.now() - started < TIMEOUT_MS) {
    await sleep(200);
    if (test()) { matched = true; break; }
  }
  vcpu.kick();
  await run;
  matched ||= test();
  return { output: text(), exit, matched, seconds: ((Date.now() - started) / 1000).toFixed(1) };
}

function describeExit(exit: RunResult | undefined): string {
  return JSON.stringify(exit, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
}

for (const arch of ['x86_64', 'i386'] as const) {
  const kernel = findGuestKernel(arch);
  const vmlinuxOnly = kernel?.vmlinux;
  const elfReason = !probe.usable ? probe.reason : !kernel ? `${arch} kernel not built (run guest/build.sh)` : undefined;
  if (elfReason) console.warn(`[loader reference vmlinux test ${arch} skipped] ${elfReason}`);

  describe.skipIf(elfReason !== undefined)(`reference ${arch} vmlinux on KVM${elfReason ? ` (skipped: ${elfReason})` : ''}`, () => {
    let m: Machine | undefined;
    afterEach(() => {
      if (m) closeMachine(m);
      m = undefined;
    });

    // kvm_pvm hosts cannot run 32-bit paged guests: setting CR0.PG outside long mode shuts the VM down
    // (checked with a 10-instruction guest). There the i386 kernel is checked up to that point instead: its
    // startup_32 has copied our boot_params and command line into its own variables.
    const pagingLimited = arch === 'i386' && probe.pvm;
    it(pagingLimited
      ? 'is entered at its ELF entry and copies our boot_params and command line (kvm_pvm: no 32-bit paging, stops there)'
      : 'is entered at its ELF entry and reports our command line, e820 map and MP table', async () => {
      const memoryBytes = 256 * MiB;
      m = createMachine(memoryBytes, { irqchip: true });
      const cmdline = 'console=ttyS0 earlyprintk=serial,ttyS0 noxsave nosmap';
      const info = loadLinux(m.mem, {
        kernel: new Uint8Array(readFileSync(vmlinuxOnly!)), kernelPath: vmlinuxOnly!, cmdline, memoryBytes, cpus: 2,
      });
      expect(info.format).toBe(arch === 'x86_64' ? 'elf64' : 'elf32');
      applyBootState(m.vcpu, info.entry);
      if (pagingLimited) {
        const zeroPage = m.mem.read(info.bootParamsAddress, 4096);
        const r = await runUntil(m.vcpu, () => false, m);
        console.log(`[reference vmlinux-${arch}] ran ${r.seconds}s to exit=${describeExit(r.exit)} (kvm_pvm)`);
        const map = readFileSync(kernel!.systemMap, 'latin1');
        const sym = (name: string): number => {
          const hit = new RegExp(`^([0-9a-f]{8}) \\w ${name}$`, 'm').exec(map);
          if (!hit) throw new Error(`${name} not in System.map-i386`);
          return parseInt(hit[1]!, 16) - 0xc0000000;
        };
        expect(sameBytes(m.mem.view(sym('boot_params'), 4096), zeroPage)).toBe(true);
        const copied = m.mem.read(sym('boot_command_line'), cmdline.length + 1);
        expect(Buffer.from(copied).toString('latin1')).toBe(`${cmdline}\0`);
        return;
      }
      // "Kernel command line:" is printed by start_kernel after setup_arch has parsed the MP table.
      const r = await runUntil(m.vcpu, /Kernel command line: [^\n]*\n/, m);
      console.log(`[reference vmlinux-${arch}] matched=${r.matched} after ${r.seconds}s, exit=${describeExit(r.exit)}`);
      const out = r.output;
      expect(r.matched, `no "Kernel command line"; exit ${describeExit(r.exit)}; serial:\n${out}`).toBe(true);
      expect(out).toContain(`Kernel command line: ${cmdline}`);
      expect(out).toContain('smpboot: Allowing 2 CPUs');
      expect(out).toContain('BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable');
      expect(out).toContain('BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved');
      expect(out).toContain('BIOS-e820: [mem 0x0000000000100000-0x000000000fffffff] usable');
      expect(out).toContain('found SMP MP-table at [mem 0x0009fc00-0x0009fc0f]');
      expect(out).toContain('MPTABLE: OEM ID: NODEVMM');
      expect(out).toContain('MPTABLE: APIC at: 0xFEE00000');
      expect(out).toMatch(/Processor #0 \(Bootup-CPU\)/);
      expect(out).toMatch(/Processor #1\b/);
      expect(out).toMatch(/IOAPIC\[0\]: apic_id 2, version 17, address 0xfec00000/);
    }, TIMEOUT_MS + 30_000);
  });
}

for (const arch of ['x86_64', 'i386'] as const) {
  const built = findGuestKernel(arch);
  const bz = built?.bzImage;
  const vmlinux = built?.vmlinux;
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

      const r = await runUntil(m.vcpu, (mm) => sameBytes(mm.mem.view(first.paddr, n), expected), m);
      console.log(`[reference bzImage-${arch}] decompressed=${r.matched} after ${r.seconds}s, exit=${describeExit(r.exit)}`);
      expect(r.matched, `kernel not decompressed; exit ${describeExit(r.exit)}; serial: ${r.output}`).toBe(true);
    }, TIMEOUT_MS + 30_000);
  });
}
