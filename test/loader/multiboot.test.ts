import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { loadMultiboot, type MultibootLoadOptions } from '../../lib/machine/loader/multiboot.js';
import { LoaderError } from '../../lib/machine/loader/errors.js';
import { e820Map, MiB } from '../../lib/machine/layout.js';
import { makeElf, makeMultibootHeader, pattern, sameBytes } from './images.js';

function boot(memMiB: number, opts: Partial<MultibootLoadOptions> & { kernel: Uint8Array }) {
  const mem = GuestMemory.ofSize(memMiB * MiB);
  const info = loadMultiboot(mem, { kernelPath: '/k/mb.elf', cmdline: 'console=ttyS0', memoryBytes: memMiB * MiB, ...opts });
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

const text = pattern(0x1800, 5);
const mbElf = (flags = 0x3, extra?: Uint8Array) =>
  makeElf({
    elfClass: 32,
    entry: 0x100010n,
    extra: extra ?? makeMultibootHeader({ flags }),
    segments: [
      { paddr: 0x100000, data: text },
      { paddr: 0x102000, data: pattern(0x100, 6), memsz: 0x3000 },
    ],
  });

describe('multiboot v1, ELF32 kernels', () => {
  it('loads PT_LOADs and enters in 32-bit protected mode with EAX magic and EBX = info', () => {
    const { mem, info } = boot(64, { kernel: mbElf() });
    expect(sameBytes(mem.view(0x100000, text.length), text)).toBe(true);
    expect(mem.read(0x102100, 0x2f00).every((b) => b === 0)).toBe(true);
    expect(info.kernel).toEqual({ start: 0x100000, end: 0x105000, entryPoint: 0x100010 });
    const st = info.entry;
    expect(st.mode).toBe('protected');
    expect(st.regs.rip).toBe(0x100010);
    expect(st.regs.rax).toBe(0x2badb002);
    expect(st.regs.rbx).toBe(info.infoAddress);
    expect(st.regs.rflags & 0x200).toBe(0); // IF clear
    expect(st.sregs.cr0 & 0x80000001).toBe(1);
    expect(st.sregs.cs).toMatchObject({ base: 0, limit: 0xffffffff, db: true, l: false });
  });

  it('fills the info structure: memory, mmap, cmdline, boot loader name, modules', () => {
    const modA = pattern(0x2345, 7);
    const modB = pattern(0x800, 8);
    const { mem, info } = boot(64, {
      kernel: mbElf(),
      cmdline: 'a=1 b=2',
      modules: [{ data: modA, path: '/k/initrd.cpio', cmdline: 'initrd.cpio rd=1' }, { data: modB, path: '/k/b.bin' }],
    });
    const mbi = info.infoAddress;
    const flags = mem.readU32(mbi);
    expect(flags & 0x1).toBe(0x1); // mem_*
    expect(flags & 0x4).toBe(0x4); // cmdline
    expect(flags & 0x8).toBe(0x8); // mods
    expect(flags & 0x40).toBe(0x40); // mmap
    expect(flags & 0x200).toBe(0x200); // boot_loader_name
    expect(mem.readU32(mbi + 4)).toBe(639);
    expect(mem.readU32(mbi + 8)).toBe(63 * 1024);
    expect(cstring(mem, mem.readU32(mbi + 16))).toBe('/k/mb.elf a=1 b=2');
    expect(cstring(mem, mem.readU32(mbi + 64))).toBe('nodevmm');
    // modules: page aligned after the kernel, contents and strings
    expect(mem.readU32(mbi + 20)).toBe(2);
    const mods = mem.readU32(mbi + 24);
    const m0 = { start: mem.readU32(mods), end: mem.readU32(mods + 4), str: cstring(mem, mem.readU32(mods + 8)) };
    const m1 = { start: mem.readU32(mods + 16), end: mem.readU32(mods + 20), str: cstring(mem, mem.readU32(mods + 24)) };
    expect(m0).toEqual({ start: 0x105000, end: 0x105000 + modA.length, str: 'initrd.cpio rd=1' });
    expect(m1.start % 4096).toBe(0);
    expect(m1.start).toBeGreaterThanOrEqual(m0.end);
    expect(m1.str).toBe('/k/b.bin');
    expect(sameBytes(mem.view(m0.start, modA.length), modA)).toBe(true);
    expect(sameBytes(mem.view(m1.start, modB.length), modB)).toBe(true);
    expect(info.modules.map((m) => m.address)).toEqual([m0.start, m1.start]);
    // mmap walked as a kernel does: advance by size + 4
    const len = mem.readU32(mbi + 44);
    let p = mem.readU32(mbi + 48);
    const end = p + len;
    const entries: { addr: number; size: number; type: number }[] = [];
    while (p < end) {
      const size = mem.readU32(p);
      entries.push({ addr: Number(mem.readU64(p + 4)), size: Number(mem.readU64(p + 12)), type: mem.readU32(p + 20) });
      p += size + 4;
    }
    expect(entries).toEqual(e820Map(64 * MiB));
    // MP table present too
    expect(new TextDecoder().decode(mem.read(info.mpTable.floatingPointerAddress, 4))).toBe('_MP_');
  });

  it('translates a higher-half virtual entry point', () => {
    const elf = makeElf({
      elfClass: 32, entry: 0xc0100020n, extra: makeMultibootHeader({ flags: 0 }),
      segments: [{ paddr: 0x100000, vaddr: 0xc0100000n, data: pattern(0x100) }],
    });
    expect(boot(32, { kernel: elf }).info.entry.regs.rip).toBe(0x100020);
  });
});

describe('multiboot v1, a.out kludge', () => {
  it('loads the raw image at load_addr, zeroes bss up to bss_end_addr, enters at entry_addr', () => {
    const code = pattern(0x1000, 4);
    const header = makeMultibootHeader({
      flags: 0x10003,
      aout: { headerAddr: 0x200000, loadAddr: 0x200000, loadEndAddr: 0x200000 + 32 + code.length, bssEndAddr: 0x204000, entryAddr: 0x200020 },
    });
    const file = new Uint8Array(32 + code.length + 64); // trailing bytes past load_end_addr are not loaded
    file.set(header);
    file.set(code, 32);
    file.fill(0x77, 32 + code.length);
    const mem = GuestMemory.ofSize(32 * MiB);
    mem.fill(0x200000, 0x5000, 0xaa);
    const info = loadMultiboot(mem, { kernel: file, kernelPath: '/k/raw', cmdline: '', memoryBytes: 32 * MiB });
    expect(sameBytes(mem.view(0x200000, 32), header)).toBe(true);
    expect(sameBytes(mem.view(0x200020, code.length), code)).toBe(true);
    expect(mem.read(0x200020 + code.length, 0x204000 - 0x200020 - code.length).every((b) => b === 0)).toBe(true);
    expect(mem.readU8(0x204000)).toBe(0xaa);
    expect(info.entry.regs.rip).toBe(0x200020);
    expect(info.kernel).toMatchObject({ start: 0x200000, end: 0x204000 });
    expect(cstring(mem, mem.readU32(info.infoAddress + 16))).toBe('/k/raw');
  });

  it('with load_end_addr 0 loads the rest of the file; header may sit after the load start', () => {
    const file = new Uint8Array(0x200);
    file.fill(0x90);
    file.set(makeMultibootHeader({ flags: 0x10000, aout: { headerAddr: 0x100040, loadAddr: 0x100000, loadEndAddr: 0, bssEndAddr: 0, entryAddr: 0x100000 } }), 0x40);
    const { mem, info } = boot(32, { kernel: file });
    expect(sameBytes(mem.view(0x100000, 0x200), file)).toBe(true);
    expect(info.kernel.end).toBe(0x100200);
  });
});

describe('multiboot errors', () => {
  it('reports a bad checksum with its offset', () => {
    const e = loaderError(() => boot(32, { kernel: mbElf(0, makeMultibootHeader({ flags: 0, checksum: 1 })) }));
    expect(e.message).toMatch(/^\/k\/mb\.elf: multiboot header at offset 0x74 has a bad checksum/);
  });

  it('refuses a required video mode (flag bit 2) and unknown required flags', () => {
    expect(loaderError(() => boot(32, { kernel: mbElf(0x4) })).message).toMatch(/requires a video mode \(flags bit 2\)/);
    expect(loaderError(() => boot(32, { kernel: mbElf(0x8) })).message).toMatch(/requires unsupported features \(flags 0x8\)/);
    // optional bits (16..31) other than the kludge are fine
    expect(() => boot(32, { kernel: mbElf(0x20003) })).not.toThrow();
  });

  it('reports an image without a header', () => {
    const elf = makeElf({ elfClass: 32, entry: 0x100000n, segments: [{ paddr: 0x100000, data: pattern(16) }] });
    expect(loaderError(() => boot(32, { kernel: elf })).message).toMatch(/no multiboot header \(magic 0x1badb002\) in the first 8192 bytes/);
  });

  it('refuses segments outside RAM or over the boot data, and modules that do not fit', () => {
    const outside = makeElf({ elfClass: 32, entry: 0x100000n, extra: makeMultibootHeader({ flags: 0 }), segments: [{ paddr: 0x100000, data: pattern(16), memsz: 40 * MiB }] });
    expect(loaderError(() => boot(32, { kernel: outside })).message).toMatch(/segment 0 \[0x100000, 0x2900000\) lies outside guest RAM \(32 MiB\)/);
    const low = makeElf({ elfClass: 32, entry: 0x7000n, extra: makeMultibootHeader({ flags: 0 }), segments: [{ paddr: 0x7000, data: pattern(16) }] });
    expect(loaderError(() => boot(32, { kernel: low })).message).toMatch(/segment 0 \[0x7000, 0x7010\) overlaps nodevmm's multiboot information/);
    const e = loaderError(() => boot(16, { kernel: mbElf(), modules: [{ data: new Uint8Array(16 * MiB), path: '/k/huge' }] }));
    expect(e.message).toBe('module /k/huge (16 MiB) does not fit in guest memory (16 MiB)');
    expect(e.path).toBe('/k/huge');
  });

  it('refuses an ELF64 multiboot image and a non-ELF image without load addresses', () => {
    const elf64 = makeElf({ elfClass: 64, entry: 0x100000n, extra: makeMultibootHeader({ flags: 0 }), segments: [{ paddr: 0x100000, data: pattern(16) }] });
    expect(loaderError(() => boot(32, { kernel: elf64 })).message).toMatch(/must be ELF32/);
    const raw = new Uint8Array(64);
    raw.set(makeMultibootHeader({ flags: 0 }));
    expect(loaderError(() => boot(32, { kernel: raw })).message).toMatch(/not ELF and its header has no load addresses/);
  });

  it('rejects an a.out kludge asking for more bytes than the file has', () => {
    const file = new Uint8Array(0x100);
    file.set(makeMultibootHeader({ flags: 0x10000, aout: { headerAddr: 0x100000, loadAddr: 0x100000, loadEndAddr: 0x101000, bssEndAddr: 0, entryAddr: 0x100000 } }));
    expect(loaderError(() => boot(32, { kernel: file })).message).toMatch(/asks for 4096 bytes from file offset 0; the file has 256/);
  });
});
