/** The nodevmm command line through a real child process: help, version, usage errors, img create. */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openBlockBackend } from '../../lib/block/index.js';
import { errorLines, runCli, STACK_LINE } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'nodevmm-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('nodevmm help and version', () => {
  it('prints the version from package.json', async () => {
    const r = await runCli(['--version']);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(`nodevmm ${pkg.version}`);
  });

  it('has help for every command, and --help on each', async () => {
    const main = await runCli(['help']);
    expect(main.status).toBe(0);
    expect(main.stdout).toContain('nodevmm run [options]');
    for (const [args, needle] of [
      [['help', 'run'], '--kernel PATH'], [['run', '--help'], '--kernel PATH'], [['guest', '--help'], 'guest build'],
      [['img', 'create', '--help'], 'img create'], [['help', 'img'], 'BACKING'],
    ] as const) {
      const r = await runCli([...args]);
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout).toContain(needle);
    }
  });

  it('rejects an unknown command and an unknown option with status 2 and one line', async () => {
    const a = await runCli(['frobnicate']);
    expect(a.status).toBe(2);
    expect(errorLines(a.stderr)[0]).toBe('nodevmm: unknown command "frobnicate"');
    const b = await runCli(['run', '--bogus']);
    expect(b.status).toBe(2);
    expect(errorLines(b.stderr)[0]).toContain("'--bogus'");
    expect(b.stderr).not.toMatch(STACK_LINE);
  });

  it('rejects a malformed --net spec as a usage error before building anything', async () => {
    const r = await runCli(['run', '-k', '/nonexistent', '--net', 'bogus']);
    expect(r.status).toBe(2);
    expect(errorLines(r.stderr)).toEqual(['nodevmm: --net: network "bogus": type: unknown network type "bogus" (expected user, tap or socket)']);
  });

  it('names the option for vCPU count and memory size mistakes', async () => {
    const zero = await runCli(['run', '-k', '/nonexistent', '--cpus', '0']);
    expect(zero.status).toBe(2);
    expect(errorLines(zero.stderr)).toEqual(['nodevmm: --cpus: "0" must be a whole number of vCPUs, at least 1']);
    const small = await runCli(['run', '-k', '/nonexistent', '--memory', '8M']);
    expect(small.status).toBe(2);
    expect(errorLines(small.stderr)[0]).toMatch(/^nodevmm: --memory: 8 MiB is too small/);
    const many = await runCli(['run', '-k', '/nonexistent', '--cpus', '999']);
    expect(many.status).toBe(2);
    expect(errorLines(many.stderr)[0]).toMatch(/^nodevmm: --cpus: at most 254 vCPUs/);
    for (const r of [zero, small, many]) expect(r.stderr).not.toMatch(STACK_LINE);
  });
});

const interpPresent = existsSync(new URL('../../lib/accel/interp/index.ts', import.meta.url));
if (interpPresent) console.warn('skipping the "--accel interp without an interpreter" test: lib/accel/interp exists');

describe.skipIf(interpPresent)('nodevmm run --accel interp without the interpreter accelerator', () => {
  it('says so in one line with status 1', async () => {
    const r = await runCli(['run', '-k', join(dir, 'whatever.elf'), '--accel', 'interp']);
    expect(r.status).toBe(1);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^nodevmm: the interpreter accelerator \(lib\/accel\/interp\) is not part of this build yet/);
  });
});

describe('nodevmm img create', () => {
  it('creates a raw image of the given size and refuses to overwrite it', async () => {
    const file = join(dir, 'disk.raw');
    const r = await runCli(['img', 'create', file, '3M']);
    expect(r.status).toBe(0);
    expect(statSync(file).size).toBe(3 * 1024 * 1024);
    const again = await runCli(['img', 'create', file, '1M']);
    expect(again.status).toBe(1);
    expect(errorLines(again.stderr)).toEqual([`nodevmm: ${file}: already exists (nodevmm does not overwrite images)`]);
  });

  it('-b base.raw overlay.qcow2: a qcow2 overlay that reads through to its backing file', async () => {
    const base = join(dir, 'base.raw');
    const overlay = join(dir, 'overlay.qcow2');
    const content = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < content.length; i++) content[i] = (i * 13 + 7) & 0xff;
    writeFileSync(base, content);
    const r = await runCli(['img', 'create', '-b', base, overlay]);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(overlay).subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
    const img = await openBlockBackend(overlay);
    try {
      expect(img.size).toBe(content.length);
      const buf = new Uint8Array(4096);
      await img.read(1024 * 1024, [buf]);
      expect(Buffer.from(buf).equals(content.subarray(1024 * 1024, 1024 * 1024 + 4096))).toBe(true);
    } finally {
      await img.close();
    }
    expect(Buffer.compare(readFileSync(base), content)).toBe(0); // the backing file is untouched
  });

  it('names a missing backing file and rejects raw with a backing file', async () => {
    const missing = join(dir, 'nope.raw');
    const a = await runCli(['img', 'create', '-b', missing, join(dir, 'o2.qcow2')]);
    expect(a.status).toBe(1);
    expect(errorLines(a.stderr)).toHaveLength(1);
    expect(a.stderr).toContain(missing);
    const b = await runCli(['img', 'create', '-f', 'raw', '-b', join(dir, 'base.raw'), join(dir, 'o3.raw')]);
    expect(b.status).toBe(2);
    expect(errorLines(b.stderr)[0]).toBe('nodevmm: -b: a raw image cannot have a backing file (use -f qcow2)');
  });
});
