/**
 * Checks the reference guest artifacts guest/build.sh produced for the current inputs. Skips (saying why) when
 * they are not built: building takes minutes, so run `guest/build.sh` (or `nodevmm guest build`) first.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GUEST_ARCHES, referenceGuestBuildScript, referenceGuestDir, type GuestArch } from '../../lib/guest/reference-guest.js';
import { ROOTFS_MARKER_CONTENT } from '../../lib/guest/guest-protocol.js';
import { readNewcCpio, S_IFCHR, S_IFLNK, S_IFMT, S_IFREG } from './newc-cpio.js';

const guestDir = join(referenceGuestBuildScript(), '..');
const dir = referenceGuestDir();

function missing(files: string[]): string[] {
  return files.filter((f) => !existsSync(join(dir, f)));
}

function skipReason(files: string[]): string | undefined {
  const m = missing(files);
  if (m.length === 0) return undefined;
  return `reference guest not built (${m.join(', ')} missing in ${dir}); run guest/build.sh`;
}

/** Options required.list demands for an arch: [name, mustBeSet]. */
function requiredOptions(arch: GuestArch): Array<[string, boolean]> {
  const out: Array<[string, boolean]> = [];
  for (const raw of readFileSync(join(guestDir, 'kernel', 'required.list'), 'utf8').split('\n')) {
    const line = raw.replace(/#.*/, '').replace(/\s+/g, '');
    if (line === '') continue;
    const [name, only] = line.split('@') as [string, string | undefined];
    if (only !== undefined && only !== arch) continue;
    out.push(name.startsWith('!') ? [name.slice(1), false] : [name, true]);
  }
  return out;
}

const ELF_CLASS: Record<GuestArch, number> = { x86_64: 2, i386: 1 };
const ELF_MACHINE: Record<GuestArch, number> = { x86_64: 62, i386: 3 };

for (const arch of GUEST_ARCHES) {
  describe(`reference guest kernel (${arch})`, () => {
    const reason = skipReason([`bzImage-${arch}`, `vmlinux-${arch}`, `config-${arch}`]);
    if (reason) console.warn(`skipping ${arch} kernel checks: ${reason}`);

    it.skipIf(reason !== undefined)('bzImage has a Linux boot protocol >= 2.06 setup header', () => {
      const img = readFileSync(join(dir, `bzImage-${arch}`));
      expect(img.readUInt16LE(0x1fe)).toBe(0xaa55); // boot_flag
      expect(img.toString('latin1', 0x202, 0x206)).toBe('HdrS');
      expect(img.readUInt16LE(0x206)).toBeGreaterThanOrEqual(0x0206);
      const setupSects = img.readUInt8(0x1f1);
      expect(setupSects).toBeGreaterThan(0);
      expect(img.length).toBeGreaterThan((setupSects + 1) * 512);
      expect(img.readUInt8(0x211) & 0x01).toBe(1); // loadflags: LOADED_HIGH (bzImage)
      // xloadflags bit 0: the kernel has the 64-bit entry point at load address + 0x200.
      expect(img.readUInt16LE(0x236) & 0x01).toBe(arch === 'x86_64' ? 1 : 0);
    });

    it.skipIf(reason !== undefined)('vmlinux is an ELF executable for the arch with PT_LOAD segments', () => {
      const elf = readFileSync(join(dir, `vmlinux-${arch}`));
      expect(elf.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))).toBe(true);
      expect(elf[4]).toBe(ELF_CLASS[arch]);
      expect(elf[5]).toBe(1); // little endian
      expect(elf.readUInt16LE(16)).toBe(2); // ET_EXEC
      expect(elf.readUInt16LE(18)).toBe(ELF_MACHINE[arch]);
      const is64 = arch === 'x86_64';
      const phoff = is64 ? Number(elf.readBigUInt64LE(32)) : elf.readUInt32LE(28);
      const phentsize = elf.readUInt16LE(is64 ? 54 : 42);
      const phnum = elf.readUInt16LE(is64 ? 56 : 44);
      const loads: Array<{ paddr: number; filesz: number }> = [];
      for (let i = 0; i < phnum; i++) {
        const p = phoff + i * phentsize;
        if (elf.readUInt32LE(p) !== 1) continue; // PT_LOAD
        const paddr = is64 ? Number(elf.readBigUInt64LE(p + 24)) : elf.readUInt32LE(p + 12);
        const filesz = is64 ? Number(elf.readBigUInt64LE(p + 32)) : elf.readUInt32LE(p + 16);
        loads.push({ paddr, filesz });
      }
      expect(loads.length).toBeGreaterThan(0);
      // Loaded at CONFIG_PHYSICAL_START (16 MiB), well inside a small guest's RAM.
      expect(Math.min(...loads.map((l) => l.paddr))).toBe(0x1000000);
    });

    it.skipIf(reason !== undefined)('the final .config has every option in guest/kernel/required.list', () => {
      const config = readFileSync(join(dir, `config-${arch}`), 'utf8');
      const problems: string[] = [];
      for (const [name, mustBeSet] of requiredOptions(arch)) {
        const set = new RegExp(`^CONFIG_${name}=`, 'm').test(config);
        const isY = new RegExp(`^CONFIG_${name}=y$`, 'm').test(config);
        if (mustBeSet && !isY) problems.push(`CONFIG_${name} is not =y`);
        if (!mustBeSet && set) problems.push(`CONFIG_${name} must not be set`);
      }
      expect(problems).toEqual([]);
    });
  });

  describe(`reference guest initramfs (${arch})`, () => {
    const reason = skipReason([`initramfs-${arch}.cpio`]);
    if (reason) console.warn(`skipping ${arch} initramfs checks: ${reason}`);

    it.skipIf(reason !== undefined)('is an uncompressed newc archive (the kernel unpacks it without inflating)', () => {
      const archive = readFileSync(join(dir, `initramfs-${arch}.cpio`));
      expect(archive.toString('latin1', 0, 6)).toBe('070701');
      // gen_init_cpio pads the archive to a 512-byte multiple after the trailer.
      expect(archive.length % 512).toBe(0);
      expect(archive.includes(Buffer.from('TRAILER!!!\0', 'latin1'))).toBe(true);
    });

    it.skipIf(reason !== undefined)('holds /init, the udhcpc event script, busybox for the arch, applet links and /dev/console', () => {
      const entries = readNewcCpio(readFileSync(join(dir, `initramfs-${arch}.cpio`)));
      const init = entries.get('init');
      expect(init && init.mode & S_IFMT).toBe(S_IFREG);
      expect(init!.mode & 0o111).not.toBe(0);
      expect(init!.data.equals(readFileSync(join(guestDir, 'initramfs', 'init')))).toBe(true);

      // udhcpc runs /usr/share/udhcpc/default.script when no -s is given; /init passes that path explicitly too.
      const script = entries.get('usr/share/udhcpc/default.script');
      expect(script && script.mode & S_IFMT).toBe(S_IFREG);
      expect(script!.mode & 0o111).not.toBe(0);
      expect(script!.data.equals(readFileSync(join(guestDir, 'initramfs', 'udhcpc.script')))).toBe(true);

      const busybox = entries.get('bin/busybox');
      expect(busybox && busybox.mode & S_IFMT).toBe(S_IFREG);
      expect(busybox!.data.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect(busybox!.data[4]).toBe(ELF_CLASS[arch]);
      expect(busybox!.data.readUInt16LE(18)).toBe(ELF_MACHINE[arch]);

      for (const applet of ['bin/sh', 'bin/mount', 'bin/dd', 'sbin/poweroff', 'sbin/reboot', 'bin/cttyhack', 'sbin/ip', 'sbin/udhcpc', 'usr/bin/wget']) {
        const link = entries.get(applet);
        expect(link && link.mode & S_IFMT, applet).toBe(S_IFLNK);
        // gen_init_cpio stores the target with its terminating NUL; the kernel accepts either form.
        expect(link!.data.toString().replace(/\0$/, ''), applet).toBe('/bin/busybox');
      }
      const console_ = entries.get('dev/console');
      expect(console_ && console_.mode & S_IFMT).toBe(S_IFCHR);
      expect([console_!.rdevMajor, console_!.rdevMinor]).toEqual([5, 1]);
      for (const d of ['proc', 'sys', 'dev', 'mnt', 'tmp', 'run']) expect(entries.has(d), d).toBe(true);
    });
  });
}

describe('reference guest rootfs.ext4', () => {
  const reason = skipReason(['rootfs.ext4']);
  if (reason) console.warn(`skipping rootfs checks: ${reason}`);
  const image = join(dir, 'rootfs.ext4');

  it.skipIf(reason !== undefined)('passes e2fsck -n and holds the marker and busybox', () => {
    // e2fsck exits non-zero (and execFileSync throws) on any inconsistency.
    execFileSync('e2fsck', ['-fn', image], { stdio: 'pipe' });
    const cat = (path: string): string =>
      execFileSync('debugfs', ['-R', `cat ${path}`, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(cat('/nodevmm-rootfs-marker')).toBe(ROOTFS_MARKER_CONTENT);
    expect(cat('/data/pattern-1MiB.txt.sha256')).toMatch(/^[0-9a-f]{64} {2}pattern-1MiB\.txt\n$/);
    const stat = execFileSync('debugfs', ['-R', 'stat /bin/busybox', image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(stat).toMatch(/Type: regular/);
  });
});
