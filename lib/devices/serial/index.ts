export { COM1, COM2, COM3, COM4, UART_PORT_COUNT, Uart16550, type Uart16550Options } from './uart16550.js';
export { UartStream, type UartStreamEndpoint } from './uart-stream.js';
export { PC_UART_BASE_BAUD } from './uart-registers.js';
