import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { loadLinux, type LinuxLoadOptions } from '../../lib/machine/loader/linux.js';
import { LoaderError } from '../../lib/machine/loader/errors.js';
import { decodeDescriptor } from '../../lib/machine/boot/gdt.js';
import { translateLinear } from '../../lib/machine/boot/page-tables.js';
import { CMDLINE_ADDR, e820Map, GiB, MiB, ZERO_PAGE_ADDR } from '../../lib/machine/layout.js';
import { makeBzImage, makeElf, pattern, sameBytes } from './images.js';

const ZP = ZERO_PAGE_ADDR;

function machine(memMiB: number): { mem: GuestMemory; memoryBytes: number } {
  return { mem: GuestMemory.ofSize(memMiB * MiB), memoryBytes: memMiB * MiB };
}

function load(memMiB: number, opts: Partial<LinuxLoadOptions> & { kernel: Uint8Array }) {
  const { mem, memoryBytes } = machine(memMiB);
  const info = loadLinux(mem, { kernelPath: '/k/bzImage', cmdline: 'console=ttyS0', memoryBytes, ...opts });
  return { mem, info };
}

function loaderError(fn: () => unknown): LoaderError {
  try {
    fn();
  } catch (e) {
    if (e instanceof LoaderError) return e;
    throw e;
  }
  throw new Error('expected a LoaderError');
}

function cstring(mem: GuestMemory, addr: number): string {
  let end = addr;
  while (mem.readU8(end) !== 0) end++;
  return new TextDecoder().decode(mem.read(addr, end - addr));
}

