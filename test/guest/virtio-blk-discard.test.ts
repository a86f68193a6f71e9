/**
 * fstrim in a real Linux guest shrinks a sparse raw image: the reference guest mounts a sparse copy of
 * rootfs.ext4 at /mnt, writes an 8 MiB file (the image's allocated blocks grow), removes it (they do not
 * shrink: ext4 without the discard mount option sends nothing), then `fstrim -v /mnt` sends virtio-blk
 * DISCARD requests that the raw backend turns into holes: the allocated blocks drop by about 8 MiB. The guest
 * unmounts before power-off and e2fsck -fn finds the filesystem clean.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeFallocate } from '../../lib/block/fallocate.js';
import { ext4Clean, tempDir } from './disk-files.js';
import { accelSkipReason, GuestVm, referenceImages, type GuestAccel } from './guest-vm.js';

const MiB = 1 << 20;
const images = referenceImages();
const imagesSkip =
  'skip' in images
    ? images.skip
    : nativeFallocate() === null
      ? 'the native addon has no fallocate (not built, or built before native/fallocate.cc)'
      : undefined;

/** Bytes the host filesystem has allocated for `path` (what `stat -c %b` counts, in bytes). */
function allocated(path: string): number {
  return statSync(path).blocks * 512;
}

for (const accel of ['interp', 'kvm'] as GuestAccel[]) {
  const skip = imagesSkip ?? accelSkipReason(accel);
  const label = `guest-blk-discard ${accel}`;
  if (skip) console.warn(`[${label}] skipped: ${skip}`);

  describe.skipIf(skip !== undefined)(`fstrim in the reference guest frees space in a raw image (${accel})`, () => {
    let tmp: ReturnType<typeof tempDir>;
    let vda: string;
    let vm: GuestVm | undefined;

    beforeAll(() => {
      if ('skip' in images) return;
      tmp = tempDir('guest-blk-discard');
      vda = join(tmp.dir, 'vda.ext4');
      // A sparse copy: free space in the image is holes, so allocation changes are the guest's doing.
      execFileSync('cp', ['--sparse=always', images.rootfs, vda]);
    });
    afterAll(async () => {
      await vm?.kill();
      tmp?.remove();
    });

    it('rm + fstrim -v /mnt drops the image\'s allocated blocks by ~8 MiB; e2fsck clean afterwards', async () => {
      if ('skip' in images) return;
      const atStart = allocated(vda);
      vm = await GuestVm.boot(images, { accel, label, disks: [{ path: vda }], rootdisk: '/dev/vda' });
      await vm.shell();

      // The guest's block layer sees the discard support the device advertises.
      const maxDiscard = Number((await vm.run('cat /sys/block/vda/queue/discard_max_bytes')).trim());
      expect(maxDiscard).toBeGreaterThan(0);

      expect((await vm.status('dd if=/dev/zero of=/mnt/big.bin bs=1M count=8 conv=fsync 2>/dev/null && sync')).status).toBe(0);
      const written = allocated(vda);
      vm.progress(`image allocated: ${(atStart / MiB).toFixed(2)} MiB at start, ${(written / MiB).toFixed(2)} MiB after the 8 MiB file`);
      expect(written - atStart).toBeGreaterThanOrEqual(8 * MiB);

      expect((await vm.status('rm /mnt/big.bin && sync')).status).toBe(0);
      const removed = allocated(vda);
      vm.progress(`after rm + sync: ${(removed / MiB).toFixed(2)} MiB`);

      const trim = await vm.status('fstrim -v /mnt');
      vm.progress(`fstrim: ${trim.output.trim()}`);
      expect(trim.status).toBe(0);
      const m = /(\d+) bytes trimmed/.exec(trim.output);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(8 * MiB);

      expect((await vm.status('sync && umount /mnt')).status).toBe(0);
      const exit = await vm.powerOff();
      expect(exit.reason).toBe('power-off');
      expect(exit.status).toBe(0);

      const trimmed = allocated(vda);
      vm.progress(`after fstrim and power-off: ${(trimmed / MiB).toFixed(2)} MiB (freed ${((written - trimmed) / MiB).toFixed(2)} MiB of the ${((written - atStart) / MiB).toFixed(2)} MiB the file took)`);
      expect(written - trimmed).toBeGreaterThanOrEqual(7 * MiB);

      const check = ext4Clean(vda);
      if (!check.clean) console.log(check.output);
      expect(check.clean).toBe(true);
    }, 900_000);
  });
}
