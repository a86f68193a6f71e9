/**
 * The reference i386 Linux guest (32-bit kernel, 32-bit busybox) boots on the interpreter to the shell; commands
 * typed on the serial console run; `poweroff` ends the VM with status 0. Skipped, with the reason printed, until
 * guest/build.sh has built the i386 kernel and initramfs.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { bootOnInterpreter, type BootedGuest } from './boot-machine.js';
import { guestFilesFor } from './guest-files.js';

const files = guestFilesFor('i386');
const skip = 'skip' in files ? files.skip : undefined;
if (skip) console.warn(`[interp i386] skipped: ${skip}`);

describe.skipIf(skip !== undefined)('i386 guest on the interpreter (Machine API)', () => {
  let guest: BootedGuest | undefined;
  afterAll(async () => {
    if (guest && guest.machine.state !== 'stopped') await guest.machine.stop();
  });

  it('boots to the shell, runs commands, powers off with status 0', async () => {
    if ('skip' in files) return;
    console.log(`[interp i386] booting ${files.origin}`);
    guest = await bootOnInterpreter(files);
    const con = guest.console;
    await con.waitFor(/nodevmm-init: hello from \/init/, 300_000);
    console.log(`[interp i386] first line from /init after ${guest.elapsed()} s`);
    await con.waitFor(/nodevmm-init: starting shell[\s\S]*# /, 120_000);
    console.log(`[interp i386] shell prompt after ${guest.elapsed()} s (${(guest.accelerator.instructionsRetired / 1e6).toFixed(0)} M instructions)`);

    expect((await con.run('uname -m', 60_000)).trim()).toMatch(/^i[3-6]86$/);
    expect((await con.run('echo $((6*7))', 60_000)).trim()).toBe('42');
    expect(await con.run('cat /proc/cpuinfo', 60_000)).toMatch(/^processor\s*: 0$/m);

    guest.machine.serial.receive(Buffer.from('poweroff\n'));
    const exit = await guest.exit;
    console.log(`[interp i386] ${exit.message} after ${guest.elapsed()} s`);
    expect(exit.reason).toBe('power-off');
    expect(exit.status).toBe(0);
  }, 600_000);
});