describe('bzImage, 64-bit boot protocol', () => {
  const payload = pattern(0x5000);
  const image = makeBzImage({ payload });
  const initrd = pattern(3 * MiB + 123, 9);

  it('loads the protected-mode code at pref_address and enters at +0x200 in long mode', () => {
    const { mem, info } = load(128, { kernel: image });
    expect(info.format).toBe('bzImage');
    expect(info.protocolVersion).toBe(0x020f);
    expect(info.kernel.start).toBe(0x1000000);
    expect(mem.read(0x1000000, payload.length)).toEqual(payload);
    expect(info.entry.mode).toBe('long');
    expect(info.entry.regs.rip).toBe(0x1000200);
    expect(info.entry.regs.rsi).toBe(ZP);
    // decompression buffer: pref_address + init_size
    expect(info.kernel.reservedEnd).toBe(0x1000000 + 0x400000);
    // the kernel, zero page, command line and entry point are identity mapped
    for (const a of [0x1000200, ZP, CMDLINE_ADDR, info.kernel.reservedEnd - 1]) {
      expect(translateLinear(mem, info.entry.sregs.cr3, a)).toBe(a);
    }
  });

  it('writes the zero page: copied header, loader fields, command line, e820', () => {
    const { mem, info } = load(128, { kernel: image, initrd, initrdPath: '/k/initrd', cmdline: 'console=ttyS0 root=/dev/vda' });
    expect(info.bootParamsAddress).toBe(ZP);
    // header copied from the image (0x1f1 .. 0x26c)
    expect(mem.readU16(ZP + 0x1fe)).toBe(0xaa55);
    expect(mem.readU32(ZP + 0x202)).toBe(0x53726448);
    expect(mem.readU16(ZP + 0x206)).toBe(0x020f);
    expect(mem.readU16(ZP + 0x20e)).toBe(0x1234);
    expect(mem.readU16(ZP + 0x236)).toBe(1);
    expect(mem.readU32(ZP + 0x260)).toBe(0x400000);
    expect(mem.readU8(ZP + 0x1f1)).toBe(4);
    // fields the loader sets
    expect(mem.readU16(ZP + 0x1fa)).toBe(0xffff); // vid_mode
    expect(mem.readU8(ZP + 0x210)).toBe(0xff); // type_of_loader
    expect(mem.readU8(ZP + 0x211)).toBe(0x81); // LOADED_HIGH | CAN_USE_HEAP
    expect(mem.readU16(ZP + 0x224)).toBe(0xfe00); // heap_end_ptr
    expect(mem.readU32(ZP + 0x214)).toBe(0x1000000); // code32_start = load address
    expect(mem.readU32(ZP + 0x228)).toBe(CMDLINE_ADDR);
    expect(mem.readU32(ZP + 0x0c8)).toBe(0);
    expect(cstring(mem, CMDLINE_ADDR)).toBe('console=ttyS0 root=/dev/vda');
    expect(info.cmdline).toEqual({ address: CMDLINE_ADDR, length: 27 });
    // initrd at the top of RAM, page aligned, content intact
    const top = 128 * MiB;
    const addr = Math.floor((top - initrd.length) / 4096) * 4096;
    expect(info.initrd).toEqual({ address: addr, size: initrd.length });
    expect(mem.readU32(ZP + 0x218)).toBe(addr);
    expect(mem.readU32(ZP + 0x21c)).toBe(initrd.length);
    expect(mem.readU32(ZP + 0x0c0)).toBe(0);
    expect(mem.readU32(ZP + 0x0c4)).toBe(0);
    expect(sameBytes(mem.view(addr, initrd.length), initrd)).toBe(true);
    expect(addr + initrd.length).toBeLessThanOrEqual(top);
    // e820
    const e820 = e820Map(128 * MiB);
    expect(mem.readU8(ZP + 0x1e8)).toBe(e820.length);
    e820.forEach((e, i) => {
      const p = ZP + 0x2d0 + i * 20;
      expect(Number(mem.readU64(p))).toBe(e.addr);
      expect(Number(mem.readU64(p + 8))).toBe(e.size);
      expect(mem.readU32(p + 16)).toBe(e.type);
    });
    expect(mem.readU32(ZP + 0x2d0 + e820.length * 20 + 16)).toBe(0);
  });

  it('keeps the initrd below initrd_addr_max', () => {
    const img = makeBzImage({ payload, initrdAddrMax: 0x37ffffff });
    const { mem, info } = load(1024, { kernel: img, initrd, initrdPath: '/k/initrd' });
    expect(info.initrd!.address + initrd.length - 1).toBeLessThanOrEqual(0x37ffffff);
    expect(info.initrd!.address % 4096).toBe(0);
    expect(info.initrd!.address).toBeGreaterThan(0x37ffffff - initrd.length - 4096);
    expect(mem.read(info.initrd!.address, 16)).toEqual(initrd.subarray(0, 16));
  });

  it('loads at 1 MiB when the kernel is not relocatable, or when pref_address does not fit', () => {
    const a = load(64, { kernel: makeBzImage({ payload, relocatable: false }) });
    expect(a.info.kernel.start).toBe(0x100000);
    expect(a.info.entry.regs.rip).toBe(0x100200);
    expect(a.mem.read(0x100000, payload.length)).toEqual(payload);
    // non-relocatable: still decompresses at LOAD_PHYSICAL_ADDR (pref_address) and needs init_size there
    expect(a.info.kernel.reservedEnd).toBe(0x1000000 + 0x400000);
    // pref_address not aligned to kernel_alignment: not a usable load address
    const b = load(64, { kernel: makeBzImage({ payload, prefAddress: 0x1100000, kernelAlignment: 0x200000 }) });
    expect(b.info.kernel.start).toBe(0x100000);
    expect(b.info.kernel.reservedEnd).toBe(0x1100000 + 0x400000);
  });

  it('treats setup_sects = 0 as 4', () => {
    const { mem, info } = load(64, { kernel: makeBzImage({ payload, setupSects: 0 }) });
    expect(mem.read(info.kernel.start, payload.length)).toEqual(payload);
  });

  it('places the identity map over all low RAM, so a high initrd is mapped too', () => {
    const { mem, info } = load(1536, { kernel: image, initrd, initrdPath: '/k/initrd' });
    expect(info.initrd!.address).toBeGreaterThan(1 * GiB);
    expect(translateLinear(mem, info.entry.sregs.cr3, info.initrd!.address)).toBe(info.initrd!.address);
  });
});

