import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { detectKernelFormat, loadKernelFromFiles, loadLinuxFromFiles, LoaderError, parseBzImage } from '../../lib/machine/loader/index.js';
import { MiB } from '../../lib/machine/layout.js';
import { findGuestArtifact } from './reference-artifacts.js';
import { makeBzImage, makeElf, makeMultibootHeader, pattern, sameBytes } from './images.js';

const dir = mkdtempSync(join(tmpdir(), 'nodevmm-loader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function loaderError(p: Promise<unknown>): Promise<LoaderError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof LoaderError) return e;
    throw e;
  }
  throw new Error('expected a LoaderError');
}

const mem64 = () => GuestMemory.ofSize(64 * MiB);

describe('loading from files', () => {
  it('reports a missing kernel or initrd by path', async () => {
    const k = join(dir, 'no-such-bzImage');
    const e = await loaderError(loadLinuxFromFiles(mem64(), { kernelPath: k, cmdline: '', memoryBytes: 64 * MiB }));
    expect(e.message).toBe(`kernel image not found: ${k}`);
    expect(e.path).toBe(k);
    expect(e.field).toBe('kernel');
    const kernel = join(dir, 'bzImage');
    writeFileSync(kernel, makeBzImage());
    const i = join(dir, 'no-such-initrd');
    const e2 = await loaderError(loadLinuxFromFiles(mem64(), { kernelPath: kernel, initrdPath: i, cmdline: '', memoryBytes: 64 * MiB }));
    expect(e2.message).toBe(`initrd not found: ${i}`);
    expect(e2.field).toBe('initrd');
  });

  it('reports a directory given as the kernel', async () => {
    const e = await loaderError(loadLinuxFromFiles(mem64(), { kernelPath: dir, cmdline: '', memoryBytes: 64 * MiB }));
    expect(e.message).toBe(`kernel image ${dir} is a directory, not a file`);
  });

  it('names a file that is no kernel at all', async () => {
    const p = join(dir, 'notes.txt');
    writeFileSync(p, 'hello\n');
    const e = await loaderError(loadKernelFromFiles(mem64(), { kernelPath: p, cmdline: '', memoryBytes: 64 * MiB }));
    expect(e.message).toBe(`${p}: neither a bzImage nor an ELF vmlinux`);
  });

  it('detects formats and dispatches to the right loader', async () => {
    const bz = makeBzImage();
    const elf64 = makeElf({ elfClass: 64, entry: 0x1000000n, segments: [{ paddr: 0x1000000, data: pattern(64) }] });
    const elf32 = makeElf({ elfClass: 32, entry: 0x1000000n, segments: [{ paddr: 0x1000000, data: pattern(64) }] });
    const mb = makeElf({ elfClass: 32, entry: 0x100000n, extra: makeMultibootHeader({ flags: 3 }), segments: [{ paddr: 0x100000, data: pattern(64) }] });
    expect(detectKernelFormat(bz)).toBe('bzImage');
    expect(detectKernelFormat(elf64)).toBe('elf64');
    expect(detectKernelFormat(elf32)).toBe('elf32');
    expect(detectKernelFormat(mb)).toBe('multiboot');
    expect(detectKernelFormat(new Uint8Array(100))).toBeUndefined();

    const mbPath = join(dir, 'mb.elf');
    const modPath = join(dir, 'mod.bin');
    writeFileSync(mbPath, mb);
    writeFileSync(modPath, pattern(5000));
    const r = await loadKernelFromFiles(mem64(), { kernelPath: mbPath, initrdPath: modPath, cmdline: 'x', memoryBytes: 64 * MiB });
    expect(r.loader).toBe('multiboot');
    if (r.loader === 'multiboot') expect(r.modules).toHaveLength(1);
    expect(r.entry.regs.rax).toBe(0x2badb002);

    const bzPath = join(dir, 'bz');
    writeFileSync(bzPath, bz);
    const l = await loadKernelFromFiles(mem64(), { kernelPath: bzPath, cmdline: 'x', memoryBytes: 64 * MiB, cpus: 2 });
    expect(l.loader).toBe('linux');
    expect(l.mpTable.ioapicId).toBe(2);
  });
});

const reference: [string, string][] = [
  ['bzImage-x86_64', 'long'],
  ['bzImage-i386', 'protected'],
  ['vmlinux-x86_64', 'long'],
  ['vmlinux-i386', 'protected'],
];

/** The newest reference initramfs: uncompressed since guest/build.sh stopped gzipping it, .cpio.gz before. */
function referenceInitramfs(arch: 'x86_64' | 'i386'): string | undefined {
  return findGuestArtifact(`initramfs-${arch}.cpio`) ?? findGuestArtifact(`initramfs-${arch}.cpio.gz`);
}

