/**
 * An 8250/16550A UART as found at COM1-COM4 on a PC.
 *
 * Timing is virtual: a transmitted character leaves the moment the guest writes THR (no baud-rate pacing), so
 * THR/TEMT are empty again before the guest can look, exactly as if the line were infinitely fast. Received
 * characters come from a host-side queue that feeds the 16-byte RX FIFO as the guest drains it, so host input
 * is never overrun. The character-timeout indication (IIR 0x0c) is reported as soon as the FIFO holds data below
 * its trigger level and no more input is waiting, which is what a real UART reports four character times later.
 *
 * The IRQ output is a level: asserted while an enabled interrupt is pending, gated by MCR.OUT2 (on PCs OUT2
 * enables the interrupt buffer) and forced off in loopback mode (where the OUT2 pin is held inactive).
 */
import type { BusDevice } from '../../machine/bus.js';
import type { IrqLine } from '../../machine/irq.js';
import { BREAK, HostInputQueue } from './host-input-queue.js';
import { RxFifo } from './rx-fifo.js';
import { UartStream } from './uart-stream.js';
import * as registers from './uart-registers.js';

// Copied into module-local constants once: transpilers used for tests and benches (vite, tsx) turn every
// imported binding into a getter call, which made each register access several times slower.
const {
  FCR_CLEAR_RX,
  FCR_DMA_MODE,
  FCR_ENABLE,
  FCR_TRIGGER_SHIFT,
  FIFO_DEPTH,
  IER_EDSSI,
  IER_ELSI,
  IER_ERBFI,
  IER_ETBEI,
  IER_MASK,
  IIR_CHAR_TIMEOUT,
  IIR_FIFO_ENABLED,
  IIR_LINE_STATUS,
  IIR_MODEM_STATUS,
  IIR_NO_INTERRUPT,
  IIR_RX_DATA,
  IIR_THR_EMPTY,
  LCR_DLAB,
  LSR_BI,
  LSR_DR,
  LSR_ERROR_BITS,
  LSR_OE,
  LSR_RX_FIFO_ERROR,
  LSR_TEMT,
  LSR_THRE,
  MCR_DTR,
  MCR_LOOP,
  MCR_MASK,
  MCR_OUT1,
  MCR_OUT2,
  MCR_RTS,
  MSR_CTS,
  MSR_DCD,
  MSR_DCTS,
  MSR_DDCD,
  MSR_DDSR,
  MSR_DELTA_BITS,
  MSR_DSR,
  MSR_RI,
  MSR_TERI,
  PC_UART_BASE_BAUD,
  REG_IER,
  REG_IIR_FCR,
  REG_LCR,
  REG_LSR,
  REG_MCR,
  REG_MSR,
  REG_RBR_THR,
  REG_SCR,
  RX_TRIGGER_LEVELS,
} = registers;

/** The standard PC serial ports: I/O base and ISA IRQ. */
export const COM1 = { base: 0x3f8, irq: 4 } as const;
export const COM2 = { base: 0x2f8, irq: 3 } as const;
export const COM3 = { base: 0x3e8, irq: 4 } as const;
export const COM4 = { base: 0x2e8, irq: 3 } as const;
/** Each UART decodes eight consecutive ports. */
export const UART_PORT_COUNT = 8;

export interface Uart16550Options {
  /** The interrupt line (ISA IRQ 4 for COM1). Without one the UART works polled only. */
  irq?: IrqLine;
  /** Called synchronously with every byte the guest transmits (not in loopback mode). */
  onTransmit?: (byte: number) => void;
  /** Batched output is flushed at this size even before the event loop gets a turn. Default 4096. */
  outputBatchBytes?: number;
}

/** Host input beyond this many queued bytes makes `stream` writes wait (backpressure for the writer). */
const STREAM_INPUT_HIGH_WATER = 64 * 1024;

export class Uart16550 implements BusDevice {
  private readonly irq: IrqLine | undefined;
  private readonly onTransmitByte: ((byte: number) => void) | undefined;
  private readonly outputBatchBytes: number;

  // Registers.
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private dll = 0x0c; // 9600 baud, a common firmware default; Linux programs its own
  private dlm = 0;
  private fifoEnabled = false;
  private fcrDmaMode = false;
  private rxTrigger = 1;
  private overrun = false;
  private msrDeltas = 0;
  private msrLines: number;
  private thrEmptyPending = false;

  private readonly rx = new RxFifo();
  private readonly hostInput = new HostInputQueue();
  private irqLevel = false;