describe('bzImage, 32-bit boot protocol', () => {
  it('enters a kernel without XLF_KERNEL_64 at its start in flat protected mode with ESI = boot_params', () => {
    const payload = pattern(0x4000);
    const { mem, info } = load(64, { kernel: makeBzImage({ payload, xloadflags: 0, relocatable: false, initrdAddrMax: 0x37ffffff }) });
    const st = info.entry;
    expect(st.mode).toBe('protected');
    expect(st.regs.rip).toBe(0x100000);
    expect(st.regs).toMatchObject({ rsi: ZP, rbx: 0, rdi: 0, rbp: 0 });
    expect(st.sregs.cr0 & 0x80000001).toBe(1);
    expect(st.sregs.efer).toBe(0);
    expect(st.sregs.cs).toMatchObject({ selector: 0x10, db: true, l: false, base: 0, limit: 0xffffffff });
    expect(st.sregs.ds.selector).toBe(0x18);
    expect(decodeDescriptor(mem.read(st.sregs.gdt.base + 0x10, 8), 0x10)).toEqual(st.sregs.cs);
    expect(mem.read(0x100000, payload.length)).toEqual(payload);
    expect(mem.readU32(ZP + 0x214)).toBe(0x100000);
  });

  it('uses the 32-bit entry for protocol 2.06..2.11 kernels (no xloadflags field)', () => {
    const img = makeBzImage({ version: 0x0206, xloadflags: 1, relocatable: false });
    const { info } = load(64, { kernel: img });
    expect(info.entry.mode).toBe('protected');
    expect(info.protocolVersion).toBe(0x0206);
  });
});

describe('ELF vmlinux', () => {
  it('loads ELF64 PT_LOADs at p_paddr, zeroes bss and enters at the physical e_entry in long mode', () => {
    const text = pattern(0x3000, 1);
    const data = pattern(0x800, 2);
    const elf = makeElf({
      elfClass: 64,
      entry: 0x1000000n,
      withNote: true,
      segments: [
        { paddr: 0x1000000, vaddr: 0xffffffff81000000n, data: text },
        { paddr: 0x1200000, vaddr: 0xffffffff81200000n, data, memsz: 0x2000 },
      ],
    });
    const { mem } = machine(64);
    mem.fill(0x1200000, 0x2000, 0xee); // stale bytes the loader must clear
    const info = loadLinux(mem, { kernel: elf, kernelPath: '/k/vmlinux', cmdline: 'quiet', memoryBytes: 64 * MiB });
    expect(info.format).toBe('elf64');
    expect(mem.read(0x1000000, text.length)).toEqual(text);
    expect(mem.read(0x1200000, data.length)).toEqual(data);
    expect(mem.read(0x1200000 + data.length, 0x2000 - data.length).every((b) => b === 0)).toBe(true);
    expect(info.kernel).toEqual({ start: 0x1000000, end: 0x1202000, reservedEnd: 0x1202000 });
    expect(info.entry.mode).toBe('long');
    expect(info.entry.regs.rip).toBe(0x1000000);
    expect(info.entry.regs.rsi).toBe(ZP);
    // zero page built without an image header
    expect(mem.readU16(ZP + 0x1fe)).toBe(0xaa55);
    expect(mem.readU32(ZP + 0x202)).toBe(0x53726448);
    expect(mem.readU16(ZP + 0x206)).toBe(0x020f);
    expect(mem.readU32(ZP + 0x230)).toBe(0x1000000);
    expect(mem.readU8(ZP + 0x210)).toBe(0xff);
    expect(mem.readU32(ZP + 0x228)).toBe(CMDLINE_ADDR);
    expect(mem.readU32(ZP + 0x238)).toBe(2047);
    expect(cstring(mem, CMDLINE_ADDR)).toBe('quiet');
  });

  it('translates a virtual e_entry through its segment', () => {
    const elf = makeElf({
      elfClass: 64, entry: 0xffffffff81000040n,
      segments: [{ paddr: 0x1000000, vaddr: 0xffffffff81000000n, data: pattern(0x100) }],
    });
    const { info } = load(64, { kernel: elf, kernelPath: '/k/vmlinux' });
    expect(info.entry.regs.rip).toBe(0x1000040);
  });

  it('enters an ELF32 vmlinux in 32-bit protected mode with ESI = boot_params', () => {
    const elf = makeElf({
      elfClass: 32, entry: 0x1000000n,
      segments: [{ paddr: 0x1000000, vaddr: 0xc1000000n, data: pattern(0x1000) }],
    });
    const initrd = pattern(0x10000);
    const { mem, info } = load(1024, { kernel: elf, kernelPath: '/k/vmlinux32', initrd, initrdPath: '/k/initrd' });
    expect(info.format).toBe('elf32');
    expect(info.entry.mode).toBe('protected');
    expect(info.entry.regs.rip).toBe(0x1000000);
    expect(info.entry.regs.rsi).toBe(ZP);
    // i386 lowmem: initrd below 0x38000000
    expect(info.initrd!.address + initrd.length).toBeLessThanOrEqual(0x38000000);
    expect(mem.readU32(ZP + 0x22c)).toBe(0x37ffffff);
  });
});

