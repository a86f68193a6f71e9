/**
 * Boots the reference guest under QEMU (TCG, no KVM needed) to check the artifacts and /init behave as
 * lib/guest/guest-protocol.ts promises, independently of nodevmm's own VMM. Skips, saying why, when the
 * artifacts are not built or qemu-system-x86_64 is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { GUEST_ARCHES, referenceGuestArch } from '../../lib/guest/reference-guest.js';
import {
  BOOT_MARKER_PORT,
  BOOT_MARKER_VALUE,
  INIT_FIRST_LINE,
  INIT_SHELL_LINE,
  KERNEL_HALT_LINE,
  KERNEL_RESTART_LINE,
  REFERENCE_GUEST_CMDLINE,
  ROOTFS_MARKER_CONTENT,
  initCmdline,
} from '../../lib/guest/guest-protocol.js';

const QEMU = 'qemu-system-x86_64';
const haveQemu = spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0;
const BOOT_TIMEOUT_MS = 90_000;

class QemuRun {
  output = '';
  readonly exited: Promise<number | null>;
  /** Set on 'close' (process gone AND its stdout drained), not 'exit': the last serial lines can arrive after 'exit'. */
  private closed = false;
  private waiters: Array<() => void> = [];

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (c: Buffer) => {
      this.output += c.toString('latin1');
      for (const w of this.waiters) w();
    });
    child.stderr!.on('data', (c: Buffer) => {
      this.output += c.toString('latin1');
    });
    this.exited = new Promise((resolve) => child.on('close', (code) => {
      this.closed = true;
      for (const w of this.waiters) w();
      resolve(code);
    }));
  }

  /** Resolves when the serial output contains `text`; rejects (with the output so far) on timeout or exit. */
  waitFor(text: string, timeoutMs = BOOT_TIMEOUT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`timed out waiting for ${JSON.stringify(text)}; output:\n${this.output}`)), timeoutMs);
      const check = (): void => {
        if (this.output.includes(text)) finish();
        else if (this.closed) finish(new Error(`QEMU exited (${this.child.exitCode}) before ${JSON.stringify(text)}; output:\n${this.output}`));
      };
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        if (err) reject(err);
        else resolve();
      };
      this.waiters.push(check);
      check();
    });
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

function startQemu(args: string[]): QemuRun {
  const child = spawn(QEMU, ['-machine', 'pc', '-accel', 'tcg', '-m', '256', '-smp', '2', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return new QemuRun(child);
}

for (const arch of GUEST_ARCHES) {
  const guest = referenceGuestArch(arch);
  const reason = !haveQemu ? `${QEMU} is not installed (apt-get install qemu-system-x86)` : guest === undefined ? `${arch} reference guest not built; run guest/build.sh` : undefined;
  if (reason) console.warn(`skipping QEMU boot of the ${arch} reference guest: ${reason}`);

  describe.skipIf(reason !== undefined)(`reference guest boots under QEMU TCG (${arch})`, () => {
    it('prints the first /init line and writes the boot marker to port 0x501', async () => {
      // isa-debug-exit on the marker port turns the marker write into QEMU's exit status (value << 1) | 1.
      const run = startQemu([
        '-kernel', guest!.bzImage, '-initrd', guest!.initramfs, '-append', REFERENCE_GUEST_CMDLINE,
        '-device', `isa-debug-exit,iobase=0x${BOOT_MARKER_PORT.toString(16)},iosize=1`,
      ]);
      try {
        await run.waitFor(INIT_FIRST_LINE);
        const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), BOOT_TIMEOUT_MS));
        const status = await Promise.race([run.exited, timeout]);
        expect(status, run.output).toBe((BOOT_MARKER_VALUE << 1) | 1);
        // The /init line is the first line userspace prints. Kernel printk lines ("[    1.5] ...") may still
        // interleave after "Run /init" (e.g. a late TSC warning under a loaded TCG host), so skip those.
        const afterKernel = run.output.slice(run.output.indexOf('Run /init as init process'));
        const userspaceLines = afterKernel.split('\n').slice(1).map((l) => l.trim()).filter((l) => l !== '' && !/^\[\s*\d+\.\d+\]/.test(l));
        expect(userspaceLines[0]).toBe(INIT_FIRST_LINE);
      } finally {
        run.kill();
      }
    });

    it('mounts the virtio-blk rootfs, runs shell commands, and `poweroff` halts the kernel', async () => {
      const run = startQemu([
        '-kernel', guest!.bzImage, '-initrd', guest!.initramfs,
        '-append', `${REFERENCE_GUEST_CMDLINE} ${initCmdline({ rootdisk: '/dev/vda' })}`,
        '-drive', `file=${guest!.rootfs},format=raw,if=virtio,snapshot=on`,
      ]);
      try {
        await run.waitFor('nodevmm-init: mounted /dev/vda on /mnt');
        await run.waitFor(INIT_SHELL_LINE);
        run.child.stdin!.write('cd /mnt/data && sha256sum -c pattern-1MiB.txt.sha256; cat /mnt/nodevmm-rootfs-marker; poweroff\n');
        await run.waitFor(KERNEL_HALT_LINE);
        expect(run.output).toContain('pattern-1MiB.txt: OK');
        expect(run.output).toContain(ROOTFS_MARKER_CONTENT.trim());
      } finally {
        run.kill();
      }
    });

    it('nodevmm.then=reboot resets the machine (QEMU -no-reboot exits on the reset)', async () => {
      const run = startQemu([
        '-kernel', guest!.bzImage, '-initrd', guest!.initramfs,
        '-append', `${REFERENCE_GUEST_CMDLINE} ${initCmdline({ then: 'reboot' })}`,
      ]);
      try {
        await run.waitFor(KERNEL_RESTART_LINE);
        const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), BOOT_TIMEOUT_MS));
        expect(await Promise.race([run.exited, timeout]), run.output).toBe(0);
      } finally {
        run.kill();
      }
    });
  });
}
