/**
 * virtio-blk and virtio-rng as a real Linux guest sees them (virtio-mmio transport): the reference guest mounts
 * a copy of rootfs.ext4 at /mnt, writes a file the host then reads from the image with debugfs, finds it again
 * after a second boot, verifies the 1 MiB pattern file with sha256sum, cannot write a read-only disk, writes
 * through a qcow2 overlay without touching its base, and reads the host CSPRNG through /dev/hwrng.
 * Two boots per accelerator (the interpreter here; KVM where KVM runs Linux natively).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQcow2 } from '../../lib/block/index.js';
import { copyImage, ext4CatAfterReplay, hasDebugfs, sha256File, tempDir } from './disk-files.js';
import { accelSkipReason, GuestVm, referenceImages, type GuestAccel } from './guest-vm.js';

const images = referenceImages();
const imagesSkip = 'skip' in images ? images.skip : !hasDebugfs() ? 'debugfs (e2fsprogs) is not installed' : undefined;

for (const accel of ['interp', 'kvm'] as GuestAccel[]) {
  const skip = imagesSkip ?? accelSkipReason(accel);
  const label = `guest-blk ${accel}`;
  if (skip) console.warn(`[${label}] skipped: ${skip}`);

  describe.skipIf(skip !== undefined)(`virtio-blk / virtio-rng in the reference guest (${accel}, virtio-mmio)`, () => {
    let tmp: ReturnType<typeof tempDir>;
    let vda: string;
    let vdb: string;
    let base: string;
    let overlay: string;
    let roHash: string;
    let baseHash: string;
    let vm: GuestVm | undefined;

    beforeAll(async () => {
      if ('skip' in images) return;
      tmp = tempDir('guest-blk');
      vda = copyImage(images.rootfs, tmp.dir, 'vda.ext4');
      vdb = copyImage(images.rootfs, tmp.dir, 'vdb-ro.ext4');
      base = copyImage(images.rootfs, tmp.dir, 'base.ext4');
      overlay = `${tmp.dir}/overlay.qcow2`;
      await createQcow2(overlay, { backingFile: base });
      roHash = sha256File(vdb);
      baseHash = sha256File(base);
    });
    afterAll(async () => {
      await vm?.kill();
      tmp?.remove();
    });

    const disks = () => [{ path: vda }, { path: vdb, readOnly: true }, { path: overlay }];

    it('first boot: write a file, checksum the pattern, read-only disk, qcow2 overlay, hwrng, dd', async () => {
      if ('skip' in images) return;
      vm = await GuestVm.boot(images, { accel, label, disks: disks(), rng: true, rootdisk: '/dev/vda' });
      await vm.shell();

      expect((await vm.run('cat /mnt/nodevmm-rootfs-marker')).trim()).toBe('nodevmm rootfs marker v1');
      expect((await vm.run('ls /sys/block | grep vd')).split(/\s+/).filter(Boolean)).toEqual(['vda', 'vdb', 'vdc']);

      // The 1 MiB pattern file, hashed by the guest, against the hash stored next to it.
      const sums = await vm.run('sha256sum /mnt/data/pattern-1MiB.txt | cut -d" " -f1; cut -d" " -f1 /mnt/data/pattern-1MiB.txt.sha256');
      const [computed, stored] = sums.trim().split('\n');
      expect(computed).toMatch(/^[0-9a-f]{64}$/);
      expect(computed).toBe(stored);

      const w = await vm.status('echo "hello from the guest" > /mnt/hello.txt && sync');
      expect(w.status).toBe(0);

      // Read-only disk: the block layer says ro, raw writes and file writes fail, reads work.
      expect((await vm.run('cat /sys/block/vdb/ro')).trim()).toBe('1');
      const raw = await vm.status('dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=fsync');
      expect(raw.status).not.toBe(0);
      expect((await vm.status('mkdir -p /ro && mount -o ro /dev/vdb /ro')).status).toBe(0);
      expect((await vm.run('cat /ro/nodevmm-rootfs-marker')).trim()).toBe('nodevmm rootfs marker v1');
      const roWrite = await vm.status('echo nope > /ro/nope.txt');
      expect(roWrite.status).not.toBe(0);
      expect(roWrite.output).toMatch(/Read-only file system/i);
      await vm.run('umount /ro');

      // qcow2 overlay: writes go to the overlay file.
      expect((await vm.status('mkdir -p /q && mount /dev/vdc /q && echo "written through qcow2" > /q/overlay.txt && sync && umount /q')).status).toBe(0);

      // virtio-rng: the kernel picked it, and it gives bytes.
      expect((await vm.run('cat /sys/class/misc/hw_random/rng_current')).trim()).toMatch(/^virtio_rng\.\d+$/);
      const hex = (await vm.run('dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1')).trim().split(/\s+/);
      expect(hex).toHaveLength(16);
      expect(hex.some((b) => b !== '00')).toBe(true);

      // Guest-side sequential read throughput (figure only; timing is not asserted).
      const dd = await vm.ddRead('/dev/vda', 32);
      vm.progress(`guest dd over virtio-mmio: ${dd.records}, ${dd.mibPerSecond.toFixed(1)} MiB/s by the guest clock (${dd.guestSeconds.toFixed(2)} s guest, ${dd.hostSeconds.toFixed(2)} s host)`);
      expect(dd.records).toBe('32+0 records out');

      const exit = await vm.powerOff();
      expect(exit.reason).toBe('power-off');
      expect(exit.status).toBe(0);

      // Host side: the file is in the image, the read-only image and the qcow2 base are byte-for-byte unchanged.
      expect(ext4CatAfterReplay(vda, '/hello.txt', tmp.dir)).toBe('hello from the guest\n');
      expect(sha256File(vdb)).toBe(roHash);
      expect(sha256File(base)).toBe(baseHash);
    }, 900_000);

    it('second boot on the same images: the file is still there, the overlay shows its write', async () => {
      if ('skip' in images) return;
      vm = await GuestVm.boot(images, { accel, label: `${label} (reboot)`, disks: disks(), rootdisk: '/dev/vda' });
      await vm.shell();
      expect(await vm.run('cat /mnt/hello.txt')).toBe('hello from the guest\n');
      expect((await vm.status('mkdir -p /q && mount -o ro /dev/vdc /q')).status).toBe(0);
      expect(await vm.run('cat /q/overlay.txt')).toBe('written through qcow2\n');
      // The base has no such file: the write lives only in the overlay.
      expect((await vm.status('mkdir -p /b && mount -o ro /dev/vdb /b && test ! -e /b/overlay.txt')).status).toBe(0);
      const exit = await vm.powerOff();
      expect(exit.status).toBe(0);
      expect(sha256File(base)).toBe(baseHash);
      expect(sha256File(vdb)).toBe(roHash);
    }, 900_000);
  });
}
