/**
 * `nodevmm run --virtio-transport pci` end to end, as a user runs it (child process, serial output to a file):
 * the reference guest mounts its disk over virtio-pci and powers off on its own (nodevmm.then=poweroff).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REFERENCE_GUEST_CMDLINE, initCmdline } from '../../lib/guest/guest-protocol.js';
import { errorLines, runCli } from '../cli/run-cli.js';
import { copyImage, tempDir } from './disk-files.js';
import { referenceImages } from './guest-vm.js';

const images = referenceImages();
const skip = 'skip' in images ? images.skip : undefined;
if (skip) console.warn(`[guest-cli-pci] skipped: ${skip}`);

describe.skipIf(skip !== undefined)('nodevmm run --virtio-transport pci (interpreter)', () => {
  const tmp = tempDir('guest-cli-pci');
  afterAll(() => tmp.remove());

  it('boots, mounts /dev/vda over virtio-pci, powers off with status 0', async () => {
    if ('skip' in images) return;
    const disk = copyImage(images.rootfs, tmp.dir, 'vda.ext4');
    const log = join(tmp.dir, 'serial.log');
    const t0 = performance.now();
    const r = await runCli([
      'run', '--accel', 'interp', '--kernel', images.kernel, '--initrd', images.initrd,
      '--append', `${REFERENCE_GUEST_CMDLINE} ${initCmdline({ rootdisk: '/dev/vda', then: 'poweroff' })}`,
      '--disk', disk, '--rng', '--virtio-transport', 'pci', '--serial', `file:${log}`,
    ]);
    console.log(`[guest-cli-pci] exit ${r.status} after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const serial = readFileSync(log, 'utf8');
    expect(r.status, `stderr:\n${r.stderr}\nserial tail:\n${serial.slice(-2000)}`).toBe(0);
    expect(errorLines(r.stderr).filter((l) => !l.startsWith('nodevmm: '))).toEqual([]);
    expect(serial).toMatch(/pci 0000:00:01\.0: \[1af4:1042\]/);
    expect(serial).toMatch(/pci 0000:00:02\.0: \[1af4:1044\]/);
    expect(serial).toContain('nodevmm-init: mounted /dev/vda on /mnt');
    expect(serial).toContain('reboot: System halted');
  }, 600_000);
});
