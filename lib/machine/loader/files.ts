/**
 * The thin layer between the pure loaders and the file system: reads images, turns fs errors into
 * LoaderErrors that say which file and what is wrong with it, and picks the loader for a kernel image.
 */

import { readFile } from 'node:fs/promises';
import type { GuestMemory } from '../guest-memory.js';
import { isBzImage } from './bzimage.js';
import { isElf } from './elf.js';
import { LoaderError } from './errors.js';
import { type LinuxBootInfo, type LinuxLoadOptions, loadLinux } from './linux.js';
import { type MultibootBootInfo, loadMultiboot } from './multiboot.js';
import { hasMultibootMagic } from './multiboot-header.js';

export type KernelFormat = 'bzImage' | 'multiboot' | 'elf64' | 'elf32';

/** Which loader a kernel image needs; undefined when it is none of the formats we boot. */
export function detectKernelFormat(bytes: Uint8Array): KernelFormat | undefined {
  if (isBzImage(bytes)) return 'bzImage';
  if (hasMultibootMagic(bytes)) return 'multiboot';
  if (isElf(bytes) && bytes.length > 4) return bytes[4] === 1 ? 'elf32' : 'elf64';
  return undefined;
}

/** Reads a whole file; `role` ("kernel image", "initrd", "multiboot module") appears in the error. */
export async function readImageFile(path: string, role: string, field: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? `${role} not found: ${path}` :
      code === 'EACCES' || code === 'EPERM' ? `${role} ${path} is not readable (permission denied)` :
      code === 'EISDIR' ? `${role} ${path} is a directory, not a file` :
      `${role} ${path} could not be read: ${(e as Error).message}`;
    throw new LoaderError(reason, path, field);
  }
}

/** The Linux load options with the images named by path instead of passed as bytes. */
export type KernelFiles = Omit<LinuxLoadOptions, 'kernel' | 'initrd'>;

export async function loadLinuxFromFiles(mem: GuestMemory, f: KernelFiles): Promise<LinuxBootInfo> {
  const kernel = await readImageFile(f.kernelPath, 'kernel image', 'kernel');
  const initrd = f.initrdPath === undefined ? undefined : await readImageFile(f.initrdPath, 'initrd', 'initrd');
  return loadLinux(mem, {
    ...f,
    kernel,
    ...(initrd ? { initrd } : {}),
  });
}

export type KernelBootInfo =
  | ({ loader: 'linux' } & LinuxBootInfo)
  | ({ loader: 'multiboot' } & MultibootBootInfo);

/**
 * Reads a kernel and boots it with the loader its format needs. For a multiboot kernel the initrd, if any,
 * becomes its only module.
 */
export async function loadKernelFromFiles(mem: GuestMemory, f: KernelFiles): Promise<KernelBootInfo> {
  const kernel = await readImageFile(f.kernelPath, 'kernel image', 'kernel');
  const initrd = f.initrdPath === undefined ? undefined : await readImageFile(f.initrdPath, 'initrd', 'initrd');
  if (detectKernelFormat(kernel) === 'multiboot') {
    const info = loadMultiboot(mem, {
      ...f,
      kernel,
      modules: initrd && f.initrdPath !== undefined ? [{ data: initrd, path: f.initrdPath }] : [],
    });
    return { loader: 'multiboot', ...info };
  }
  // loadLinux reports anything that is neither a bzImage nor an ELF vmlinux.
  return { loader: 'linux', ...loadLinux(mem, { ...f, kernel, ...(initrd ? { initrd } : {}) }) };
}
