/**
 * The console escape: after the escape byte (Ctrl-A by default, as in QEMU) the next key is a command for
 * the VMM, not input for the guest. The parser is a pure state machine over input chunks so an escape split
 * across two reads still works.
 */

export type ConsoleAction =
  | { kind: 'data'; bytes: Uint8Array } // forward to the guest
  | { kind: 'quit' } // Ctrl-A x
  | { kind: 'help' } // Ctrl-A h or Ctrl-A ?
  | { kind: 'break' } // Ctrl-A b: send a serial break (Linux: magic SysRq prefix)
  | { kind: 'monitor' } // Ctrl-A c
  | { kind: 'unknown'; key: number }; // anything else after the escape: dropped

export const CTRL_A = 0x01;

export class EscapeParser {
  private escaped = false;

  constructor(readonly escapeByte: number = CTRL_A) {
    if (!Number.isInteger(escapeByte) || escapeByte < 0 || escapeByte > 0xff) {
      throw new RangeError(`console escape byte: ${escapeByte} is not a byte value`);
    }
  }

  feed(chunk: Uint8Array): ConsoleAction[] {
    const actions: ConsoleAction[] = [];
    let start = 0; // start of the current run of plain data
    const flushData = (end: number): void => {
      if (end > start) actions.push({ kind: 'data', bytes: chunk.slice(start, end) });
    };
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (this.escaped) {
        this.escaped = false;
        start = i + 1;
        if (byte === this.escapeByte) {
          actions.push({ kind: 'data', bytes: Uint8Array.of(byte) }); // escape twice sends it literally
        } else {
          actions.push(commandFor(byte));
        }
      } else if (byte === this.escapeByte) {
        flushData(i);
        this.escaped = true;
        start = i + 1;
      }
    }
    if (!this.escaped) flushData(chunk.length);
    return mergeData(actions);
  }
}

function commandFor(key: number): ConsoleAction {
  switch (String.fromCharCode(key).toLowerCase()) {
    case 'x':
      return { kind: 'quit' };
    case 'h':
    case '?':
      return { kind: 'help' };
    case 'b':
      return { kind: 'break' };
    case 'c':
      return { kind: 'monitor' };
    default:
      return { kind: 'unknown', key };
  }
}

/** Adjacent data pieces (around a literal escape) become one write. */
function mergeData(actions: ConsoleAction[]): ConsoleAction[] {
  const merged: ConsoleAction[] = [];
  for (const action of actions) {
    const last = merged[merged.length - 1];
    if (action.kind === 'data' && last?.kind === 'data') {
      const bytes = new Uint8Array(last.bytes.length + action.bytes.length);
      bytes.set(last.bytes);
      bytes.set(action.bytes, last.bytes.length);
      merged[merged.length - 1] = { kind: 'data', bytes };
    } else {
      merged.push(action);
    }
  }
  return merged;
}

export function escapeHelp(escapeByte: number, withMonitor: boolean): string {
  const key = escapeKeyName(escapeByte);
  const lines = [
    `${key} h    print this help`,
    `${key} x    quit nodevmm (the guest is stopped)`,
    `${key} b    send a break to the guest (Linux: followed by a key, a magic SysRq)`,
    ...(withMonitor ? [`${key} c    switch between the guest console and the monitor`] : []),
    `${key} ${key}  send ${key} itself to the guest`,
  ];
  // \r\n: the terminal is in raw mode.
  return lines.join('\r\n') + '\r\n';
}

export function escapeKeyName(escapeByte: number): string {
  if (escapeByte >= 1 && escapeByte <= 26) return `Ctrl-${String.fromCharCode(0x40 + escapeByte)}`;
  return `0x${escapeByte.toString(16).padStart(2, '0')}`;
}
