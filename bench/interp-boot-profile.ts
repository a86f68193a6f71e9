/**
 * Interpreter boot measurement for profiling work (not a test): boots a kernel + initramfs through the Machine API on
 * the interpreter (one vCPU) until the guest's first line from /init, then prints one JSON line with instructions
 * retired, CPU seconds of this process (user + system; the host is shared, so CPU time is steadier than wall time),
 * instructions per CPU-second, translated blocks and the host load average.
 *
 * Default guest: the reference build for the current guest/ inputs (lib/guest/reference-guest.ts): its vmlinux (what
 * the CLI boots: no in-guest kernel decompressor) and its uncompressed initramfs. Run under `node --cpu-prof` for a
 * profile:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/interp-boot-profile.ts [--arch x86_64|i386] [--kernel K --initrd I]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { InterpAccelerator } from '../lib/accel/interp/index.js';
import { referenceGuestArch, type GuestArch } from '../lib/guest/reference-guest.js';
import { validateMachineConfig } from '../lib/machine/config.js';
import { Machine } from '../lib/machine/machine.js';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'x86_64' },
    kernel: { type: 'string' },
    initrd: { type: 'string' },
    cpus: { type: 'string', default: '1' },
  },
});
const arch = values.arch;
if (arch !== 'x86_64' && arch !== 'i386') throw new Error(`--arch must be x86_64 or i386, got ${String(arch)}`);

/** The reference guest for the current inputs; a missing build is an error naming the fix. */
function referenceFiles(): { kernel: string; initrd: string } {
  const found = referenceGuestArch(arch as GuestArch);
  if (!found) throw new Error(`the ${arch} reference guest is not built (run guest/build.sh --arch ${arch}), or pass --kernel and --initrd`);
  return { kernel: found.vmlinux, initrd: found.initramfs };
}

const { kernel, initrd } = values.kernel && values.initrd ? { kernel: values.kernel, initrd: values.initrd } : referenceFiles();
const accelerator = new InterpAccelerator();
const machine = await Machine.create(validateMachineConfig({
  kernel, initrd, cpus: Number(values.cpus), memoryMiB: 256, accel: 'interp', serial: 'none', cmdline: 'console=ttyS0',
}), { accelerator, bindSerial: false });
let text = '';
const cpu0 = process.cpuUsage();
const t0 = performance.now();
machine.serial.addOutputListener((chunk) => {
  text += Buffer.from(chunk).toString('latin1');
  if (text.includes('nodevmm-init:')) {
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const instructions = accelerator.instructionsRetired;
    const blocks = accelerator.cpus.reduce((n, c) => n + c.jitBlocks, 0);
    process.stdout.write(`${JSON.stringify({
      arch, kernel, initrd, instructions, cpuSeconds: +cpuSeconds.toFixed(3), wallSeconds: +((performance.now() - t0) / 1000).toFixed(3),
      mInstrPerCpuSecond: +(instructions / cpuSeconds / 1e6).toFixed(2), blocks, loadAverage: +loadavg()[0]!.toFixed(2),
    })}\n`);
    process.exit(0);
  }
});
machine.start();
const exit = await machine.wait();
process.stderr.write(`guest ended before /init printed: ${exit.message}\n${text.slice(-2000)}\n`);
process.exit(1);
