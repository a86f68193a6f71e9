/** Minimal reader for the "newc" (070701) cpio format the kernel unpacks as initramfs; test helper only. */

export interface CpioEntry {
  name: string;
  mode: number;
  /** File contents, or the target for a symlink. */
  data: Buffer;
  rdevMajor: number;
  rdevMinor: number;
}

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

const HEADER_SIZE = 110;
const align4 = (n: number): number => (n + 3) & ~3;

export function readNewcCpio(archive: Buffer): Map<string, CpioEntry> {
  const entries = new Map<string, CpioEntry>();
  let off = 0;
  for (;;) {
    if (off + HEADER_SIZE > archive.length) throw new Error(`cpio: truncated header at offset ${off}`);
    const magic = archive.toString('latin1', off, off + 6);
    if (magic !== '070701' && magic !== '070702') throw new Error(`cpio: bad magic ${JSON.stringify(magic)} at offset ${off}`);
    const field = (i: number): number => parseInt(archive.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const fileSize = field(6);
    const rdevMajor = field(9);
    const rdevMinor = field(10);
    const nameSize = field(11);
    const nameStart = off + HEADER_SIZE;
    const name = archive.toString('utf8', nameStart, nameStart + nameSize - 1);
    const dataStart = align4(nameStart + nameSize);
    if (dataStart + fileSize > archive.length) throw new Error(`cpio: ${name}: data runs past the end`);
    if (name === 'TRAILER!!!') return entries;
    entries.set(name.replace(/^\.?\//, ''), {
      name,
      mode,
      data: archive.subarray(dataStart, dataStart + fileSize),
      rdevMajor,
      rdevMinor,
    });
    off = align4(dataStart + fileSize);
  }
}
