/**
 * The CPU's x87/MMX/SSE state is lib/cpu/simd's SimdState (helper H10): XMM registers, MXCSR and the x87 unit.
 */
export { SimdState as SimdUnit } from './simd/index.js';
