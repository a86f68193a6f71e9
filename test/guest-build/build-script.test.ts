/** Fast checks of guest/build.sh's command-line behaviour and its input hash (no compiling). */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { referenceGuestBuildScript, referenceGuestDir } from '../../lib/guest/reference-guest.js';

const script = referenceGuestBuildScript();
const scratch = mkdtempSync(join(tmpdir(), 'nodevmm-guest-build-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function printDir(buildScript: string, cache: string): string {
  return execFileSync('bash', [buildScript, '--print-dir'], {
    encoding: 'utf8',
    env: { ...process.env, NODEVMM_GUEST_CACHE: cache },
  }).trim();
}

describe('guest/build.sh', () => {
  it('--print-dir names a directory under the cache root keyed by a 16-hex-digit hash, stable across calls', () => {
    const cache = join(scratch, 'cache');
    const a = printDir(script, cache);
    expect(a).toMatch(new RegExp(`^${cache}/[0-9a-f]{16}$`));
    expect(printDir(script, cache)).toBe(a);
  });

  it('referenceGuestDir() is what build.sh --print-dir prints', () => {
    const cache = process.env.NODEVMM_GUEST_CACHE;
    expect(referenceGuestDir()).toBe(execFileSync('bash', [script, '--print-dir'], { encoding: 'utf8', env: { ...process.env, NODEVMM_GUEST_CACHE: cache } }).trim());
  });

  it('a change to any hashed input (here /init, then a config fragment) changes the directory', () => {
    const copy = join(scratch, 'guest-copy');
    cpSync(dirname(script), copy, { recursive: true });
    const cache = join(scratch, 'cache');
    const before = printDir(join(copy, 'build.sh'), cache);
    expect(before.slice(-16)).toBe(printDir(script, cache).slice(-16));
    appendFileSync(join(copy, 'initramfs', 'init'), '# changed\n');
    const afterInit = printDir(join(copy, 'build.sh'), cache);
    expect(afterInit).not.toBe(before);
    appendFileSync(join(copy, 'kernel', 'common.config'), 'CONFIG_PROC_KCORE=y\n');
    const afterConfig = printDir(join(copy, 'build.sh'), cache);
    expect(afterConfig).not.toBe(afterInit);
  });

  it('rejects a bad --arch and an unknown option with a message naming them', () => {
    const badArch = spawnSync('bash', [script, '--arch', 'arm64'], { encoding: 'utf8' });
    expect(badArch.status).not.toBe(0);
    expect(badArch.stderr).toMatch(/--arch must be x86_64, i386 or all, not 'arm64'/);
    const unknown = spawnSync('bash', [script, '--frobnicate'], { encoding: 'utf8' });
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown argument '--frobnicate'/);
    const badJobs = spawnSync('bash', [script, '--jobs', '0'], { encoding: 'utf8' });
    expect(badJobs.status).not.toBe(0);
    expect(badJobs.stderr).toMatch(/--jobs must be a positive integer/);
  });
});