  // Output batching for chunk listeners (console, stream, file): one write per burst, not per byte.
  private readonly outputListeners = new Set<(chunk: Uint8Array) => void>();
  private outBuf: Uint8Array;
  private outLen = 0;
  private flushScheduled: NodeJS.Immediate | undefined;

  private readonly inputDrainedListeners = new Set<() => void>();
  private streamInstance: UartStream | undefined;
  private closed = false;

  constructor(options: Uart16550Options = {}) {
    this.irq = options.irq;
    this.onTransmitByte = options.onTransmit;
    this.outputBatchBytes = options.outputBatchBytes ?? 4096;
    if (!Number.isInteger(this.outputBatchBytes) || this.outputBatchBytes < 1) {
      throw new RangeError(`Uart16550 outputBatchBytes: ${options.outputBatchBytes} is not a positive integer`);
    }
    this.outBuf = new Uint8Array(this.outputBatchBytes);
    this.msrLines = this.modemInputLines();
    this.reset();
  }

  /** Power-on / hardware reset state (host input queued so far is kept: it has not reached the UART yet). */
  reset(): void {
    this.ier = 0;
    this.lcr = 0;
    this.mcr = 0;
    this.scr = 0;
    this.fifoEnabled = false;
    this.fcrDmaMode = false;
    this.rxTrigger = 1;
    this.rx.capacity = 1;
    this.rx.clear();
    this.overrun = false;
    this.msrLines = this.modemInputLines();
    this.msrDeltas = 0;
    this.thrEmptyPending = true; // THR is empty; the interrupt shows once ETBEI is enabled
    this.refillRx();
    this.updateIrq();
  }

  // ---------------------------------------------------------------- guest side (BusDevice)

  read(offset: number, size: number): number {
    // A wider access reads consecutive registers; real ISA hardware splits it the same way.
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.readRegister(offset + i) << (8 * i);
    return value >>> 0;
  }

  write(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.writeRegister(offset + i, (value >>> (8 * i)) & 0xff);
  }

