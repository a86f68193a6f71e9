/**
 * Boot-time benchmark (not a test): wall time from process start to the guest's first line from /init
 * ("nodevmm-init: hello from /init", guest/initramfs/init), for the same kernel and initramfs on
 *   - the nodevmm interpreter: a child process booting through the Machine API (prints instructions retired), and
 *     the real CLI from dist/ (`node bin/nodevmm.js run --accel interp`, what `npm start` runs) when it is built,
 *   - QEMU TCG (qemu-system-x86_64 / qemu-system-i386 -accel tcg),
 *   - v86 (i386 only; npm `v86`, a devDependency; V86_DIR points at another install),
 * measured in the same run, printed as seconds and ratios.
 *
 *   npx tsx bench/boot.ts [--arch x86_64|i386|all] [--runs N] [--kernel K --initrd I]
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { guestFilesFor } from '../test/interp/guest-files.js';

const FIRST_LINE = 'nodevmm-init:';
const TIMEOUT_MS = 600_000;
const REPO = fileURLToPath(new URL('..', import.meta.url));

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'all' },
    runs: { type: 'string', default: '1' },
    kernel: { type: 'string' },
    initrd: { type: 'string' },
  },
});
const runs = Math.max(1, Number(values.runs));

interface Measured { seconds: number; detail?: string }

/** Spawns `cmd` and resolves when `marker` appears on stdout (or stderr); kills the process afterwards. */
function timeToMarker(cmd: string, args: string[], marker: string, opts: { cwd?: string; parse?: (out: string) => string | undefined } = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const timer = setTimeout(() => finish(new Error(`${cmd}: no "${marker}" within ${TIMEOUT_MS / 1000} s; output tail:\n${out.slice(-1500)}`)), TIMEOUT_MS);
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const seconds = (performance.now() - t0) / 1000;
      child.kill('SIGKILL');
      if (err) reject(err);
      else resolve({ seconds, ...(opts.parse ? { detail: opts.parse(out) } : {}) });
    };
    const onData = (c: Buffer): void => {
      out += c.toString('latin1');
      if (out.includes(marker)) {
        // Wait for the rest of the line (the interpreter child prints a JSON summary on it).
        const at = out.indexOf(marker);
        if (out.indexOf('\n', at) >= 0) finish();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => finish(e));
    child.on('close', () => finish(new Error(`${cmd} exited before "${marker}"; output tail:\n${out.slice(-1500)}`)));
  });
}

async function interp(kernel: string, initrd: string): Promise<Measured> {
  return timeToMarker(process.execPath, ['--import', 'tsx', join(REPO, 'bench/boot-interp-child.ts'), kernel, initrd], 'msSinceProcessStart', {
    parse: (out) => {
      const line = out.split('\n').find((l) => l.includes('msSinceProcessStart'));
      if (!line) return undefined;
      const r = JSON.parse(line) as { instructions: number; msSinceProcessStart: number };
      return `${(r.instructions / 1e6).toFixed(0)} M instructions, ${(r.instructions / r.msSinceProcessStart / 1e3).toFixed(1)} M instr/s over the child's life`;
    },
  });
}

/** The real CLI from the compiled dist/ (what `npm start` runs), when it is built. */
function interpCli(kernel: string, initrd: string): Promise<Measured> | undefined {
  if (!existsSync(join(REPO, 'dist/lib/accel/interp/index.js'))) return undefined;
  return timeToMarker(process.execPath, [join(REPO, 'bin/nodevmm.js'), 'run', '--accel', 'interp', '--kernel', kernel, '--initrd', initrd, '--append', 'console=ttyS0'], FIRST_LINE);
}

function qemu(arch: 'x86_64' | 'i386', kernel: string, initrd: string): Promise<Measured> {
  const bin = arch === 'x86_64' ? 'qemu-system-x86_64' : 'qemu-system-i386';
  return timeToMarker(bin, ['-accel', 'tcg', '-nographic', '-no-reboot', '-m', '256', '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyS0'], FIRST_LINE);
}

