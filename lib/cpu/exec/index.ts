/** Loads every exec module so their handlers are registered before the first instruction is bound. */
import './integer.js';
import './control.js';
import './system.js';
import './simd.js';