describe('reference kernels (guest/build.sh artifacts)', () => {
  for (const [name, mode] of reference) {
    const path = findGuestArtifact(name);
    if (!path) {
      it.skip(`${name}: not built (run guest/build.sh) — skipped`, () => {});
      console.warn(`[loader tests] skipping ${name}: no guest/build.sh artifact in the cache`);
      continue;
    }
    it(`${name} loads with its header parsed and enters in ${mode} mode`, async () => {
      const bytes = new Uint8Array(await readFile(path));
      const initrd = referenceInitramfs(name.endsWith('i386') ? 'i386' : 'x86_64');
      const memoryBytes = 256 * MiB;
      const mem = GuestMemory.ofSize(memoryBytes);
      const info = await loadLinuxFromFiles(mem, {
        kernelPath: path, ...(initrd ? { initrdPath: initrd } : {}), cmdline: 'console=ttyS0 panic=-1', memoryBytes, cpus: 2,
      });
      expect(info.entry.mode).toBe(mode);
      if (name.startsWith('bzImage')) {
        const h = parseBzImage(bytes, path);
        expect(info.format).toBe('bzImage');
        expect(h.version).toBeGreaterThanOrEqual(0x020f); // Linux 6.1 speaks 2.15
        expect(bytes.length).toBe(h.setupSize + h.payloadSize); // build.c pads to syssize * 16 exactly
        // tinyconfig kernels are not relocatable: loaded at 1 MiB, they decompress at pref_address
        expect(info.kernel.start).toBe(h.relocatable ? h.prefAddress : 0x100000);
        expect(info.kernel.reservedEnd).toBe(Math.max(h.prefAddress, info.kernel.start) + h.initSize);
        expect((h.xloadflags & 1) === 1).toBe(name.endsWith('x86_64'));
        expect(h.initSize).toBeGreaterThan(h.payloadSize);
        expect(h.cmdlineSize).toBe(2047);
        const payload = bytes.subarray(h.setupSize);
        expect(sameBytes(mem.view(info.kernel.start, payload.length), payload)).toBe(true);
        expect(info.entry.regs.rip).toBe(info.kernel.start + (mode === 'long' ? 0x200 : 0));
        expect(mem.readU16(0x7000 + 0x206)).toBe(h.version);
      } else {
        expect(info.format).toBe(name.endsWith('x86_64') ? 'elf64' : 'elf32');
        expect(info.entry.regs.rip).toBeGreaterThanOrEqual(0x100000);
        expect(info.entry.regs.rip).toBeLessThan(info.kernel.end);
      }
      if (initrd) {
        const rd = new Uint8Array(await readFile(initrd));
        expect(sameBytes(mem.view(info.initrd!.address, rd.length), rd)).toBe(true);
        expect(info.initrd!.address).toBeGreaterThanOrEqual(info.kernel.reservedEnd);
      }
    });
  }
});

describe('the uncompressed reference initramfs (~2 MiB) with each reference kernel and the memory sizes tests use', () => {
  for (const [name] of reference) {
    const arch = name.endsWith('i386') ? 'i386' : 'x86_64';
    const kernel = findGuestArtifact(name);
    const initrd = findGuestArtifact(`initramfs-${arch}.cpio`);
    if (!kernel || !initrd) {
      it.skip(`${name} + initramfs-${arch}.cpio: not built (run guest/build.sh) — skipped`, () => {});
      console.warn(`[loader tests] skipping ${name} + initramfs-${arch}.cpio: not in the guest cache`);
      continue;
    }
    for (const mib of [64, 128, 256]) {
      it(`${name}, ${mib} MiB: the initrd lies whole above the kernel's reserved end and inside RAM`, async () => {
        const memoryBytes = mib * MiB;
        const mem = GuestMemory.ofSize(memoryBytes);
        const info = await loadLinuxFromFiles(mem, { kernelPath: kernel, initrdPath: initrd, cmdline: 'console=ttyS0', memoryBytes, cpus: 1 });
        const rd = new Uint8Array(await readFile(initrd));
        expect(rd.length).toBeGreaterThan(1.5 * MiB);
        expect(info.initrd!.size).toBe(rd.length);
        expect(info.initrd!.address % 4096).toBe(0);
        expect(info.initrd!.address).toBeGreaterThanOrEqual(info.kernel.reservedEnd);
        expect(info.initrd!.address + rd.length).toBeLessThanOrEqual(memoryBytes);
        expect(sameBytes(mem.view(info.initrd!.address, rd.length), rd)).toBe(true);
        // The kernel reads the archive's first header from there: newc magic, uncompressed.
        expect(new TextDecoder().decode(mem.view(info.initrd!.address, 6))).toBe('070701');
      });
    }
  }
});
