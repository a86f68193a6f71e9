import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { attachConsole, type ConsoleInput } from '../../lib/console/attach-console.js';
import { enterRawMode, type ProcessHooks } from '../../lib/console/raw-mode.js';
import { Uart16550 } from '../../lib/devices/serial/uart16550.js';

const RBR = 0, THR = 0, FCR = 2, LSR = 5;

function guestRead(uart: Uart16550): number[] {
  const got: number[] = [];
  while (uart.read(LSR, 1) & 0x01) got.push(uart.read(RBR, 1));
  return got;
}

function setup(extra: { onMonitor?: () => void } = {}) {
  const uart = new Uart16550();
  uart.write(FCR, 1, 0x07);
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  let output = '';
  stdout.on('data', (c: Buffer) => (output += c.toString('latin1')));
  let quits = 0;
  const detach = attachConsole(uart, { stdin, stdout, onQuit: () => quits++, ...extra });
  return { uart, stdin, stdout, detach, output: () => output, quits: () => quits };
}

describe('attachConsole with piped stdin/stdout', () => {
  it('forwards guest output to stdout and stdin to the guest', async () => {
    const t = setup();
    for (const c of Buffer.from('Linux version 6.1\r\n')) t.uart.write(THR, 1, c);
    t.stdin.write('root\r');
    await nextTurn();
    expect(t.output()).toBe('Linux version 6.1\r\n');
    expect(Buffer.from(guestRead(t.uart)).toString()).toBe('root\r');
    t.detach();
  });

  it('Ctrl-A x calls onQuit and is not sent to the guest', async () => {
    const t = setup();
    t.stdin.write('a\x01x');
    await nextTurn();
    expect(t.quits()).toBe(1);
    expect(guestRead(t.uart)).toEqual([0x61]);
    t.detach();
  });

  it('Ctrl-A Ctrl-A sends one 0x01; Ctrl-A split across writes still works', async () => {
    const t = setup();
    t.stdin.write('\x01');
    await nextTurn();
    t.stdin.write('\x01');
    t.stdin.write('\x01');
    await nextTurn();
    t.stdin.write('x');
    await nextTurn();
    expect(guestRead(t.uart)).toEqual([0x01]);
    expect(t.quits()).toBe(1);
    t.detach();
  });

  it('Ctrl-A h prints help; Ctrl-A c without a monitor says so; with one it is called', async () => {
    const t = setup();
    t.stdin.write('\x01h\x01c');
    await nextTurn();
    expect(t.output()).toContain('Ctrl-A x');
    expect(t.output()).toContain('no monitor');
    expect(guestRead(t.uart)).toEqual([]);
    t.detach();
    let monitors = 0;
    const m = setup({ onMonitor: () => monitors++ });
    m.stdin.write('\x01c');
    await nextTurn();
    expect(monitors).toBe(1);
    m.detach();
  });

  it('Ctrl-A b sends a break (NUL with LSR.BI)', async () => {
    const t = setup();
    t.stdin.write('\x01b');
    await nextTurn();
    expect(t.uart.read(LSR, 1) & 0x11).toBe(0x11);
    t.detach();
  });

  it('escapeByte: null passes every byte through', async () => {
    const uart = new Uart16550();
    uart.write(FCR, 1, 0x07);
    const stdin = new PassThrough();
    let quits = 0;
    const detach = attachConsole(uart, { stdin, stdout: new PassThrough(), onQuit: () => quits++, escapeByte: null });
    stdin.write(Buffer.from([1, 0x78, 1, 1]));
    await nextTurn();
    expect(guestRead(uart)).toEqual([1, 0x78, 1, 1]);
    expect(quits).toBe(0);
    detach();
  });

  it('detach flushes pending output, stops forwarding both ways and is idempotent', async () => {
    const t = setup();
    t.uart.write(THR, 1, 0x7a);
    t.detach(); // before the batched output's turn: detach must flush it
    await nextTurn();
    expect(t.output()).toBe('z');
    t.stdin.write('more');
    t.uart.write(THR, 1, 0x7a);
    await nextTurn();
    expect(guestRead(t.uart)).toEqual([]);
    expect(t.output()).toBe('z');
    t.detach();
  });

  it('reports stdout errors once and keeps the guest running', async () => {
    const uart = new Uart16550();
    const stdout = new PassThrough();
    const errors: Error[] = [];
    const detach = attachConsole(uart, {
      stdin: new PassThrough(),
      stdout,
      onQuit: () => {},
      onOutputError: (e) => errors.push(e),
    });
    stdout.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    await nextTurn();
    uart.write(THR, 1, 0x41);
    uart.flushOutput();
    expect(errors.map((e) => e.message)).toEqual(['write EPIPE']);
    detach();
  });
});

