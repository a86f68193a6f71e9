/**
 * The real CLI (`nodevmm run`, lib/cli/main.ts through tsx) in a child process with its console on pipes, for
 * guest tests that must see exactly what a user's `nodevmm run` does (command line, devices, defaults).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { GuestConsole } from '../interp/guest-console.js';
import { REPO } from '../cli/run-cli.js';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));

export class CliGuest {
  readonly console: GuestConsole;
  readonly closed: Promise<number | null>;
  private stderrText = '';
  private readonly startedAt = performance.now();

  private constructor(private readonly child: ChildProcess, private readonly label: string) {
    this.console = new GuestConsole(
      (bytes) => child.stdin!.write(bytes),
      process.env.NODEVMM_TEST_ECHO ? (s) => process.stdout.write(s) : undefined,
    );
    child.stdout!.on('data', (c: Buffer) => this.console.push(c));
    child.stderr!.on('data', (c: Buffer) => { this.stderrText += c.toString(); });
    this.closed = new Promise((resolve) => child.on('close', (status) => resolve(status)));
  }

  /** Starts `nodevmm run ARGS` (stdin/stdout are the guest console). */
  static start(args: string[], label: string): CliGuest {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'run', ...args], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    const guest = new CliGuest(child, label);
    guest.progress(`nodevmm run ${args.join(' ')}`);
    return guest;
  }

  get stderr(): string {
    return this.stderrText;
  }

  progress(line: string): void {
    console.log(`[${this.label}] ${((performance.now() - this.startedAt) / 1000).toFixed(1)} s: ${line}`);
  }

  /** Waits for /init's shell prompt. */
  async shell(timeoutMs = 600_000): Promise<void> {
    await this.console.waitFor(/nodevmm-init: starting shell[\s\S]*# /, timeoutMs);
    this.progress('shell prompt');
  }

  /** Runs `command`, throwing with its output when it fails; returns the output. */
  async ok(command: string, timeoutMs = 180_000): Promise<string> {
    const out = await this.console.run(`${command}; echo "rc=$?"`, timeoutMs);
    const m = /rc=(\d+)\s*$/.exec(out);
    if (!m) throw new Error(`[${this.label}] no exit status in output of ${JSON.stringify(command)}: ${out}`);
    if (m[1] !== '0') throw new Error(`[${this.label}] ${JSON.stringify(command)} exited with ${m[1]}:\n${out}`);
    return out.slice(0, m.index);
  }

  /** Types `poweroff` and resolves with the CLI's exit status. */
  async powerOff(timeoutMs = 180_000): Promise<number | null> {
    this.child.stdin!.write('poweroff\n');
    let timer: NodeJS.Timeout | undefined;
    const status = await Promise.race([
      this.closed,
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`[${this.label}] no exit ${timeoutMs} ms after poweroff`)), timeoutMs); }),
    ]).finally(() => clearTimeout(timer));
    this.progress(`exited with status ${status}`);
    return status;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
