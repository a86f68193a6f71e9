/**
 * A minimal initramfs written by the test: a newc cpio with /dev/console and an /init that spins at CPL3 (a
 * hand-made static ELF64 with no system calls). Used when the reference guest's own initramfs is not built:
 * the kernel prints "Run /init as init process" before it executes /init either way.
 */

const align4 = (n: number): number => (n + 3) & ~3;

interface Entry { name: string; mode: number; data?: Buffer; rdevMajor?: number; rdevMinor?: number }

function newc(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }]) {
    const data = e.data ?? Buffer.alloc(0);
    const nameBytes = Buffer.from(`${e.name}\0`, 'latin1');
    const fields = [ino++, e.mode, 0, 0, 1, 0, data.length, 0, 0, e.rdevMajor ?? 0, e.rdevMinor ?? 0, nameBytes.length, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'latin1');
    const head = Buffer.concat([header, nameBytes]);
    parts.push(head, Buffer.alloc(align4(head.length) - head.length));
    parts.push(data, Buffer.alloc(align4(data.length) - data.length));
  }
  return Buffer.concat(parts);
}

/** ELF64 header + one PT_LOAD covering the file at 0x400000; the code is `jmp .`. */
export function spinningElf64(): Buffer {
  const code = Buffer.from([0xeb, 0xfe]);
  const size = 64 + 56 + code.length;
  const b = Buffer.alloc(size);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(62, 18); // x86-64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(0x400000n + 120n, 24); // entry
  b.writeBigUInt64LE(64n, 32); // phoff
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(1, 56);
  const ph = 64;
  b.writeUInt32LE(1, ph); // PT_LOAD
  b.writeUInt32LE(5, ph + 4); // R+X
  b.writeBigUInt64LE(0n, ph + 8);
  b.writeBigUInt64LE(0x400000n, ph + 16);
  b.writeBigUInt64LE(0x400000n, ph + 24);
  b.writeBigUInt64LE(BigInt(size), ph + 32);
  b.writeBigUInt64LE(BigInt(size), ph + 40);
  b.writeBigUInt64LE(0x1000n, ph + 48);
  b.set(code, 120);
  return b;
}

export function tinyInitramfs(): Buffer {
  return newc([
    { name: 'dev', mode: 0o040755 },
    { name: 'dev/console', mode: 0o020600, rdevMajor: 5, rdevMinor: 1 },
    { name: 'init', mode: 0o100755, data: spinningElf64() },
  ]);
}
