export { attachConsole, type ConsoleInput, type ConsoleOptions, type ConsoleUart } from './attach-console.js';
export { bindSerial, type BindSerialOptions, type SerialDestination } from './bind-serial.js';
export { CTRL_A, EscapeParser, escapeHelp, type ConsoleAction } from './escape-parser.js';
export { attachFileOutput, SerialFileError } from './file-output.js';
export { enterRawMode, type ProcessHooks, type TerminalInput } from './raw-mode.js';
