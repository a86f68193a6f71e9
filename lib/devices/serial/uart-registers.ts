/**
 * Register map of the 8250/16550A UART (offsets from the port base) and the bits nodevmm implements.
 * Names follow the PC16550D datasheet.
 */

// Offsets. With LCR.DLAB set, offsets 0 and 1 reach the divisor latch instead of RBR/THR and IER.
export const REG_RBR_THR = 0; // read: receiver buffer; write: transmitter holding
export const REG_IER = 1;
export const REG_IIR_FCR = 2; // read: interrupt identification; write: FIFO control
export const REG_LCR = 3;
export const REG_MCR = 4;
export const REG_LSR = 5;
export const REG_MSR = 6;
export const REG_SCR = 7;
export const UART_REGISTER_COUNT = 8;

// IER: only the low four bits exist on a 16550A (Linux probes bit 6 to detect XScale UARTs).
export const IER_ERBFI = 0x01; // received data available (and character timeout)
export const IER_ETBEI = 0x02; // transmitter holding register empty
export const IER_ELSI = 0x04; // receiver line status
export const IER_EDSSI = 0x08; // modem status
export const IER_MASK = 0x0f;

// IIR interrupt identification (bits 3..0), in priority order; bits 7..6 read 11 when the FIFOs are enabled.
export const IIR_NO_INTERRUPT = 0x01;
export const IIR_LINE_STATUS = 0x06;
export const IIR_RX_DATA = 0x04;
export const IIR_CHAR_TIMEOUT = 0x0c;
export const IIR_THR_EMPTY = 0x02;
export const IIR_MODEM_STATUS = 0x00;
export const IIR_FIFO_ENABLED = 0xc0;

// FCR
export const FCR_ENABLE = 0x01;
export const FCR_CLEAR_RX = 0x02;
export const FCR_CLEAR_TX = 0x04;
export const FCR_DMA_MODE = 0x08;
export const FCR_TRIGGER_SHIFT = 6;
/** RX FIFO trigger levels selected by FCR bits 7..6. */
export const RX_TRIGGER_LEVELS = [1, 4, 8, 14] as const;
export const FIFO_DEPTH = 16;

// LCR
export const LCR_DLAB = 0x80;

// MCR
export const MCR_DTR = 0x01;
export const MCR_RTS = 0x02;
export const MCR_OUT1 = 0x04;
export const MCR_OUT2 = 0x08; // on PCs, gates the UART's interrupt output onto the ISA IRQ line
export const MCR_LOOP = 0x10;
export const MCR_MASK = 0x1f;

// LSR
export const LSR_DR = 0x01;
export const LSR_OE = 0x02;
export const LSR_PE = 0x04;
export const LSR_FE = 0x08;
export const LSR_BI = 0x10;
export const LSR_THRE = 0x20;
export const LSR_TEMT = 0x40;
export const LSR_RX_FIFO_ERROR = 0x80;
/** Conditions that raise the receiver-line-status interrupt. */
export const LSR_ERROR_BITS = LSR_OE | LSR_PE | LSR_FE | LSR_BI;

// MSR: deltas in the low nibble, line states in the high nibble.
export const MSR_DCTS = 0x01;
export const MSR_DDSR = 0x02;
export const MSR_TERI = 0x04;
export const MSR_DDCD = 0x08;
export const MSR_CTS = 0x10;
export const MSR_DSR = 0x20;
export const MSR_RI = 0x40;
export const MSR_DCD = 0x80;
export const MSR_DELTA_BITS = 0x0f;

/** The input clock of a PC UART is 1.8432 MHz; divided by 16 that is the base baud rate. */
export const PC_UART_BASE_BAUD = 115200;
