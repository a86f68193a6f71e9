/** Host-side helpers for guest disk tests: temp copies of images, hashes, reading files out of ext4 images. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `nodevmm-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function copyImage(source: string, dir: string, name: string): string {
  const path = join(dir, name);
  copyFileSync(source, path);
  return path;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A file's content inside an ext4 image, read with e2fsprogs' debugfs (no mount, no root needed). */
export function ext4Cat(image: string, file: string): string {
  return execFileSync('debugfs', ['-R', `cat ${file}`, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `e2fsck -fn`: true when the filesystem is clean (the guest unmounted or synced it properly). */
export function ext4Clean(image: string): { clean: boolean; output: string } {
  try {
    const output = execFileSync('e2fsck', ['-fn', image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { clean: true, output };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { clean: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

export function hasDebugfs(): boolean {
  try {
    execFileSync('debugfs', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A file from an ext4 image that a guest left mounted (synced, then powered off): the metadata may still be
 * only in the journal, which debugfs does not replay. So replay it on a copy with `e2fsck -fy` (what the next
 * mount would do), require the copy to check clean, then read the file with debugfs.
 */
export function ext4CatAfterReplay(image: string, file: string, scratchDir: string): string {
  const copy = join(scratchDir, `replay-${Date.now()}.ext4`);
  copyFileSync(image, copy);
  try {
    try {
      execFileSync('e2fsck', ['-fy', copy], { stdio: 'ignore' });
    } catch (e) {
      // Exit status 1 means "file system was modified" (the journal replay); anything above is an error.
      const status = (e as { status?: number }).status;
      if (status !== 1) throw new Error(`e2fsck -fy ${image} (copy) exited with status ${status}`);
    }
    const check = ext4Clean(copy);
    if (!check.clean) throw new Error(`the guest left ${image} inconsistent:\n${check.output}`);
    return ext4Cat(copy, file);
  } finally {
    rmSync(copy, { force: true });
  }
}
