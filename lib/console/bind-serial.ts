/**
 * Connects a UART to where `--serial` says: the terminal (stdio), a file, or nowhere.
 */
import { attachConsole, type ConsoleOptions, type ConsoleUart } from './attach-console.js';
import { attachFileOutput, type SerialFileError } from './file-output.js';

/** Same shape as the CLI's SerialDest. */
export type SerialDestination = { kind: 'stdio' } | { kind: 'file'; path: string } | { kind: 'none' };

export interface BindSerialOptions extends Omit<ConsoleOptions, 'stdin' | 'stdout'> {
  stdin?: ConsoleOptions['stdin'];
  stdout?: ConsoleOptions['stdout'];
  onFileError?: (error: SerialFileError) => void;
}

/** Returns an idempotent unbind(). Throws SerialFileError when a file destination cannot be opened. */
export function bindSerial(uart: ConsoleUart, destination: SerialDestination, options: BindSerialOptions): () => void {
  switch (destination.kind) {
    case 'stdio':
      return attachConsole(uart, {
        ...options,
        stdin: options.stdin ?? process.stdin,
        stdout: options.stdout ?? process.stdout,
      });
    case 'file':
      return attachFileOutput(uart, destination.path, options.onFileError ? { onError: options.onFileError } : {});
    case 'none':
      return () => {}; // no listener: the guest's output is discarded
  }
}
