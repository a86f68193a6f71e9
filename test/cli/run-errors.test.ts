/**
 * Bad kernels, initrds and command lines through `nodevmm run`: exit status 1, exactly one line on stderr
 * naming the file or field at fault, never a stack trace. The loader helper tests the loader itself; this is
 * the end-to-end path (options → config → accelerator → loader → error report).
 */
import { existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeKvm } from '../../lib/kvm/index.js';
import { makeBzImage } from '../loader/images.js';
import { errorLines, runCli, STACK_LINE } from './run-cli.js';

const kvm = probeKvm();
// Loading happens after an accelerator has allocated guest RAM: KVM where usable, else the interpreter.
const interpPresent = existsSync(fileURLToPath(new URL('../../lib/accel/interp/index.ts', import.meta.url)));
const accel = kvm.usable ? 'kvm' : interpPresent ? 'interp' : undefined;
if (!accel) console.warn(`skipping run-errors tests: /dev/kvm is not usable (${kvm.reason}) and there is no interpreter accelerator`);

describe.skipIf(accel === undefined)('nodevmm run: bad input', () => {
  let dir = '';
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'nodevmm-run-errors-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function expectOneLineError(args: string[], status: number, pattern: RegExp): Promise<string> {
    const r = await runCli(['run', '--accel', accel!, '--quiet', '--serial', 'none', ...args]);
    const lines = errorLines(r.stderr);
    expect(r.status, r.stderr).toBe(status);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
    expect(r.stderr).not.toMatch(STACK_LINE);
    return lines[0]!;
  }

  it('missing kernel file', async () => {
    const path = join(dir, 'no-such-kernel');
    const line = await expectOneLineError(['-k', path], 1, /not found/);
    expect(line).toContain(path);
  });

  it('a file that is neither a bzImage nor an ELF', async () => {
    const path = join(dir, 'garbage.bin');
    writeFileSync(path, Buffer.alloc(8192, 0x5a));
    const line = await expectOneLineError(['-k', path], 1, /bzImage|ELF/);
    expect(line).toContain(path);
  });

  it('a truncated bzImage', async () => {
    const path = join(dir, 'truncated.bzImage');
    writeFileSync(path, makeBzImage({ truncateTo: 4000 }));
    const line = await expectOneLineError(['-k', path], 1, /truncated|shorter|ends|size/i);
    expect(line).toContain(path);
  });

  it('a bzImage with boot protocol older than 2.06', async () => {
    const path = join(dir, 'old.bzImage');
    writeFileSync(path, makeBzImage({ version: 0x0205 }));
    const line = await expectOneLineError(['-k', path], 1, /2\.05/);
    expect(line).toMatch(/2\.06/);
  });

  it('an initrd larger than guest memory', async () => {
    const kernel = join(dir, 'ok.bzImage');
    writeFileSync(kernel, makeBzImage());
    const initrd = join(dir, 'huge.initrd');
    writeFileSync(initrd, '');
    truncateSync(initrd, 40 * 1024 * 1024);
    const line = await expectOneLineError(['-k', kernel, '-i', initrd, '-m', '32M'], 1, /initrd/);
    expect(line).toContain(initrd);
  });

  it('a command line longer than the kernel accepts', async () => {
    const kernel = join(dir, 'ok2.bzImage');
    writeFileSync(kernel, makeBzImage({ cmdlineSize: 2047 }));
    await expectOneLineError(['-k', kernel, '-a', 'x'.repeat(3000)], 1, /command line|cmdline/i);
  });

  it('memory too small and zero vCPUs are usage errors (status 2)', async () => {
    const kernel = join(dir, 'ok3.bzImage');
    writeFileSync(kernel, makeBzImage());
    await expectOneLineError(['-k', kernel, '-m', '4M'], 2, /^nodevmm: --memory: 4 MiB is too small/);
    await expectOneLineError(['-k', kernel, '-c', '0'], 2, /^nodevmm: --cpus: "0"/);
  });
});
