/** How a machine ended, and the process exit status the CLI uses for it. */

export type MachineExitReason =
  | 'debug-exit' // the guest wrote a code to isa-debug-exit (port 0xf4): status (code << 1) | 1
  | 'power-off' // clean guest power-off: 0
  | 'reboot' // the guest rebooted and the machine was configured to exit on reboot: 0
  | 'stopped' // machine.stop() (API, SIGINT/SIGTERM, Ctrl-A x): 0 unless the caller chose another status
  | 'triple-fault' // 1
  | 'emulation-failure' // 1
  | 'error'; // VMM error: 1

export interface MachineExit {
  reason: MachineExitReason;
  /** Process exit status (may exceed 255 for large debug-exit codes; the CLI takes it modulo 256). */
  status: number;
  /** One line for the user. */
  message: string;
}
