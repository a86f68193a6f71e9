import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { bindSerial } from '../../lib/console/bind-serial.js';
import { attachFileOutput, SerialFileError } from '../../lib/console/file-output.js';
import { Uart16550 } from '../../lib/devices/serial/uart16550.js';

const THR = 0;
const send = (uart: Uart16550, s: string) => {
  for (const c of Buffer.from(s)) uart.write(THR, 1, c);
};

describe('serial output to a file', () => {
  it('truncates an existing file and appends every batch of guest output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodevmm-serial-'));
    const path = join(dir, 'console.log');
    writeFileSync(path, 'old contents from a previous run\n');
    const uart = new Uart16550();
    const detach = attachFileOutput(uart, path);
    expect(readFileSync(path, 'utf8')).toBe('');
    send(uart, 'first line\r\n');
    await nextTurn();
    send(uart, 'second line\r\n');
    detach(); // flushes the pending batch synchronously
    expect(readFileSync(path, 'utf8')).toBe('first line\r\nsecond line\r\n');
    send(uart, 'after detach');
    await nextTurn();
    expect(readFileSync(path, 'utf8')).toBe('first line\r\nsecond line\r\n');
  });

  it('names the path and the reason when the file cannot be opened', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nodevmm-serial-')), 'no', 'such', 'dir', 'out.log');
    let error: unknown;
    try {
      attachFileOutput(new Uart16550(), path);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SerialFileError);
    expect((error as SerialFileError).message).toContain(path);
    expect((error as SerialFileError).message).toContain('ENOENT');
    expect((error as SerialFileError).code).toBe('ENOENT');
  });

  it('reports a write failure once (/dev/full: ENOSPC) and keeps running', () => {
    const errors: SerialFileError[] = [];
    const uart = new Uart16550();
    const detach = attachFileOutput(uart, '/dev/full', { onError: (e) => errors.push(e) });
    send(uart, 'x');
    uart.flushOutput();
    send(uart, 'y');
    uart.flushOutput();
    detach();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('ENOSPC');
    expect(errors[0]!.message).toContain('/dev/full');
  });

  it('bindSerial dispatches stdio / file / none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodevmm-serial-'));
    const path = join(dir, 'out.log');
    const uart = new Uart16550();
    const unbindFile = bindSerial(uart, { kind: 'file', path }, { onQuit: () => {} });
    const stdout = new PassThrough();
    let shown = '';
    stdout.on('data', (c: Buffer) => (shown += c.toString()));
    const unbindStdio = bindSerial(uart, { kind: 'stdio' }, { stdin: new PassThrough(), stdout, onQuit: () => {} });
    const unbindNone = bindSerial(uart, { kind: 'none' }, { onQuit: () => {} });
    send(uart, 'both');
    await nextTurn();
    unbindFile();
    unbindStdio();
    unbindNone();
    expect(readFileSync(path, 'utf8')).toBe('both');
    expect(shown).toBe('both');
  });
});
