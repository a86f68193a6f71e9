// The console on a real pseudo-terminal: raw mode while attached, Ctrl-A escapes, and the terminal restored
// on detach and on every way the process can end. Needs python3 (its pty module opens the pseudo-terminal).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const harness = fileURLToPath(new URL('./fixtures/pty-harness.py', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/pty-console-child.ts', import.meta.url));
const python = spawnSync('python3', ['-c', 'import pty, termios'], { encoding: 'utf8' });
const havePty = python.status === 0;
if (!havePty) console.warn(`skipping pseudo-terminal console tests: python3 with pty/termios unavailable (${python.error?.message ?? python.stderr})`);

interface PtyResult {
  canonicalBefore: boolean;
  ready: boolean;
  canonicalWhileRunning: boolean;
  echo?: boolean;
  literalCtrlA?: boolean;
  quit?: boolean;
  canonicalAfterQuit?: boolean;
  handled?: boolean;
  canonicalWhileStillRunning?: boolean;
  returncode: number;
  canonicalAfterExit: boolean;
  stderr: string;
  output: string;
}

function runOnPty(mode: string): PtyResult {
  const r = spawnSync('python3', [harness, mode, process.execPath, '--import', 'tsx', child, mode], {
    encoding: 'utf8',
    timeout: 90_000,
  });
  if (r.status !== 0) throw new Error(`pty harness failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as PtyResult;
}

describe.skipIf(!havePty)('console on a pseudo-terminal', () => {
  it('raw while attached; Ctrl-A Ctrl-A sends 0x01; Ctrl-A x quits and restores the mode at once', () => {
    const r = runOnPty('quit');
    expect(r.canonicalBefore).toBe(true);
    expect(r.ready).toBe(true);
    expect(r.canonicalWhileRunning).toBe(false);
    expect(r.echo).toBe(true); // guest echoed abc as ABC: input and output both flow
    expect(r.literalCtrlA).toBe(true);
    expect(r.quit).toBe(true);
    expect(r.canonicalAfterQuit).toBe(true); // checked while the process is still alive
    expect(r.output).toContain('QUIT raw=false');
    expect(r.returncode).toBe(0); // detached stdin no longer holds the process open
  });

  it('a SIGTERM the VMM handles itself: the terminal is restored while the process lives on', () => {
    const r = runOnPty('term-handled');
    expect(r.canonicalWhileRunning).toBe(false);
    expect(r.handled).toBe(true);
    expect(r.canonicalWhileStillRunning).toBe(true);
  });

  // Node also resets stdio modes at exit; these two check the end-to-end guarantee, not only our guard.
  it('an unhandled SIGTERM kills the process by that signal with the terminal restored', () => {
    const r = runOnPty('term');
    expect(r.canonicalWhileRunning).toBe(false);
    expect(r.returncode).toBe(-15);
    expect(r.canonicalAfterExit).toBe(true);
  });

  it('an uncaught exception exits 1 with the trace printed and the terminal restored', () => {
    const r = runOnPty('throw');
    expect(r.canonicalWhileRunning).toBe(false);
    expect(r.returncode).toBe(1);
    expect(r.stderr).toContain('boom from the pty child');
    expect(r.canonicalAfterExit).toBe(true);
  });
});
