/**
 * The i8042 PS/2 controller at ports 0x60 (data) and 0x64 (status/command), without a keyboard or mouse
 * behind it. What guests use it for here is its reset line: command 0xFE (pulse output-port bit 0 low) and
 * an output-port write with bit 0 clear reboot the machine. The rest answers the Linux i8042 probe the way a
 * controller with empty PS/2 ports does: self-test passes, the command byte reads back, and anything sent to
 * a device comes back as a receive time-out (status bit 6 with 0xFF in the output buffer).
 *
 * Port 0x92 (System Control Port A: fast A20 and fast reset) is here too since it shares the reset callback.
 *
 * The two ports are not contiguous: register `i8042.data` at 0x60 and `i8042.control` at 0x64 (length 1
 * each), or call `registerOn(bus)`.
 */
import type { Bus, BusDevice } from '../machine/bus.js';
import type { IrqLine } from '../machine/irq.js';

export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
export const SYSTEM_CONTROL_PORT_A = 0x92;

// Status register (port 0x64 read).
const STATUS_OBF = 0x01; // output buffer full
const STATUS_SYSTEM_FLAG = 0x04; // mirrors command byte bit 2 (set once self-test passed)
const STATUS_LAST_WAS_COMMAND = 0x08;
const STATUS_KEYLOCK_OFF = 0x10; // 1 = keyboard not inhibited
const STATUS_AUX_DATA = 0x20; // the output buffer holds data from the aux (mouse) port
const STATUS_TIMEOUT = 0x40;

// Command byte ("CTR"), controller RAM byte 0.
const CTR_KBD_INT = 0x01;
const CTR_AUX_INT = 0x02;
const CTR_SYSTEM_FLAG = 0x04;
const CTR_KBD_DISABLE = 0x10;
const CTR_AUX_DISABLE = 0x20;
const CTR_TRANSLATE = 0x40;

// Output port (commands 0xD0/0xD1).
const OUTPUT_PORT_RESET_INACTIVE = 0x01; // 0 asserts the CPU reset line
const OUTPUT_PORT_A20 = 0x02;

/** Bytes waiting for the guest; beyond this (a guest issuing commands without reading) new ones are lost. */
const OUTPUT_QUEUE_LIMIT = 16;

/** What a missing device "answers": a receive time-out. */
const NO_DEVICE_RESPONSE = 0xff;

export interface I8042Options {
  /** The guest pulsed the reset line (reboot). */
  onReset: () => void;
  /** Gate A20 changed (output port bit 1 or port 0x92 bit 1). Long-mode guests never turn it off. */
  onA20?: (enabled: boolean) => void;
  /** ISA IRQ 1: output buffer full with keyboard-port data, when command byte bit 0 is set. */
  keyboardIrq?: IrqLine;
  /** ISA IRQ 12: output buffer full with aux-port data, when command byte bit 1 is set. */
  auxIrq?: IrqLine;
}

interface OutputByte {
  value: number;
  aux: boolean;
  timeout: boolean;
}

export class I8042 {
  /** Port 0x60. */
  readonly data: BusDevice;
  /** Port 0x64: status on read, command on write. */
  readonly control: BusDevice;

  private readonly ram = new Uint8Array(32); // byte 0 is the command byte
  private output: OutputByte[] = [];
  private pendingCommand: number | undefined; // a command waiting for its data byte at port 0x60
  private outputPort = OUTPUT_PORT_RESET_INACTIVE | OUTPUT_PORT_A20;
  private lastWasCommand = false;
  private keyboardIrqLevel = false;
  private auxIrqLevel = false;

  constructor(private readonly options: I8042Options) {
    this.data = { read: () => this.readData(), write: (_o, _s, v) => this.writeData(v & 0xff) };
    this.control = { read: () => this.readStatus(), write: (_o, _s, v) => this.writeCommand(v & 0xff) };
    this.reset();
  }

  /** Power-on state, as firmware leaves it: keyboard interrupt and translation on, system flag set. */
  reset(): void {
    this.ram.fill(0);
    this.ram[0] = CTR_KBD_INT | CTR_SYSTEM_FLAG | CTR_TRANSLATE;
    this.output = [];
    this.pendingCommand = undefined;
    this.outputPort = OUTPUT_PORT_RESET_INACTIVE | OUTPUT_PORT_A20;
    this.lastWasCommand = false;
    this.updateIrqs();
  }

  registerOn(bus: Bus, dataPort = I8042_DATA_PORT, commandPort = I8042_COMMAND_PORT): void {
    bus.register(dataPort, 1, this.data, 'i8042-data');
    bus.register(commandPort, 1, this.control, 'i8042-command');
  }

  get commandByte(): number {
    return this.ram[0]!;
  }

  get a20Enabled(): boolean {
    return (this.outputPort & OUTPUT_PORT_A20) !== 0;
  }

  private readStatus(): number {
    let status = STATUS_KEYLOCK_OFF;
    if (this.ram[0]! & CTR_SYSTEM_FLAG) status |= STATUS_SYSTEM_FLAG;
    if (this.lastWasCommand) status |= STATUS_LAST_WAS_COMMAND;
    const head = this.output[0];
    if (head) {
      status |= STATUS_OBF;
      if (head.aux) status |= STATUS_AUX_DATA;
      if (head.timeout) status |= STATUS_TIMEOUT;
    }
    return status; // the input buffer is consumed at once, so IBF (bit 1) never shows
  }

  private readData(): number {
    const head = this.output.shift();
    this.updateIrqs();
    return head === undefined ? 0 : head.value; // reading an empty buffer returns stale data on hardware
  }

