/**
 * Interpreter boot measurement for profiling work (not a test): boots a kernel + initramfs through the Machine API on
 * the interpreter (one vCPU) until the guest's first line from /init, then prints one JSON line with instructions
 * retired, CPU seconds of this process (user + system; the host is shared, so CPU time is steadier than wall time),
 * instructions per CPU-second, translated blocks and the host load average.
 *
 * Default guest: the newest reference build's vmlinux (what the CLI boots: no in-guest kernel decompressor) with
 * the initramfs uncompressed into the OS temp dir (the reference build gzips it; a gzip initramfs would make
 * inflate dominate the profile). Run under `node --cpu-prof` for a profile:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/interp-boot-profile.ts [--arch x86_64|i386] [--kernel K --initrd I]
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { InterpAccelerator } from '../lib/accel/interp/index.js';
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

/** The newest cache directory holding both the vmlinux and the gzip initramfs for `arch`. */
function referenceFiles(): { kernel: string; initrd: string } {
  const cache = join(homedir(), '.cache/nodevmm/guest');
  const dirs = existsSync(cache) ? readdirSync(cache).filter((d) => /^[0-9a-f]{16}$/.test(d)).map((d) => join(cache, d)) : [];
  dirs.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const dir of dirs) {
    const kernel = join(dir, `vmlinux-${arch}`);
    const gz = join(dir, `initramfs-${arch}.cpio.gz`);
    if (!existsSync(kernel) || !existsSync(gz)) continue;
    const initrd = join(tmpdir(), `nodevmm-profile-${dir.slice(-16)}-initramfs-${arch}.cpio`);
    if (!existsSync(initrd)) writeFileSync(initrd, gunzipSync(readFileSync(gz)));
    return { kernel, initrd };
  }
  throw new Error(`no reference guest build with vmlinux-${arch} and initramfs-${arch}.cpio.gz under ${cache} (run guest/build.sh), or pass --kernel and --initrd`);
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
