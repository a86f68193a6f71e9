/**
 * The reference x86_64 Linux guest boots on the interpreter to the busybox shell; commands typed on the serial
 * console run; `poweroff` ends the VM with status 0. One boot, several commands.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { bootOnInterpreter, type BootedGuest } from './boot-machine.js';
import { guestFilesFor } from './guest-files.js';

const files = guestFilesFor('x86_64');
const skip = 'skip' in files ? files.skip : undefined;
if (skip) console.warn(`[interp x86_64] skipped: ${skip}`);

describe.skipIf(skip !== undefined)('x86_64 guest on the interpreter (Machine API)', () => {
  let guest: BootedGuest | undefined;
  afterAll(async () => {
    if (guest && guest.machine.state !== 'stopped') await guest.machine.stop();
  });

  it('boots to the shell, runs commands, powers off with status 0', async () => {
    if ('skip' in files) return;
    console.log(`[interp x86_64] booting ${files.origin}`);
    guest = await bootOnInterpreter(files);
    const con = guest.console;
    await con.waitFor(/nodevmm-init: hello from \/init/, 240_000);
    console.log(`[interp x86_64] first line from /init after ${guest.elapsed()} s`);
    await con.waitFor(/nodevmm-init: starting shell[\s\S]*# /, 120_000);
    console.log(`[interp x86_64] shell prompt after ${guest.elapsed()} s (${(guest.accelerator.instructionsRetired / 1e6).toFixed(0)} M instructions)`);
    expect(guest.machine.bootMarkers.length).toBeGreaterThan(0);

    expect((await con.run('uname -m', 60_000)).trim()).toBe('x86_64');
    expect((await con.run('echo $((6*7))', 60_000)).trim()).toBe('42');
    const cpuinfo = await con.run('cat /proc/cpuinfo', 60_000);
    expect(cpuinfo).toMatch(/^processor\s*: 0$/m);
    expect(cpuinfo).toMatch(/^vendor_id\s*: NodeVMMx86TS$/m);
    // Timer interrupts work: a one-second sleep returns and the guest clock moved by at least that much.
    const t = await con.run('a=$(cat /proc/uptime); sleep 1; b=$(cat /proc/uptime); echo "${a%% *} ${b%% *}"', 60_000);
    const [before, after] = t.trim().split(' ').map(Number);
    expect(after! - before!).toBeGreaterThanOrEqual(1);
    console.log(`[interp x86_64] commands done after ${guest.elapsed()} s`);

    guest.machine.serial.receive(Buffer.from('poweroff\n'));
    const exit = await guest.exit;
    console.log(`[interp x86_64] ${exit.message} after ${guest.elapsed()} s`);
    expect(exit.reason).toBe('power-off');
    expect(exit.status).toBe(0);
    expect(con.output).toContain('reboot: System halted');
  }, 600_000);
});