/** A terminal-like stdin (isTTY + setRawMode) and a fake process, to check the raw-mode guard's bookkeeping. */
class FakeTty extends PassThrough {
  readonly isTTY = true;
  isRaw = false;
  modes: boolean[] = [];
  setRawMode(mode: boolean): this {
    this.isRaw = mode;
    this.modes.push(mode);
    return this;
  }
}

class FakeProcess extends EventEmitter implements ProcessHooks {
  readonly pid = 4242;
  killed: string[] = [];
  kill(pid: number, signal: NodeJS.Signals): boolean {
    this.killed.push(`${pid}:${signal}`);
    return true;
  }
}

describe('raw mode guard', () => {
  it('enters raw mode on a TTY and restores it on detach, removing every hook', () => {
    const stdin = new FakeTty();
    const proc = new FakeProcess();
    const detach = attachConsole(new Uart16550(), { stdin, stdout: new PassThrough(), onQuit: () => {}, processHooks: proc });
    expect(stdin.isRaw).toBe(true);
    expect(proc.listenerCount('exit')).toBe(1);
    expect(proc.listenerCount('SIGTERM')).toBe(1);
    detach();
    expect(stdin.modes).toEqual([true, false]);
    expect(proc.eventNames()).toEqual([]);
  });

  it('restores on process exit and on an uncaught exception', () => {
    for (const event of ['exit', 'uncaughtExceptionMonitor']) {
      const stdin = new FakeTty();
      const proc = new FakeProcess();
      const restore = enterRawMode(stdin, proc);
      proc.emit(event, 1);
      expect(stdin.isRaw).toBe(false);
      restore(); // idempotent
      expect(stdin.modes).toEqual([true, false]);
    }
  });

  it('on a signal nobody else handles: restores, then re-raises it for the default action', () => {
    const stdin = new FakeTty();
    const proc = new FakeProcess();
    enterRawMode(stdin, proc);
    proc.emit('SIGTERM', 'SIGTERM');
    expect(stdin.isRaw).toBe(false);
    expect(proc.killed).toEqual(['4242:SIGTERM']);
    expect(proc.listenerCount('SIGTERM')).toBe(0);
  });

  it('on a signal the VMM handles itself: restores and does not re-raise', () => {
    const stdin = new FakeTty();
    const proc = new FakeProcess();
    proc.on('SIGHUP', () => {});
    enterRawMode(stdin, proc);
    proc.emit('SIGHUP', 'SIGHUP');
    expect(stdin.isRaw).toBe(false);
    expect(proc.killed).toEqual([]);
  });

  it('keeps a terminal that was already raw raw, and leaves non-TTY streams alone', () => {
    const stdin = new FakeTty();
    stdin.isRaw = true;
    enterRawMode(stdin, new FakeProcess())();
    expect(stdin.modes).toEqual([true, true]);
    const pipe: ConsoleInput = new PassThrough(); // a pipe: no isTTY, no setRawMode
    const proc = new FakeProcess();
    enterRawMode(pipe, proc)();
    expect(proc.eventNames()).toEqual([]);
  });
});