function v86(kernel: string, initrd: string): Promise<Measured> | undefined {
  const dir = process.env.V86_DIR ?? fileURLToPath(new URL('..', import.meta.url));
  const lib = join(dir, 'node_modules/v86/build/libv86.mjs');
  const wasm = join(dir, 'node_modules/v86/build/v86.wasm');
  const bios = '/usr/share/seabios/bios.bin';
  const vga = '/usr/share/seabios/vgabios-stdvga.bin';
  if (![lib, wasm, bios, vga].every(existsSync)) return undefined;
  const script = `
    const { V86 } = await import(${JSON.stringify(lib)});
    const fs = await import('node:fs');
    const ab = (p) => { const b = fs.readFileSync(p); return b.buffer.slice(b.byteOffset, b.byteOffset + b.length); };
    const emu = new V86({
      wasm_path: ${JSON.stringify(wasm)}, memory_size: 256 * 1024 * 1024, autostart: true, disable_speaker: true,
      bios: { buffer: ab(${JSON.stringify(bios)}) }, vga_bios: { buffer: ab(${JSON.stringify(vga)}) },
      bzimage: { buffer: ab(${JSON.stringify(kernel)}) }, initrd: { buffer: ab(${JSON.stringify(initrd)}) },
      cmdline: 'console=ttyS0', disable_keyboard: true, disable_mouse: true,
    });
    emu.add_listener('serial0-output-byte', (b) => process.stdout.write(String.fromCharCode(b)));
  `;
  return timeToMarker(process.execPath, ['--input-type=module', '-e', script], FIRST_LINE, { cwd: dir });
}

function fmt(m: Measured | undefined): string {
  return m ? `${m.seconds.toFixed(2)} s${m.detail ? ` (${m.detail})` : ''}` : 'n/a';
}

async function best(f: () => Promise<Measured> | undefined): Promise<Measured | undefined> {
  let b: Measured | undefined;
  for (let i = 0; i < runs; i++) {
    const p = f();
    if (!p) return undefined;
    const m = await p;
    if (!b || m.seconds < b.seconds) b = m;
  }
  return b;
}

async function benchArch(arch: 'x86_64' | 'i386'): Promise<void> {
  let kernel = values.kernel;
  let initrd = values.initrd;
  let origin = 'given on the command line';
  if (!kernel || !initrd) {
    const files = guestFilesFor(arch);
    if ('skip' in files) {
      console.log(`${arch}: skipped: ${files.skip}`);
      return;
    }
    ({ kernel, initrd, origin } = files);
  }
  console.log(`${arch}: ${origin}`);
  const i = await best(() => interp(kernel, initrd));
  console.log(`  nodevmm interpreter: ${fmt(i)}   [Machine API in a child process under tsx]`);
  const c = await best(() => interpCli(kernel, initrd));
  if (c) console.log(`  nodevmm run (dist):  ${fmt(c)}   [node bin/nodevmm.js run --accel interp; dist/ must be current]`);
  const q = await best(() => qemu(arch, kernel, initrd)).catch((e: Error) => { console.log(`  QEMU TCG failed: ${e.message}`); return undefined; });
  const ours = c ?? i;
  console.log(`  QEMU TCG:            ${fmt(q)}${ours && q ? `   nodevmm/QEMU = ${(ours.seconds / q.seconds).toFixed(1)}x` : ''}`);
  if (arch === 'i386') {
    const v = await best(() => v86(kernel, initrd)).catch((e: Error) => { console.log(`  v86 failed: ${e.message}`); return undefined; });
    if (!v) console.log('  v86:                 n/a (npm v86 not installed in V86_DIR, or seabios missing)');
    else console.log(`  v86:                 ${fmt(v)}${ours ? `   nodevmm/v86 = ${(ours.seconds / v.seconds).toFixed(1)}x` : ''}`);
  }
}

console.log(`boot to the first line from /init (best of ${runs}; host load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)})`);
for (const arch of ['x86_64', 'i386'] as const) {
  if (values.arch === 'all' || values.arch === arch) await benchArch(arch);
}
