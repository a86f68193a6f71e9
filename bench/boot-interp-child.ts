/**
 * Child process of bench/boot.ts: boots a kernel + initramfs on the interpreter through the Machine API and, at
 * the guest's first line from /init, prints one JSON line (instructions retired, guest-time rate, milliseconds
 * since this process started) and exits.
 *
 *   node --import tsx bench/boot-interp-child.ts <kernel> <initrd> [cpus]
 */
import { InterpAccelerator } from '../lib/accel/interp/index.js';
import { validateMachineConfig } from '../lib/machine/config.js';
import { Machine } from '../lib/machine/machine.js';

const [kernel, initrd, cpusArg] = process.argv.slice(2);
if (!kernel || !initrd) {
  process.stderr.write('usage: boot-interp-child.ts <kernel> <initrd> [cpus]\n');
  process.exit(2);
}
const accelerator = new InterpAccelerator();
const machine = await Machine.create(validateMachineConfig({
  kernel, initrd, cpus: Number(cpusArg ?? 1), memoryMiB: 256, accel: 'interp', serial: 'none', cmdline: 'console=ttyS0',
}), { accelerator, bindSerial: false });
let text = '';
machine.serial.addOutputListener((chunk) => {
  text += Buffer.from(chunk).toString('latin1');
  if (text.includes('nodevmm-init:')) {
    const result = { msSinceProcessStart: performance.now(), instructions: accelerator.instructionsRetired };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  }
});
machine.start();
const exit = await machine.wait();
process.stderr.write(`guest ended before /init printed: ${exit.message}\n${text.slice(-2000)}\n`);
process.exit(1);
