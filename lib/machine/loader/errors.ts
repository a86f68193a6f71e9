/** Errors from the boot loaders. Messages name the file (or the option) at fault and what was expected. */

export class LoaderError extends Error {
  readonly code = 'ELOADER';
  /**
   * @param path  the image at fault (kernel, initrd or module path), if any
   * @param field the option or header field at fault ('kernel', 'initrd', 'cmdline', 'memory', 'version', ...)
   */
  constructor(message: string, readonly path: string | undefined, readonly field: string) {
    super(message);
    this.name = 'LoaderError';
  }
}

export function mib(bytes: number): string {
  const v = bytes / (1024 * 1024);
  return Number.isInteger(v) ? `${v} MiB` : `${v.toFixed(1)} MiB`;
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
