/**
 * The real CLI (`nodevmm run --accel interp`, lib/cli/main.ts in a child process) boots the x86_64 guest with two
 * vCPUs: stdin and stdout are pipes, so the console passes bytes through; /proc/cpuinfo lists both CPUs, both
 * are online, and `poweroff` makes the CLI exit with status 0.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GuestConsole } from './guest-console.js';
import { guestFilesFor } from './guest-files.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));
const files = guestFilesFor('x86_64');
const skip = 'skip' in files ? files.skip : undefined;
if (skip) console.warn(`[interp cli --cpus 2] skipped: ${skip}`);

describe.skipIf(skip !== undefined)('nodevmm run --accel interp --cpus 2 (child process)', () => {
  it('boots to the shell with 2 CPUs and exits 0 on poweroff', async () => {
    if ('skip' in files) return;
    console.log(`[interp cli --cpus 2] booting ${files.origin}`);
    const t0 = performance.now();
    const elapsed = (): string => ((performance.now() - t0) / 1000).toFixed(1);
    const child = spawn(process.execPath, [
      '--import', 'tsx', MAIN, 'run', '--accel', 'interp', '--cpus', '2', '--memory', '256M',
      '--kernel', files.kernel, '--initrd', files.initrd, '--append', 'console=ttyS0',
    ], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const con = new GuestConsole((bytes) => child.stdin.write(bytes));
    child.stdout.on('data', (c: Buffer) => con.push(c));
    const closed = new Promise<number | null>((resolve) => child.on('close', (status) => resolve(status)));
    try {
      await con.waitFor(/nodevmm-init: starting shell[\s\S]*# /, 400_000);
      console.log(`[interp cli --cpus 2] shell prompt after ${elapsed()} s`);
      expect(con.output).toMatch(/smp: Brought up 1 node, 2 CPUs/);
      const cpuinfo = await con.run('cat /proc/cpuinfo', 120_000);
      expect(cpuinfo.match(/^processor\s*: \d+$/gm)).toEqual(['processor\t: 0', 'processor\t: 1']);
      const online = await con.run('cat /sys/devices/system/cpu/online', 120_000);
      expect(online.trim()).toBe('0-1');
      expect((await con.run('echo $((6*7))', 120_000)).trim()).toBe('42');
      child.stdin.write('poweroff\n');
      const status = await closed;
      console.log(`[interp cli --cpus 2] exited with status ${status} after ${elapsed()} s`);
      expect(stderr).toContain('using the interpreter: --accel interp');
      expect(stderr).toContain('guest powered off');
      expect(status).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 600_000);
});
