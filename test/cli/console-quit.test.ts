/**
 * `nodevmm run --serial stdio` on a real terminal: the guest's output reaches the terminal and Ctrl-A x stops
 * the VM with status 0. Node has no pseudo-terminal API, so a few lines of Python (pty module) play the user.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probeKvm } from '../../lib/kvm/index.js';
import { multibootElf, printAndSpin } from '../machine/test-kernels.js';
import { REPO } from './run-cli.js';

const kvm = probeKvm();
const python = spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status === 0;
const skip = !kvm.usable ? `/dev/kvm is not usable (${kvm.reason})` : !python ? 'python3 (for a pseudo-terminal) is not installed' : undefined;
if (skip) console.warn(`skipping the terminal console test: ${skip}`);

const DRIVER = `
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out, sent, t0 = b'', False, time.time()
while time.time() - t0 < 60:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
    # The whole line, newline included: the guest writes one byte per port exit, so 'spinning' can arrive
    # before its newline does, and quitting then would cut the line.
    if b'spinning\\r\\n' in out and not sent:
        os.write(fd, b'\\x01x')
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('latin1'))
sys.stdout.write('\\nEXIT %d\\n' % os.waitstatus_to_exitcode(status))
`;

describe.skipIf(skip !== undefined)('terminal console', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodevmm-console-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('shows guest output and quits on Ctrl-A x with status 0', () => {
    const kernel = join(dir, 'spin.elf');
    writeFileSync(kernel, multibootElf(printAndSpin('spinning\n', 0x8000)));
    const r = spawnSync('python3', ['-c', DRIVER, process.execPath, '--import', 'tsx', join(REPO, 'lib/cli/main.ts'),
      'run', '-k', kernel, '--accel', 'kvm', '-m', '32'], { cwd: REPO, encoding: 'utf8', timeout: 90_000 });
    expect(r.stdout).toContain('spinning\r\n');
    expect(r.stdout).toMatch(/\nEXIT 0\n$/);
  }, 100_000);
});