describe('loader errors', () => {
  it('rejects a file that is neither a bzImage nor an ELF', () => {
    const e = loaderError(() => load(64, { kernel: new TextEncoder().encode('#!/bin/sh\necho hi\n'), kernelPath: '/tmp/script' }));
    expect(e.message).toBe('/tmp/script: neither a bzImage nor an ELF vmlinux');
    expect(e.path).toBe('/tmp/script');
    expect(e.field).toBe('kernel');
    expect(loaderError(() => load(64, { kernel: new Uint8Array(0), kernelPath: '/tmp/empty' })).message).toMatch(/neither/);
  });

  it('reports a truncated bzImage with expected and actual sizes', () => {
    const full = makeBzImage({ payload: pattern(0x4000) });
    const e = loaderError(() => load(64, { kernel: full.slice(0, full.length - 100) }));
    expect(e.message).toBe(`/k/bzImage: truncated bzImage: the header says ${full.length} bytes (2560 setup + 16384 kernel), the file has ${full.length - 100}`);
    // cut inside the setup header
    expect(loaderError(() => load(64, { kernel: full.slice(0, 0x230) })).message).toMatch(/^\/k\/bzImage: truncated bzImage/);
  });

  it('rejects boot protocols older than 2.06, naming the version', () => {
    const e = loaderError(() => load(64, { kernel: makeBzImage({ version: 0x0204 }) }));
    expect(e.message).toMatch(/^\/k\/bzImage: Linux boot protocol 2\.04 is too old; nodevmm needs 2\.06 or newer/);
    expect(e.field).toBe('version');
  });

  it('rejects an initrd larger than guest memory', () => {
    const e = loaderError(() => load(32, { kernel: makeBzImage(), initrd: new Uint8Array(40 * MiB), initrdPath: '/k/big.cpio' }));
    expect(e.message).toMatch(/^initrd \/k\/big\.cpio \(40 MiB\) does not fit in guest memory \(32 MiB\)/);
    expect(e.field).toBe('initrd');
    expect(e.path).toBe('/k/big.cpio');
  });

  it('rejects an initrd that would overlap the kernel decompression area', () => {
    // 32 MiB RAM; kernel reserves up to 20 MiB; a 13 MiB initrd cannot fit above it
    const e = loaderError(() => load(32, { kernel: makeBzImage(), initrd: new Uint8Array(13 * MiB), initrdPath: '/k/i' }));
    expect(e.message).toMatch(/^initrd \/k\/i \(13 MiB\) does not fit in guest memory \(32 MiB\): 12 MiB free/);
  });

  it('rejects a command line longer than cmdline_size', () => {
    const e = loaderError(() => load(64, { kernel: makeBzImage({ cmdlineSize: 255 }), cmdline: 'x'.repeat(256) }));
    expect(e.message).toBe('cmdline: the command line is 256 bytes; /k/bzImage (cmdline_size) accepts at most 255');
    expect(e.field).toBe('cmdline');
    expect(() => load(64, { kernel: makeBzImage({ cmdlineSize: 255 }), cmdline: 'x'.repeat(255) })).not.toThrow();
    const elf = makeElf({ elfClass: 64, entry: 0x1000000n, segments: [{ paddr: 0x1000000, data: pattern(16) }] });
    expect(loaderError(() => load(64, { kernel: elf, cmdline: 'y'.repeat(2048) })).message).toMatch(/2048 bytes; the kernel \(COMMAND_LINE_SIZE\) accepts at most 2047/);
    expect(loaderError(() => load(64, { kernel: elf, cmdline: 'a\0b' })).field).toBe('cmdline');
  });

  it('rejects memory below the minimum and memory that does not back the layout', () => {
    const mem = GuestMemory.ofSize(8 * MiB);
    const e = loaderError(() => loadLinux(mem, { kernel: makeBzImage(), kernelPath: '/k', cmdline: '', memoryBytes: 8 * MiB }));
    expect(e.message).toMatch(/memory: .* at least 16 MiB/);
    expect(e.field).toBe('memory');
    const small = GuestMemory.ofSize(16 * MiB);
    expect(loaderError(() => loadLinux(small, { kernel: makeBzImage(), kernelPath: '/k', cmdline: '', memoryBytes: 32 * MiB })).message).toMatch(/does not back/);
  });

  it('rejects a kernel whose decompression needs more memory than the guest has', () => {
    const e = loaderError(() => load(16, { kernel: makeBzImage({ initSize: 0x2000000 }) }));
    expect(e.message).toMatch(/^kernel \/k\/bzImage needs guest memory up to 0x3000000 \(48 MiB\) to decompress; the guest has 16 MiB/);
    expect(e.field).toBe('memory');
  });

  it('rejects zero or too many vCPUs', () => {
    expect(loaderError(() => load(64, { kernel: makeBzImage(), cpus: 0 })).message).toMatch(/^cpus: expected an integer from 1 to 254, got 0/);
    expect(loaderError(() => load(64, { kernel: makeBzImage(), cpus: 300 })).field).toBe('cpus');
  });

  it('rejects ELF kernels for another machine, outside RAM, below 1 MiB, or with a stray entry', () => {
    const seg = [{ paddr: 0x1000000, data: pattern(64) }];
    expect(loaderError(() => load(64, { kernel: makeElf({ elfClass: 64, machine: 183, entry: 0x1000000n, segments: seg }), kernelPath: '/k/arm' })).message)
      .toBe('/k/arm: ELF64 for machine 183, expected 62 (x86-64)');
    expect(loaderError(() => load(16, { kernel: makeElf({ elfClass: 64, entry: 0x1000000n, segments: [{ paddr: 0x1000000, data: pattern(64), memsz: 0x200000 }] }), kernelPath: '/k/v' })).message)
      .toMatch(/^\/k\/v: segment 0 \[0x1000000, 0x1200000\) lies outside guest RAM \(16 MiB\)/);
    expect(loaderError(() => load(64, { kernel: makeElf({ elfClass: 64, entry: 0x80000n, segments: [{ paddr: 0x80000, data: pattern(64) }] }), kernelPath: '/k/v' })).message)
      .toMatch(/below 1 MiB/);
    expect(loaderError(() => load(64, { kernel: makeElf({ elfClass: 64, entry: 0x5000000n, segments: seg }), kernelPath: '/k/v' })).message)
      .toMatch(/entry point 0x5000000 is not inside any PT_LOAD/);
    const truncated = makeElf({ elfClass: 64, entry: 0x1000000n, segments: [{ paddr: 0x1000000, data: pattern(0x1000) }] });
    expect(loaderError(() => load(64, { kernel: truncated.slice(0, truncated.length - 10), kernelPath: '/k/v' })).message)
      .toMatch(/^\/k\/v: truncated ELF vmlinux: segment 0/);
    expect(loaderError(() => load(64, { kernel: truncated.slice(0, 30), kernelPath: '/k/v' })).message)
      .toMatch(/^\/k\/v: truncated ELF vmlinux/);
  });
});