  private writeData(value: number): void {
    this.lastWasCommand = false;
    const command = this.pendingCommand;
    this.pendingCommand = undefined;
    if (command === undefined) {
      this.sendToDevice(false);
      return;
    }
    if (command >= 0x60 && command <= 0x7f) {
      this.ram[command - 0x60] = value;
      this.updateIrqs();
      return;
    }
    switch (command) {
      case 0xd1: // write output port
        this.writeOutputPort(value);
        return;
      case 0xd2: // write keyboard output buffer (as if the keyboard sent it)
        this.queue(value, false);
        return;
      case 0xd3: // write aux output buffer (Linux's AUX loopback test)
        this.queue(value, true);
        return;
      case 0xd4: // next byte goes to the aux device
        this.sendToDevice(true);
        return;
    }
  }

  private writeCommand(command: number): void {
    this.lastWasCommand = true;
    this.pendingCommand = undefined;
    if (command <= 0x3f && command >= 0x20) {
      this.queue(this.ram[command - 0x20]!, false); // 0x20: command byte; 0x21..0x3f: controller RAM
      return;
    }
    if ((command >= 0x60 && command <= 0x7f) || (command >= 0xd1 && command <= 0xd4)) {
      this.pendingCommand = command;
      return;
    }
    if (command >= 0xf0) {
      // Pulse output-port lines whose bits are 0 in the low nibble; bit 0 is the CPU reset line.
      if (!(command & 0x01)) this.options.onReset();
      return;
    }
    switch (command) {
      case 0xa7: // disable aux port
        this.ram[0]! |= CTR_AUX_DISABLE;
        break;
      case 0xa8: // enable aux port
        this.ram[0]! &= ~CTR_AUX_DISABLE;
        break;
      case 0xa9: // aux interface test: 0 = lines OK
      case 0xab: // keyboard interface test
        this.queue(0x00, false);
        break;
      case 0xaa: // controller self-test
        this.ram[0]! |= CTR_SYSTEM_FLAG;
        this.queue(0x55, false);
        break;
      case 0xad: // disable keyboard port
        this.ram[0]! |= CTR_KBD_DISABLE;
        break;
      case 0xae: // enable keyboard port
        this.ram[0]! &= ~CTR_KBD_DISABLE;
        break;
      case 0xc0: // read input port: bit 7 keyboard not inhibited, bit 5 no manufacturing jumper
        this.queue(0xa0, false);
        break;
      case 0xd0: // read output port (bits 4/5 mirror the output-buffer-full interrupts)
        this.queue(this.outputPortValue(), false);
        break;
      case 0xdd: // disable A20 (some controllers)
        this.writeOutputPort(this.outputPort & ~OUTPUT_PORT_A20);
        break;
      case 0xdf: // enable A20
        this.writeOutputPort(this.outputPort | OUTPUT_PORT_A20);
        break;
      case 0xe0: // read test inputs
        this.queue(0x00, false);
        break;
      default:
        break; // unknown commands are ignored, as by real controllers
    }
    this.updateIrqs();
  }

  private writeOutputPort(value: number): void {
    const old = this.outputPort;
    this.outputPort = value & (OUTPUT_PORT_RESET_INACTIVE | OUTPUT_PORT_A20);
    if ((old ^ this.outputPort) & OUTPUT_PORT_A20) this.options.onA20?.(this.a20Enabled);
    if (!(value & OUTPUT_PORT_RESET_INACTIVE)) {
      this.outputPort |= OUTPUT_PORT_RESET_INACTIVE; // the reset restarts the machine, line released
      this.options.onReset();
    }
  }

  private outputPortValue(): number {
    let value = this.outputPort;
    const head = this.output[0];
    if (head && !head.aux) value |= 0x10;
    if (head?.aux) value |= 0x20;
    return value;
  }

  /** A byte sent to an empty PS/2 port: the controller reports a receive time-out. */
  private sendToDevice(aux: boolean): void {
    this.enqueue({ value: NO_DEVICE_RESPONSE, aux, timeout: true });
  }

  private queue(value: number, aux: boolean): void {
    this.enqueue({ value, aux, timeout: false });
  }

  private enqueue(byte: OutputByte): void {
    if (this.output.length < OUTPUT_QUEUE_LIMIT) this.output.push(byte);
    this.updateIrqs();
  }

  private updateIrqs(): void {
    const head = this.output[0];
    const kbd = head !== undefined && !head.aux && (this.ram[0]! & CTR_KBD_INT) !== 0;
    const aux = head !== undefined && head.aux && (this.ram[0]! & CTR_AUX_INT) !== 0;
    if (kbd !== this.keyboardIrqLevel) {
      this.keyboardIrqLevel = kbd;
      this.options.keyboardIrq?.set(kbd);
    }
    if (aux !== this.auxIrqLevel) {
      this.auxIrqLevel = aux;
      this.options.auxIrq?.set(aux);
    }
  }
}

export interface SystemControlPortAOptions {
  onReset: () => void;
  onA20?: (enabled: boolean) => void;
}

/** Port 0x92: bit 0 = fast reset (on a 0 -> 1 write), bit 1 = A20 gate. */
export class SystemControlPortA implements BusDevice {
  private value = 0x02; // A20 on

  constructor(private readonly options: SystemControlPortAOptions) {}

  read(): number {
    return this.value;
  }

  write(_offset: number, _size: number, value: number): void {
    const old = this.value;
    this.value = value & 0x02; // bit 0 reads back 0 once the reset has happened
    if ((old ^ this.value) & 0x02) this.options.onA20?.((this.value & 0x02) !== 0);
    if (value & 0x01) this.options.onReset(); // stored bit 0 is always 0, so every 1 is a rising edge
  }
}
