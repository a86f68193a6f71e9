/**
 * The legacy PC devices every nodevmm machine has, registered on the port bus: COM1, the i8042 (reset line)
 * and port 0x92, the CMOS RTC, isa-debug-exit, the boot-marker port and the POST/IO-delay sinks. None of
 * them knows which accelerator runs the vCPUs: interrupts go through IrqLines on the accelerator's controller.
 */
import { BootMarker, BOOT_MARKER_PORT, BOOT_MARKER_PORT_LENGTH, type BootMarkerEvent } from '../devices/boot-marker.js';
import { CMOS_INDEX_PORT, CMOS_PORT_COUNT, CMOS_RTC_IRQ, CmosRtc } from '../devices/cmos-rtc.js';
import { DEBUG_EXIT_PORT, DEBUG_EXIT_PORT_LENGTH, DebugExit } from '../devices/debug-exit.js';
import { I8042, SYSTEM_CONTROL_PORT_A, SystemControlPortA } from '../devices/i8042.js';
import type { PlatformClock } from '../devices/platform-clock.js';
import { IO_DELAY_PORT, PortSink, POST_CODE_PORT } from '../devices/port-sink.js';
import { COM1, UART_PORT_COUNT, Uart16550 } from '../devices/serial/index.js';
import type { Bus } from './bus.js';
import { type InterruptController, irqLine } from './irq.js';

export const I8042_KEYBOARD_IRQ = 1;
export const I8042_AUX_IRQ = 12;

export interface PlatformDeviceHooks {
  /** The guest pulsed the reset line (i8042 command 0xfe or port 0x92 bit 0). */
  onReset: () => void;
  /** isa-debug-exit: status = (code << 1) | 1. */
  onDebugExit: (status: number, code: number) => void;
  onBootMarker: (event: BootMarkerEvent) => void;
  /** Called after every CMOS register write (its next timer deadline may have changed). */
  onRtcWrite: () => void;
}

export interface PlatformDevices {
  uart: Uart16550;
  i8042: I8042;
  rtc: CmosRtc;
  bootMarker: BootMarker;
}

export function createPlatformDevices(
  pio: Bus,
  interrupts: InterruptController,
  clock: PlatformClock,
  memory: { below4G: number; above4G: number },
  hooks: PlatformDeviceHooks,
): PlatformDevices {
  const uart = new Uart16550({ irq: irqLine(interrupts, COM1.irq) });
  pio.register(COM1.base, UART_PORT_COUNT, uart, 'com1');

  const i8042 = new I8042({
    onReset: hooks.onReset,
    keyboardIrq: irqLine(interrupts, I8042_KEYBOARD_IRQ),
    auxIrq: irqLine(interrupts, I8042_AUX_IRQ),
  });
  i8042.registerOn(pio);
  pio.register(SYSTEM_CONTROL_PORT_A, 1, new SystemControlPortA({ onReset: hooks.onReset }), 'port92');

  const rtc = new CmosRtc({
    clock, irq: irqLine(interrupts, CMOS_RTC_IRQ), memoryBelow4G: memory.below4G, memoryAbove4G: memory.above4G,
  });
  pio.register(CMOS_INDEX_PORT, CMOS_PORT_COUNT, {
    read: (offset, size) => rtc.ports.read(offset, size),
    write: (offset, size, value) => {
      rtc.ports.write(offset, size, value);
      hooks.onRtcWrite();
    },
  }, 'cmos-rtc');

  pio.register(DEBUG_EXIT_PORT, DEBUG_EXIT_PORT_LENGTH, new DebugExit({ onExit: hooks.onDebugExit }), 'isa-debug-exit');
  const bootMarker = new BootMarker({ onMarker: hooks.onBootMarker });
  pio.register(BOOT_MARKER_PORT, BOOT_MARKER_PORT_LENGTH, bootMarker, 'boot-marker');
  pio.register(POST_CODE_PORT, 1, new PortSink(), 'post-code');
  pio.register(IO_DELAY_PORT, 1, new PortSink(), 'io-delay');
  return { uart, i8042, rtc, bootMarker };
}
