/**
 * Corrupted images must fail with a LoaderError (a message naming the file), never with a RangeError,
 * TypeError or GuestMemoryError from deep inside the loader. Deterministic mutations of valid images.
 */
import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { LoaderError } from '../../lib/machine/loader/errors.js';
import { loadLinux } from '../../lib/machine/loader/linux.js';
import { loadMultiboot } from '../../lib/machine/loader/multiboot.js';
import { MiB } from '../../lib/machine/layout.js';
import { makeBzImage, makeElf, makeMultibootHeader, pattern } from './images.js';

/** xorshift32: reproducible pseudo-random numbers. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

/** Overwrites 1-4 random bytes within [0, span) with random values, sometimes with 0xff.. or 0 runs. */
function mutate(image: Uint8Array, span: number, next: () => number): Uint8Array {
  const out = image.slice();
  const n = 1 + (next() % 4);
  for (let i = 0; i < n; i++) {
    const at = next() % Math.min(span, out.length);
    const mode = next() % 3;
    out[at] = mode === 0 ? 0xff : mode === 1 ? 0 : next() & 0xff;
  }
  return next() % 8 === 0 ? out.slice(0, next() % out.length) : out;
}

function expectOnlyLoaderErrors(run: (img: Uint8Array) => unknown, base: Uint8Array, span: number, seed: number): { ok: number; rejected: number } {
  const next = rng(seed);
  let ok = 0;
  let rejected = 0;
  for (let i = 0; i < 400; i++) {
    const img = mutate(base, span, next);
    try {
      run(img);
      ok++;
    } catch (e) {
      if (!(e instanceof LoaderError)) throw new Error(`iteration ${i}: ${(e as Error).name}: ${(e as Error).message}`);
      expect(e.message.length).toBeGreaterThan(10);
      rejected++;
    }
  }
  return { ok, rejected };
}

const memoryBytes = 32 * MiB;
const mem = GuestMemory.ofSize(memoryBytes);

describe('corrupted images only produce LoaderErrors', () => {
  it('bzImage header mutations', () => {
    const r = expectOnlyLoaderErrors(
      (img) => loadLinux(mem, { kernel: img, kernelPath: '/f/bz', cmdline: 'console=ttyS0', memoryBytes, initrd: pattern(0x10000), initrdPath: '/f/rd' }),
      makeBzImage({ initSize: 0x200000 }), 0x270, 1,
    );
    expect(r.rejected).toBeGreaterThan(0);
    expect(r.ok).toBeGreaterThan(0);
  });

  it.each([64, 32] as const)('ELF%i header and program header mutations', (elfClass) => {
    const base = makeElf({
      elfClass, entry: 0x1000000n, withNote: true,
      segments: [{ paddr: 0x1000000, data: pattern(0x400) }, { paddr: 0x1100000, data: pattern(0x100), memsz: 0x1000 }],
    });
    const r = expectOnlyLoaderErrors(
      (img) => loadLinux(mem, { kernel: img, kernelPath: '/f/vmlinux', cmdline: '', memoryBytes }),
      base, elfClass === 64 ? 64 + 3 * 56 : 52 + 3 * 32, elfClass,
    );
    expect(r.rejected).toBeGreaterThan(0);
  });

  it('multiboot ELF and a.out kludge mutations', () => {
    const elf = makeElf({ elfClass: 32, entry: 0x100000n, extra: makeMultibootHeader({ flags: 3 }), segments: [{ paddr: 0x100000, data: pattern(0x200) }] });
    expectOnlyLoaderErrors(
      (img) => loadMultiboot(mem, { kernel: img, kernelPath: '/f/mb', cmdline: 'x', memoryBytes, modules: [{ data: pattern(100), path: '/f/m' }] }),
      elf, elf.length, 7,
    );
    const raw = new Uint8Array(0x400);
    raw.set(makeMultibootHeader({ flags: 0x10003, aout: { headerAddr: 0x100000, loadAddr: 0x100000, loadEndAddr: 0x100400, bssEndAddr: 0x101000, entryAddr: 0x100020 } }));
    // Fix the checksum after mutating flags is not done on purpose: both checksum and address errors are covered.
    expectOnlyLoaderErrors(
      (img) => loadMultiboot(mem, { kernel: img, kernelPath: '/f/raw', cmdline: '', memoryBytes }),
      raw, 32, 9,
    );
  });
});