  private readRegister(reg: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case REG_RBR_THR:
        return dlab ? this.dll : this.readRbr();
      case REG_IER:
        return dlab ? this.dlm : this.ier;
      case REG_IIR_FCR:
        return this.readIir();
      case REG_LCR:
        return this.lcr;
      case REG_MCR:
        return this.mcr;
      case REG_LSR:
        return this.readLsr();
      case REG_MSR:
        return this.readMsr();
      case REG_SCR:
        return this.scr;
      default:
        return 0xff; // outside the eight registers (only reachable through an oversized registration)
    }
  }

  private writeRegister(reg: number, value: number): void {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case REG_RBR_THR:
        if (dlab) this.dll = value;
        else this.writeThr(value);
        return;
      case REG_IER:
        if (dlab) this.dlm = value;
        else this.writeIer(value);
        return;
      case REG_IIR_FCR:
        this.writeFcr(value);
        return;
      case REG_LCR:
        this.lcr = value;
        return;
      case REG_MCR:
        this.writeMcr(value);
        return;
      case REG_LSR:
      case REG_MSR:
        return; // read-only on a 16550A (writes are factory test hooks)
      case REG_SCR:
        this.scr = value;
        return;
      default:
        return;
    }
  }

  private readRbr(): number {
    const byte = this.rx.shift();
    this.refillRx();
    this.updateIrq();
    return byte ?? 0;
  }

  private writeThr(byte: number): void {
    this.thrEmptyPending = false; // writing THR clears the THRE interrupt ...
    if (this.mcr & MCR_LOOP) this.receiveCharacter(byte, 0);
    else this.transmit(byte);
    this.thrEmptyPending = true; // ... and the character is gone at once, so THR is empty again
    this.updateIrq();
  }

  private writeIer(value: number): void {
    const old = this.ier;
    this.ier = value & IER_MASK;
    // Enabling ETBEI while THR is empty raises THRE again (Linux's THRE test and start_tx depend on it).
    if (!(old & IER_ETBEI) && this.ier & IER_ETBEI) this.thrEmptyPending = true;
    this.updateIrq();
  }

  private writeFcr(value: number): void {
    const enable = (value & FCR_ENABLE) !== 0;
    if (enable !== this.fifoEnabled) {
      // Changing FCR0 clears both FIFOs.
      this.fifoEnabled = enable;
      this.rx.clear();
      this.rx.capacity = enable ? FIFO_DEPTH : 1;
    }
    // The other bits are programmed only when FCR0 is set in the same write.
    if (enable) {
      if (value & FCR_CLEAR_RX) this.rx.clear();
      // FCR_CLEAR_TX: the transmitter never holds data (output is immediate), so there is nothing to clear.
      this.fcrDmaMode = (value & FCR_DMA_MODE) !== 0;
      this.rxTrigger = RX_TRIGGER_LEVELS[(value >> FCR_TRIGGER_SHIFT) & 3]!;
    } else {
      this.fcrDmaMode = false;
      this.rxTrigger = 1;
    }
    this.refillRx();
    this.updateIrq();
  }

  private writeMcr(value: number): void {
    const wasLoop = (this.mcr & MCR_LOOP) !== 0;
    this.mcr = value & MCR_MASK;
    this.updateModemLines();
    // Leaving loopback reconnects the receiver to the host side.
    if (wasLoop && !(this.mcr & MCR_LOOP)) this.refillRx();
    this.updateIrq();
  }

  private readIir(): number {
    const id = this.pendingInterrupt();
    // Reading IIR clears a THRE interrupt only when THRE is what it reports.
    if (id === IIR_THR_EMPTY) {
      this.thrEmptyPending = false;
      this.updateIrq();
    }
    return id | (this.fifoEnabled ? IIR_FIFO_ENABLED : 0);
  }

  private readLsr(): number {
    const value = this.lsrValue();
    // Reading LSR clears OE and the error bits of the character at the top of the FIFO.
    this.overrun = false;
    this.rx.clearTopErrors();
    this.updateIrq();
    return value;
  }

  private lsrValue(): number {
    let value = LSR_THRE | LSR_TEMT;
    if (this.rx.length > 0) value |= LSR_DR;
    if (this.overrun) value |= LSR_OE;
    value |= this.rx.topErrors();
    if (this.fifoEnabled && this.rx.anyErrors()) value |= LSR_RX_FIFO_ERROR;
    return value;
  }

  private readMsr(): number {
    const value = this.msrLines | this.msrDeltas;
    this.msrDeltas = 0;
    this.updateIrq();
    return value;
  }

  /** CTS/DSR/DCD asserted from the host side (a terminal is always "connected"); in loopback the MCR outputs. */
  private modemInputLines(): number {
    if (this.mcr & MCR_LOOP) {
      let lines = 0;
      if (this.mcr & MCR_RTS) lines |= MSR_CTS;
      if (this.mcr & MCR_DTR) lines |= MSR_DSR;
      if (this.mcr & MCR_OUT1) lines |= MSR_RI;
      if (this.mcr & MCR_OUT2) lines |= MSR_DCD;
      return lines;
    }
    return MSR_CTS | MSR_DSR | MSR_DCD;
  }

  private updateModemLines(): void {
    const old = this.msrLines;
    const now = this.modemInputLines();
    const changed = old ^ now;
    if (changed & MSR_CTS) this.msrDeltas |= MSR_DCTS;
    if (changed & MSR_DSR) this.msrDeltas |= MSR_DDSR;
    if (changed & MSR_DCD) this.msrDeltas |= MSR_DDCD;
    if (old & MSR_RI && !(now & MSR_RI)) this.msrDeltas |= MSR_TERI; // trailing edge only
    this.msrLines = now;
  }

  /** The highest-priority enabled interrupt, as its IIR code. */
  private pendingInterrupt(): number {
    const ier = this.ier;
    if (ier & IER_ELSI && (this.overrun || this.rx.topErrors() & LSR_ERROR_BITS)) return IIR_LINE_STATUS;
    if (ier & IER_ERBFI && this.rx.length > 0) {
      if (!this.fifoEnabled || this.rx.length >= this.rxTrigger) return IIR_RX_DATA;
      return IIR_CHAR_TIMEOUT;
    }
    if (ier & IER_ETBEI && this.thrEmptyPending) return IIR_THR_EMPTY;
    if (ier & IER_EDSSI && this.msrDeltas & MSR_DELTA_BITS) return IIR_MODEM_STATUS;
    return IIR_NO_INTERRUPT;
  }

  private updateIrq(): void {
    const gated = (this.mcr & (MCR_OUT2 | MCR_LOOP)) === MCR_OUT2;
    const level = gated && this.pendingInterrupt() !== IIR_NO_INTERRUPT;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq?.set(level);
    }
  }

  /** A character arrives at the receiver (from the host queue, or from THR in loopback). */
  private receiveCharacter(byte: number, errorBits: number): void {
    if (this.rx.full) {
      this.overrun = true; // only loopback can get here: host input waits in its queue instead
      return;
    }
    this.rx.push(byte, errorBits);
  }

  /** Move host input into the RX FIFO while it has room (not in loopback: the serial input is disconnected). */
  private refillRx(): void {
    if (this.mcr & MCR_LOOP) return;
    let moved = false;
    while (!this.rx.full && this.hostInput.length > 0) {
      const item = this.hostInput.shift()!;
      if (item === BREAK) this.rx.push(0, LSR_BI);
      else this.rx.push(item, 0);
      moved = true;
    }
    if (moved && this.hostInput.length < STREAM_INPUT_HIGH_WATER) {
      for (const listener of this.inputDrainedListeners) listener();
    }
  }

  private transmit(byte: number): void {
    this.onTransmitByte?.(byte);
    if (this.outputListeners.size === 0) return;
    this.outBuf[this.outLen++] = byte;
    if (this.outLen >= this.outBuf.length) this.flushOutput();
    else if (this.flushScheduled === undefined) this.flushScheduled = setImmediate(() => this.flushOutput());
  }

  // ---------------------------------------------------------------- host side

  /** Queue bytes for the guest to receive (strings are sent as UTF-8). Never drops data while the VM lives. */
  receive(data: Uint8Array | string): void {
    if (this.closed) return; // the guest is gone: nobody will ever read it
    // Copy: a Buffer's slice() is a view, and callers (stream pools) may reuse their memory.
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data);
    this.hostInput.pushBytes(bytes);
    this.refillRx();
    this.updateIrq();
  }

  /** Send a break condition: the guest receives a NUL character with LSR.BI set (Linux: SysRq / BREAK). */
  sendBreak(): void {
    this.hostInput.pushBreak();
    this.refillRx();
    this.updateIrq();
  }

  /** Host input not yet taken into the RX FIFO. */
  get pendingInputBytes(): number {
    return this.hostInput.length;
  }

  /** Subscribe to transmitted output in batches (flushed on the next event-loop turn or when the batch fills). */
  addOutputListener(listener: (chunk: Uint8Array) => void): () => void {
    this.outputListeners.add(listener);
    return () => {
      this.outputListeners.delete(listener);
    };
  }

  /** Called whenever queued host input drops below the stream high-water mark. */
  addInputDrainedListener(listener: () => void): () => void {
    this.inputDrainedListeners.add(listener);
    return () => {
      this.inputDrainedListeners.delete(listener);
    };
  }

  /** Deliver batched output now (call before the VMM exits so the guest's last words are not lost). */
  flushOutput(): void {
    if (this.flushScheduled !== undefined) {
      clearImmediate(this.flushScheduled);
      this.flushScheduled = undefined;
    }
    if (this.outLen === 0) return;
    const chunk = this.outBuf.slice(0, this.outLen);
    this.outLen = 0;
    for (const listener of this.outputListeners) listener(chunk);
  }

  /**
   * The VM has stopped: deliver batched output, end the stream's readable side and release waiting writers.
   * Idempotent. Later host input is discarded.
   */
  close(): void {
    if (this.closed) return;
    this.flushOutput();
    this.closed = true;
    this.hostInput.clear();
    for (const listener of this.inputDrainedListeners) listener();
    this.streamInstance?.endOfGuest();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A Duplex: reading gives what the guest transmits, writing queues guest input. Created on first use. */
  get stream(): UartStream {
    this.streamInstance ??= new UartStream(this, STREAM_INPUT_HIGH_WATER);
    return this.streamInstance;
  }

  // ---------------------------------------------------------------- introspection

  /** Divisor latch value (DLM:DLL). */
  get divisor(): number {
    return (this.dlm << 8) | this.dll;
  }

  /** The programmed baud rate on a PC's 1.8432 MHz clock (undefined while the divisor is 0). */
  get baudRate(): number | undefined {
    return this.divisor === 0 ? undefined : PC_UART_BASE_BAUD / this.divisor;
  }

  /** Current level of the IRQ output (after OUT2 gating). */
  get irqAsserted(): boolean {
    return this.irqLevel;
  }

  /** FCR DMA-mode bit as last programmed (no DMA engine is attached; kept so the register reads back sane). */
  get dmaMode(): boolean {
    return this.fcrDmaMode;
  }
}
