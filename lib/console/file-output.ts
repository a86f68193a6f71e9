/**
 * `--serial file:PATH`: guest output appended to a file created (or truncated) when the VM starts.
 * Written synchronously per output batch so nothing is lost when the VMM exits right after the guest's last
 * line (a panic message, a test result).
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export class SerialFileError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly path: string,
    action: string,
    cause: NodeJS.ErrnoException,
  ) {
    super(`serial output file ${path}: cannot ${action}: ${cause.code ?? ''} ${cause.message}`.replace(/ {2,}/g, ' '), {
      cause,
    });
    this.name = 'SerialFileError';
    this.code = cause.code;
  }
}

export interface FileOutputUart {
  addOutputListener(listener: (chunk: Uint8Array) => void): () => void;
  flushOutput(): void;
}

/** Opens PATH now (throws SerialFileError naming it); returns detach(), which flushes and closes the file. */
export function attachFileOutput(
  uart: FileOutputUart,
  path: string,
  options: { onError?: (error: SerialFileError) => void } = {},
): () => void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'w', 0o644);
  } catch (e) {
    throw new SerialFileError(path, 'open it for writing', e as NodeJS.ErrnoException);
  }
  const removeOutput = uart.addOutputListener((chunk) => {
    if (fd === undefined) return;
    try {
      let done = 0;
      while (done < chunk.length) done += writeSync(fd, chunk, done, chunk.length - done);
    } catch (e) {
      // A full disk or a vanished mount: report once, stop writing, keep the VM running.
      const failed = fd;
      fd = undefined;
      closeQuietly(failed);
      options.onError?.(new SerialFileError(path, 'write to it', e as NodeJS.ErrnoException));
    }
  });
  let detached = false;
  return () => {
    if (detached) return;
    detached = true;
    uart.flushOutput();
    removeOutput();
    if (fd !== undefined) closeQuietly(fd);
    fd = undefined;
  };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Closing can only fail for an fd that is already gone.
  }
}
