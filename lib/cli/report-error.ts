import { UsageError } from './usage-error.js';

/**
 * Turn any error into one line for the user (no stack trace unless NODEVMM_DEBUG=1) and an exit status:
 * 2 for usage mistakes, 1 for everything else.
 */
export function reportError(error: unknown, stderr: NodeJS.WritableStream = process.stderr): number {
  const debug = process.env.NODEVMM_DEBUG === '1';
  if (error instanceof UsageError) {
    stderr.write(`nodevmm: ${error.message}\n`);
    if (error.hint) stderr.write(`nodevmm: ${error.hint}\n`);
    return 2;
  }
  const message = error instanceof Error ? error.message : String(error);
  stderr.write(`nodevmm: ${message}\n`);
  if (debug && error instanceof Error && error.stack) stderr.write(`${error.stack}\n`);
  else if (!(error instanceof Error) || !isExpectedError(error)) {
    stderr.write('nodevmm: (this looks like a bug in nodevmm; NODEVMM_DEBUG=1 shows the stack trace)\n');
  }
  return 1;
}

const PROGRAMMING_ERRORS = new Set(['Error', 'TypeError', 'RangeError', 'ReferenceError', 'SyntaxError']);

/** Errors whose message is the whole story: our own named errors (LoaderError, ConfigError...) and syscall failures. */
function isExpectedError(error: Error): boolean {
  return typeof (error as { code?: unknown }).code === 'string' || !PROGRAMMING_ERRORS.has(error.name);
}
