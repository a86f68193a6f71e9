/**
 * Ports that exist on every PC but do nothing a VM needs: 0x80 (POST code, also Linux's I/O delay port with
 * io_delay=0x80), 0xed (alternative I/O delay). Claiming them keeps them out of the unclaimed-port log and
 * answers reads like an idle ISA bus (all ones). Optionally records the last POST code written.
 */
import type { BusDevice } from '../machine/bus.js';

export const POST_CODE_PORT = 0x80;
export const IO_DELAY_PORT = 0xed;

export class PortSink implements BusDevice {
  /** The last value written (a POST code on port 0x80), undefined before the first write. */
  lastWrite: number | undefined;

  read(_offset: number, size: number): number {
    return size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1;
  }

  write(_offset: number, _size: number, value: number): void {
    this.lastWrite = value;
  }
}
