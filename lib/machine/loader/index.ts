/** Boot loaders: pure functions over GuestMemory, plus a file-reading layer. */
export { LoaderError } from './errors.js';
export { loadLinux, type LinuxBootInfo, type LinuxImageFormat, type LinuxLoadOptions } from './linux.js';
export {
  loadMultiboot, type MultibootBootInfo, type MultibootLoadOptions, type MultibootModule,
} from './multiboot.js';
export {
  detectKernelFormat, loadKernelFromFiles, loadLinuxFromFiles, readImageFile,
  type KernelBootInfo, type KernelFiles, type KernelFormat,
} from './files.js';
export { isBzImage, parseBzImage, type BzImageHeader } from './bzimage.js';
