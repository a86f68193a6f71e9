/**
 * fstrim in a real Linux guest shrinks a sparse raw image: the reference guest mounts a sparse copy of
 * rootfs.ext4 at /mnt, writes an 8 MiB file (the image's allocated blocks grow), removes it (they do not
 * shrink: ext4 without the discard mount option sends nothing), then `fstrim -v /mnt` sends virtio-blk
 * DISCARD requests that the raw backend turns into holes: the allocated blocks drop by about 8 MiB. The guest
 * unmounts before power-off and e2fsck -fn finds the filesystem clean. The same on a standalone qcow2 copy
 * (qemu-img convert): the discarded clusters become zero clusters whose host space is punched out; qemu-img
 * check is clean and the ext4 inside (converted back to raw) checks clean.
 */
import { execFileSync, spawnSync } from 'node:child_process';
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

const haveQemuImg = spawnSync('qemu-img', ['--version']).status === 0;

/** Bytes the host filesystem has allocated for `path` (what `stat -c %b` counts, in bytes). */
function allocated(path: string): number {
  return statSync(path).blocks * 512;
}

for (const accel of ['interp', 'kvm'] as GuestAccel[]) {
  const skip = imagesSkip ?? accelSkipReason(accel);
  const label = `guest-blk-discard ${accel}`;
  if (skip) console.warn(`[${label}] skipped: ${skip}`);
  else if (!haveQemuImg) console.warn(`[${label}] qcow2 case skipped: qemu-img not found (apt-get install qemu-utils)`);

  describe.skipIf(skip !== undefined)(`fstrim in the reference guest frees space in raw and qcow2 images (${accel})`, () => {
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

    /** Boot on `disk`, write 8 MiB, rm, fstrim, unmount, power off; the host's allocated bytes at each step. */
    async function trimScenario(disk: string, tag: string): Promise<void> {
      if ('skip' in images) return;
      const atBoot = allocated(disk);
      vm = await GuestVm.boot(images, { accel, label: `${label} ${tag}`, disks: [{ path: disk }], rootdisk: '/dev/vda' });
      await vm.shell();

      // The guest's block layer sees the discard and write-zeroes support the device advertises.
      const maxDiscard = Number((await vm.run('cat /sys/block/vda/queue/discard_max_bytes')).trim());
      expect(maxDiscard).toBeGreaterThan(0);
      expect(Number((await vm.run('cat /sys/block/vda/queue/write_zeroes_max_bytes')).trim())).toBeGreaterThan(0);

      // The image's inode tables are not initialized yet (mke2fs lazy_itable_init): the kernel's ext4lazyinit
      // thread zeroes them with WRITE_ZEROES requests a random few seconds after mount, group by group. Let it
      // finish first, so its allocations do not land between the measurements below.
      const lazy = await vm.run(
        "i=0; while ps | grep -q '[e]xt4lazyinit' && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done; echo \"lazyinit-running=$(ps | grep -c '[e]xt4lazyinit') after $i s\"",
        400_000,
      );
      vm.progress(`${lazy.trim()}; image allocated ${(allocated(disk) / MiB).toFixed(2)} MiB`);
      expect(lazy).toMatch(/lazyinit-running=0 /);

      const atStart = allocated(disk);
      expect((await vm.status('dd if=/dev/zero of=/mnt/big.bin bs=1M count=8 conv=fsync 2>/dev/null && sync')).status).toBe(0);
      const written = allocated(disk);
      vm.progress(`image allocated: ${(atStart / MiB).toFixed(2)} MiB before (${(atBoot / MiB).toFixed(2)} MiB at boot), ${(written / MiB).toFixed(2)} MiB after the 8 MiB file`);
      expect(written - atStart).toBeGreaterThanOrEqual(8 * MiB);

      expect((await vm.status('rm /mnt/big.bin && sync')).status).toBe(0);
      const removed = allocated(disk);
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

      const trimmed = allocated(disk);
      vm.progress(`after fstrim and power-off: ${(trimmed / MiB).toFixed(2)} MiB (freed ${((written - trimmed) / MiB).toFixed(2)} MiB of the ${((written - atStart) / MiB).toFixed(2)} MiB the file took)`);
      expect(written - trimmed).toBeGreaterThanOrEqual(7 * MiB);
    }

    it('raw: rm + fstrim -v /mnt drops the image\'s allocated blocks by ~8 MiB; e2fsck clean afterwards', async () => {
      await trimScenario(vda, 'raw');
      // ext4lazyinit's WRITE_ZEROES requests completed: every block group's inode table is marked zeroed.
      const groups = execFileSync('dumpe2fs', [vda], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')
        .filter((l) => /^Group \d+:/.test(l));
      expect(groups.length).toBeGreaterThan(0);
      expect(groups.filter((l) => !l.includes('ITABLE_ZEROED'))).toEqual([]);
      const check = ext4Clean(vda);
      if (!check.clean) console.log(check.output);
      expect(check.clean).toBe(true);
    }, 900_000);

    it.skipIf(!haveQemuImg)('qcow2 (skipped without qemu-img): fstrim frees the clusters\' host space; qemu-img check and e2fsck clean', async () => {
      if ('skip' in images) return;
      const qcow = join(tmp.dir, 'vda.qcow2');
      execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', images.rootfs, qcow]);
      await trimScenario(qcow, 'qcow2');
      const info = spawnSync('qemu-img', ['check', qcow], { encoding: 'utf8' });
      if (info.status !== 0) console.log(info.stdout + info.stderr);
      expect(info.status).toBe(0);
      const back = join(tmp.dir, 'vda-from-qcow2.ext4');
      execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow, back]);
      const check = ext4Clean(back);
      if (!check.clean) console.log(check.output);
      expect(check.clean).toBe(true);
    }, 900_000);
  });
}
