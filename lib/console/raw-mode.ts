/**
 * Raw mode for a terminal on stdin, restored on every way out: detach, normal exit, process.exit(), an
 * uncaught exception (restored before Node prints it, so the trace is readable), and termination signals
 * (restored, then the signal's default action proceeds unless someone else handles it).
 */

export interface TerminalInput {
  readonly isTTY?: boolean;
  readonly isRaw?: boolean;
  setRawMode?(mode: boolean): unknown;
}

/** The slice of `process` the guard hooks (injectable for tests). */
export interface ProcessHooks {
  readonly pid: number;
  on(event: string, listener: (signal: NodeJS.Signals) => void): unknown;
  removeListener(event: string, listener: (signal: NodeJS.Signals) => void): unknown;
  listenerCount(event: string): number;
  kill(pid: number, signal: NodeJS.Signals): unknown;
}

const RESTORE_ON_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/** Puts `input` in raw mode if it is a terminal. Returns an idempotent restore function (a no-op otherwise). */
export function enterRawMode(input: TerminalInput, proc: ProcessHooks = process): () => void {
  if (input.isTTY !== true || typeof input.setRawMode !== 'function') return () => {};
  const wasRaw = input.isRaw === true;
  input.setRawMode(true);

  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    proc.removeListener('exit', restore);
    proc.removeListener('uncaughtExceptionMonitor', restore);
    for (const signal of RESTORE_ON_SIGNALS) proc.removeListener(signal, onSignal);
    try {
      input.setRawMode!(wasRaw);
    } catch {
      // The terminal is already gone (hang-up): there is nothing left to restore.
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    // Our listener suppressed Node's default action; if nobody else handles the signal, re-raise it so the
    // process still terminates the way the sender intended (exit status 128 + signal number).
    const othersListening = proc.listenerCount(signal) > 1;
    restore();
    if (!othersListening) proc.kill(proc.pid, signal);
  };

  proc.on('exit', restore);
  proc.on('uncaughtExceptionMonitor', restore);
  for (const signal of RESTORE_ON_SIGNALS) proc.on(signal, onSignal);
  return restore;
}
