/**
 * Binds a UART to the user's terminal: guest output to stdout, stdin to guest input, with the Ctrl-A escape
 * (x quits, h prints help, b sends a break, c the monitor if there is one, Ctrl-A Ctrl-A a literal Ctrl-A).
 * A terminal stdin is put in raw mode so every key (Ctrl-C included) goes to the guest; piped stdin is passed
 * through as it comes, escapes included.
 */
import { escapeHelp, escapeKeyName, EscapeParser, CTRL_A, type ConsoleAction } from './escape-parser.js';
import { enterRawMode, type ProcessHooks, type TerminalInput } from './raw-mode.js';

/** What the console needs from a UART (Uart16550 has all of it). */
export interface ConsoleUart {
  receive(data: Uint8Array): void;
  sendBreak(): void;
  addOutputListener(listener: (chunk: Uint8Array) => void): () => void;
  flushOutput(): void;
}

export type ConsoleInput = NodeJS.ReadableStream & TerminalInput;

export interface ConsoleOptions {
  stdin: ConsoleInput;
  stdout: NodeJS.WritableStream;
  /** Ctrl-A x. The caller stops the VM and calls the detach function. */
  onQuit: () => void;
  /** Ctrl-A c. Without it Ctrl-A c says there is no monitor. */
  onMonitor?: () => void;
  /** stdin reached end of file (a pipe closed); the guest keeps running. */
  onInputEnd?: () => void;
  /** stdout failed (e.g. EPIPE): guest output is no longer written. */
  onOutputError?: (error: Error) => void;
  /** The escape byte; default Ctrl-A (0x01). null turns escapes off (binary-safe input). */
  escapeByte?: number | null;
  /** For tests: the process whose exit/signals restore the terminal. */
  processHooks?: ProcessHooks;
}

/** Returns detach(): flushes pending guest output, restores the terminal, releases stdin. Idempotent. */
export function attachConsole(uart: ConsoleUart, options: ConsoleOptions): () => void {
  const { stdin, stdout } = options;
  const escapeByte = options.escapeByte === undefined ? CTRL_A : options.escapeByte;
  const parser = escapeByte === null ? undefined : new EscapeParser(escapeByte);

  let outputOk = true;
  const onStdoutError = (error: Error): void => {
    if (!outputOk) return;
    outputOk = false;
    options.onOutputError?.(error);
  };
  stdout.on('error', onStdoutError);
  const removeOutput = uart.addOutputListener((chunk) => {
    if (outputOk) stdout.write(chunk);
  });

  const perform = (action: ConsoleAction): void => {
    switch (action.kind) {
      case 'data':
        uart.receive(action.bytes);
        return;
      case 'quit':
        options.onQuit();
        return;
      case 'help':
        stdout.write(escapeHelp(escapeByte ?? CTRL_A, options.onMonitor !== undefined));
        return;
      case 'break':
        uart.sendBreak();
        return;
      case 'monitor':
        if (options.onMonitor) options.onMonitor();
        else stdout.write(`\r\nnodevmm: there is no monitor (${escapeKeyName(escapeByte ?? CTRL_A)} h for help)\r\n`);
        return;
      case 'unknown':
        return; // like QEMU: an unknown escape command is dropped
    }
  };
  const onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!parser) {
      uart.receive(bytes);
      return;
    }
    for (const action of parser.feed(bytes)) perform(action);
  };
  const onEnd = (): void => options.onInputEnd?.();

  const restoreTerminal = enterRawMode(stdin, options.processHooks);
  stdin.on('data', onData);
  stdin.on('end', onEnd);
  stdin.resume();

  let detached = false;
  return () => {
    if (detached) return;
    detached = true;
    uart.flushOutput();
    removeOutput();
    stdin.removeListener('data', onData);
    stdin.removeListener('end', onEnd);
    stdin.pause(); // a flowing stdin would keep the process alive
    restoreTerminal();
    stdout.removeListener('error', onStdoutError);
  };
}
