/** Public surface of the block layer (disk image backends). */
export { BlockBackendError, type BlockBackend } from './backend.js';
export { RawBackend, type RawOpenOptions } from './raw.js';
export { Qcow2Backend, type Qcow2OpenOptions } from './qcow2/image.js';
export { createQcow2, type CreateQcow2Options } from './qcow2/create.js';
export { openBlockBackend, detectImageFormat, type ImageFormat, type OpenBlockOptions } from './open.js';
