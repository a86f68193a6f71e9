// x87, MMX, SSE, SSE2, SSE3, SSSE3 and SSE4.1 semantics for the TypeScript interpreter.
//
// This module has no decoder and no memory access: the decoder fetches operands, checks alignment / #UD / #NM,
// and calls the functions below. Everything is synchronous. The SSE/MMX paths allocate nothing and use no BigInt;
// x87 FADD/FSUB/FMUL/FDIV/FSQRT/FSCALE/FPREM use BigInt significands to be exact in 80-bit precision (~1-2 µs per
// instruction; see x87-exact.ts).
//
// ## Accuracy (all checked against the host CPU by test/cpu/simd/*-oracle.test.ts)
//   SSE..SSE4.1: bit-exact results and MXCSR flags in every rounding mode, DAZ/FTZ, masked and unmasked exceptions
//     (except RCPPS/RCPSS/RSQRTPS/RSQRTSS: vendor-specific approximations; ours are within the architectural
//     1.5 * 2^-12 relative error but not bit-identical to Intel or AMD).
//   x87: loads, stores, integer/BCD conversions, arithmetic, FSQRT, FSCALE, FPREM/FPREM1, FRNDINT, FXTRACT, compares,
//     constants and status words are bit-exact for all 80-bit inputs, precision and rounding controls.
//     F2XM1, FYL2X, FYL2XP1, FPTAN, FPATAN, FSIN, FCOS, FSINCOS use Math.* in binary64: within 2 ulp of a double of
//     the CPU's result, not its 64-bit value; their stack effects and IE/ZE/DE/SF/C2 reporting match.
//
// ## State
//   const st = new SimdState();      st.xmm (Uint32Array(64): XMMn dword j at [4n+j]), st.mxcsr, st.x87 (X87),
//                                    st.ires (Uint32Array(2): integer results for general registers).
//   MMn lives in st.x87.regs[4n], [4n+1] (the x87 significands); st.x87.regs[4n+2] is the sign/exponent.
//
// ## Calling conventions
//   sse.OP(st, d, s, so[, imm])  d = destination XMM number (also the first source); the second source is
//                                (s, so): (st.xmm, 4*reg) for a register, (scratch Uint32Array(4), 0) for memory
//                                (little-endian dwords; only the bytes the instruction reads need be valid).
//   mmx.OP(st, d, s, so[, imm])  d = destination MMX number; register source = (st.x87.regs, 4*reg).
//   Floating-point SSE ops return 0, or XM (-1) when an unmasked SIMD exception occurred: raise #XM (or #UD if
//   CR4.OSXMMEXCPT = 0); the destination is unchanged, MXCSR flags are set.
//   COMISS/UCOMISS/COMISD/UCOMISD and PTEST return EFLAGS bits (CF 0x01, PF 0x04, ZF 0x40); set those three and
//   clear OF, SF, AF (PTEST: clear OF, SF, AF, PF too). COMIS* may return XM instead.
//   Integer results for a general register (CVT*2SI, PEXTR*, MOVMSK*, PMOVMSKB, mmx.read64) go to st.ires[0..1].
//   x87: methods of st.x87 (class X87). Memory loads take the value (m32 bits; m64/m80 as lo, hi[, sexp]); stores
//   put the value in x87.out and return true when memory must be written (false: unmasked exception, no store).
//   Before every waiting x87 instruction, FWAIT and every MMX instruction: if st.x87.pendingFault() raise #MF.
//   After each non-control x87 instruction call st.x87.recordLast(fop, fip, fcs, fdp, fds).
//
// ## Mnemonic → call table
//   MNEMONIC_TABLE below (checked by test/cpu/simd/sse-known.test.ts: every entry resolves to a function). Mnemonics are
//   as `objdump -d -M intel` prints them; AT&T x87 memory forms add size suffixes (flds/fldl/fldt, fildl/fildll,
//   fistps/fistpl/fistpll, ...), which select the m32/m64/m80/m16 variant listed here.

export * from './state.js';
export { X87, X87_DONE, X87_FLAGS, X87_UD } from './x87.js';
export { sse, mmx } from './ops.js';
export { fnstenv, fldenv, fnsave, frstor, envSize, saveSize, type EnvFormat } from './x87-env.js';
export {
  fxsave,
  fxrstor,
  toKvmFpu,
  fromKvmFpu,
  encodeKvmFpu,
  decodeKvmFpu,
  FXSAVE_SIZE,
  KVM_FPU_SIZE,
  type FxsaveFormat,
  type KvmFpu,
} from './fxsave.js';

/**
 * CPUID feature bits whose instruction sets are completely implemented and tested here. CPUID must not report
 * anything else (no SSE4.2, AVX, FMA, F16C, POPCNT-as-SIMD, XSAVE...). `fpu` covers the x87 (with the precision
 * limits documented in x87.ts); `cmov` is listed because FCMOVcc/FCOMI exist only when CPUID reports both FPU and
 * CMOV (the integer CMOVcc is the decoder's responsibility).
 */
export const SIMD_FEATURES = Object.freeze({
  fpu: true,
  mmx: true,
  fxsr: true,
  sse: true,
  sse2: true,
  sse3: true,
  ssse3: true,
  sse41: true,
  sse42: false,
  avx: false,
  fma: false,
  f16c: false,
  xsave: false,
  // FCMOVcc / FCOMI / FUCOMI are implemented; the integer CMOVcc is the decoder's.
  fcmov: true,
});

/** [mnemonic, call, note]. `call` is a path into { sse, mmx, x87 (X87 methods), env, fx } as exported here. */
export const MNEMONIC_TABLE: ReadonlyArray<readonly [string, string, string]> = [
  // ---- x87 loads/stores ----
  ['fld m32', 'x87.fldM32', 'bits'],
  ['fld m64', 'x87.fldM64', 'lo, hi'],
  ['fld m80', 'x87.fldM80', 'lo, hi, sexp (u16 at +8)'],
  ['fld st(i)', 'x87.execReg', 'D9 C0+i'],
  ['fild m16', 'x87.fildI32', 'sign-extended value'],
  ['fild m32', 'x87.fildI32', 'value'],
  ['fild m64', 'x87.fildI64', 'lo, hi'],
  ['fst m32', 'x87.fstM32', 'pop=false; write out[0] if true'],
  ['fstp m32', 'x87.fstM32', 'pop=true'],
  ['fst m64', 'x87.fstM64', 'pop=false; write out[0..1]'],
  ['fstp m64', 'x87.fstM64', 'pop=true'],
  ['fstp m80', 'x87.fstpM80', 'write out[0..1] + u16 out[2]'],
  ['fst st(i)', 'x87.execReg', 'DD D0+i'],
  ['fstp st(i)', 'x87.execReg', 'DD D8+i'],
  ['fist m16', 'x87.fist', '(16, false); write u16 out[0]'],
  ['fist m32', 'x87.fist', '(32, false)'],
  ['fistp m16', 'x87.fist', '(16, true)'],
  ['fistp m32', 'x87.fist', '(32, true)'],
  ['fistp m64', 'x87.fist', '(64, true); write out[0..1]'],
  ['fisttp m16', 'x87.fist', '(16, true, true)'],
  ['fisttp m32', 'x87.fist', '(32, true, true)'],
  ['fisttp m64', 'x87.fist', '(64, true, true)'],
  ['fbld m80', 'x87.fbld', '(bytes, off) of the 10-byte packed BCD'],
  ['fbstp m80', 'x87.fbstp', 'write x87.bcd (10 bytes) if true'],
  ['fld1', 'x87.execReg', 'D9 E8'],
  ['fldl2t', 'x87.execReg', 'D9 E9'],
  ['fldl2e', 'x87.execReg', 'D9 EA'],
  ['fldpi', 'x87.execReg', 'D9 EB'],
  ['fldlg2', 'x87.execReg', 'D9 EC'],
  ['fldln2', 'x87.execReg', 'D9 ED'],
  ['fldz', 'x87.execReg', 'D9 EE'],
  // ---- x87 arithmetic ----
  ['fadd/fmul/fcom/fcomp/fsub/fsubr/fdiv/fdivr m32', 'x87.arithM32', 'D8 /reg: (reg, bits)'],
  ['fadd/fmul/fcom/fcomp/fsub/fsubr/fdiv/fdivr m64', 'x87.arithM64', 'DC /reg: (reg, lo, hi)'],
  ['fiadd/fimul/ficom/ficomp/fisub/fisubr/fidiv/fidivr m32', 'x87.arithInt', 'DA /reg: (reg, int32)'],
  ['fiadd/fimul/ficom/ficomp/fisub/fisubr/fidiv/fidivr m16', 'x87.arithInt', 'DE /reg: (reg, sign-extended int16)'],
  ['fadd/fmul/fcom/fcomp/fsub/fsubr/fdiv/fdivr st,st(i)', 'x87.execReg', 'D8 C0-FF'],
  ['fadd/fmul/fsub/fsubr/fdiv/fdivr st(i),st', 'x87.execReg', 'DC C0-FF (Intel operand order)'],
  ['faddp/fmulp/fsubp/fsubrp/fdivp/fdivrp st(i),st', 'x87.execReg', 'DE C0-FF'],
  ['fcompp', 'x87.execReg', 'DE D9'],
  ['fucom/fucomp st(i)', 'x87.execReg', 'DD E0+i / E8+i'],
  ['fucompp', 'x87.execReg', 'DA E9'],
  ['fcomi/fucomi st,st(i)', 'x87.execReg', 'DB F0+i / E8+i → X87_FLAGS'],
  ['fcomip/fucomip st,st(i)', 'x87.execReg', 'DF F0+i / E8+i → X87_FLAGS'],
  ['fcmovb/fcmove/fcmovbe/fcmovu', 'x87.execReg', 'DA C0-DF, pass EFLAGS'],
  ['fcmovnb/fcmovne/fcmovnbe/fcmovnu', 'x87.execReg', 'DB C0-DF, pass EFLAGS'],
  ['ftst', 'x87.execReg', 'D9 E4'],
  ['fxam', 'x87.execReg', 'D9 E5'],
  ['fxch st(i)', 'x87.execReg', 'D9 C8+i'],
  ['fchs', 'x87.execReg', 'D9 E0'],
  ['fabs', 'x87.execReg', 'D9 E1'],
  ['fsqrt', 'x87.execReg', 'D9 FA'],
  ['frndint', 'x87.execReg', 'D9 FC'],
  ['fscale', 'x87.execReg', 'D9 FD'],
  ['fprem', 'x87.execReg', 'D9 F8'],
  ['fprem1', 'x87.execReg', 'D9 F5'],
  ['fxtract', 'x87.execReg', 'D9 F4'],
  ['f2xm1', 'x87.execReg', 'D9 F0'],
  ['fyl2x', 'x87.execReg', 'D9 F1'],
  ['fyl2xp1', 'x87.execReg', 'D9 F9'],
  ['fptan', 'x87.execReg', 'D9 F2'],
  ['fpatan', 'x87.execReg', 'D9 F3'],
  ['fsin', 'x87.execReg', 'D9 FE'],
  ['fcos', 'x87.execReg', 'D9 FF'],
  ['fsincos', 'x87.execReg', 'D9 FB'],
  ['fnop', 'x87.execReg', 'D9 D0'],
  ['fdecstp', 'x87.execReg', 'D9 F6'],
  ['fincstp', 'x87.execReg', 'D9 F7'],
  ['ffree st(i)', 'x87.execReg', 'DD C0+i'],
  ['ffreep st(i)', 'x87.execReg', 'DF C0+i'],
  ['fnclex', 'x87.execReg', 'DB E2 (no-wait; FCLEX = FWAIT + this)'],
  ['fninit', 'x87.execReg', 'DB E3'],
  // ---- x87 control ----
  ['fldcw m16', 'x87.fldcw', 'value'],
  ['fnstcw m16', 'x87.fnstcw', 'returns u16'],
  ['fnstsw ax', 'x87.fnstsw', 'DF E0: AX = result'],
  ['fnstsw m16', 'x87.fnstsw', 'returns u16'],
  ['fnstenv m14/28', 'env.fnstenv', '(x87, bytes, off, {size32, protectedMode})'],
  ['fldenv m14/28', 'env.fldenv', 'same'],
  ['fnsave m94/108', 'env.fnsave', 'same'],
  ['frstor m94/108', 'env.frstor', 'same'],
  ['fxsave m512', 'fx.fxsave', '(st, bytes, off, {rexW, xmmCount})'],
  ['fxsave64 m512', 'fx.fxsave', 'rexW = true'],
  ['fxrstor m512', 'fx.fxrstor', 'returns false → #GP(0)'],
  ['fxrstor64 m512', 'fx.fxrstor', 'rexW = true'],
  ['ldmxcsr m32', 'fx.ldmxcsr', '(st, value): false → #GP(0)'],
  ['stmxcsr m32', 'fx.mxcsrValid', 'store st.mxcsr (no call needed)'],
  // ---- SSE/SSE2 floating point ----
  ...['add', 'sub', 'mul', 'div', 'min', 'max', 'sqrt'].flatMap((op) =>
    ['ps', 'ss', 'pd', 'sd'].map((t): [string, string, string] => [`${op}${t}`, `sse.${op}${t}`, 'returns 0 | XM'])),
  ['rcpps', 'sse.rcpps', 'approximation'],
  ['rcpss', 'sse.rcpss', 'approximation'],
  ['rsqrtps', 'sse.rsqrtps', 'approximation'],
  ['rsqrtss', 'sse.rsqrtss', 'approximation'],
  ['cmpps (cmpeqps, cmpltps, ...)', 'sse.cmpps', 'imm = predicate'],
  ['cmpss', 'sse.cmpss', 'imm'],
  ['cmppd', 'sse.cmppd', 'imm'],
  ['cmpsd (xmm)', 'sse.cmpsd', 'imm'],
  ['comiss', 'sse.comiss', 'returns EFLAGS | XM'],
  ['ucomiss', 'sse.ucomiss', 'returns EFLAGS | XM'],
  ['comisd', 'sse.comisd', 'returns EFLAGS | XM'],
  ['ucomisd', 'sse.ucomisd', 'returns EFLAGS | XM'],
  ['andps', 'sse.andps', ''], ['andpd', 'sse.andpd', ''], ['andnps', 'sse.andnps', ''], ['andnpd', 'sse.andnpd', ''],
  ['orps', 'sse.orps', ''], ['orpd', 'sse.orpd', ''], ['xorps', 'sse.xorps', ''], ['xorpd', 'sse.xorpd', ''],
  // ---- conversions ----
  ['cvtss2si', 'sse.cvtss2si', '(st, s, so, is64) → st.ires'],
  ['cvttss2si', 'sse.cvttss2si', '(st, s, so, is64) → st.ires'],
  ['cvtsd2si', 'sse.cvtsd2si', '(st, s, so, is64) → st.ires'],
  ['cvttsd2si', 'sse.cvttsd2si', '(st, s, so, is64) → st.ires'],
  ['cvtsi2ss', 'sse.cvtsi2ss', '(st, d, lo, hi, is64)'],
  ['cvtsi2sd', 'sse.cvtsi2sd', '(st, d, lo, hi, is64)'],
  ['cvtps2dq', 'sse.cvtps2dq', ''], ['cvttps2dq', 'sse.cvttps2dq', ''],
  ['cvtpd2dq', 'sse.cvtpd2dq', ''], ['cvttpd2dq', 'sse.cvttpd2dq', ''],
  ['cvtdq2ps', 'sse.cvtdq2ps', ''], ['cvtdq2pd', 'sse.cvtdq2pd', ''],
  ['cvtps2pd', 'sse.cvtps2pd', ''], ['cvtpd2ps', 'sse.cvtpd2ps', ''],
  ['cvtss2sd', 'sse.cvtss2sd', ''], ['cvtsd2ss', 'sse.cvtsd2ss', ''],
  ['cvtpi2ps', 'sse.cvtpi2ps', '(st, d, s, so, fromMmxReg)'],
  ['cvtpi2pd', 'sse.cvtpi2pd', '(st, d, s, so, fromMmxReg)'],
  ['cvtps2pi', 'mmx.cvtps2pi', 'd = MMX'], ['cvttps2pi', 'mmx.cvttps2pi', 'd = MMX'],
  ['cvtpd2pi', 'mmx.cvtpd2pi', 'd = MMX'], ['cvttpd2pi', 'mmx.cvttpd2pi', 'd = MMX'],
  // ---- moves ----
  ['movaps/movups/movapd/movupd/movdqa/movdqu/lddqu/movntdqa (load, reg)', 'sse.mov128', 'stores: caller copies'],
  ['movss xmm,xmm', 'sse.movssRR', ''],
  ['movss xmm,m32 / movd xmm,r/m32', 'sse.loadLow32', '(st, d, value)'],
  ['movsd xmm,xmm', 'sse.movsdRR', ''],
  ['movsd xmm,m64 / movq xmm,xmm/m64/r64 / movq2dq', 'sse.loadLow64', '(st, d, lo, hi)'],
  ['movlps/movlpd xmm,m64', 'sse.movlpLoad', ''],
  ['movhps/movhpd xmm,m64', 'sse.movhpLoad', ''],
  ['movhlps', 'sse.movhlps', ''], ['movlhps', 'sse.movlhps', ''],
  ['movsldup', 'sse.movsldup', ''], ['movshdup', 'sse.movshdup', ''], ['movddup', 'sse.movddup', ''],
  ['unpcklps', 'sse.unpcklps', ''], ['unpckhps', 'sse.unpckhps', ''],
  ['unpcklpd', 'sse.unpcklpd', ''], ['unpckhpd', 'sse.unpckhpd', ''],
  ['shufps', 'sse.shufps', 'imm'], ['shufpd', 'sse.shufpd', 'imm'],
  ['pshufd', 'sse.pshufd', 'imm'], ['pshuflw', 'sse.pshuflw', 'imm'], ['pshufhw', 'sse.pshufhw', 'imm'],
  ['pshufw', 'mmx.pshufw', 'imm'],
  ['movmskps', 'sse.movmskps', '(st, s, so) → st.ires[0]'],
  ['movmskpd', 'sse.movmskpd', '(st, s, so) → st.ires[0]'],
  ['pmovmskb r,xmm', 'sse.pmovmskb', '→ st.ires[0]'],
  ['pmovmskb r,mm', 'mmx.pmovmskb', '→ st.ires[0]'],
  ['maskmovdqu', 'sse.maskmovdqu', '(mask s, so) → byte-enable bits; store data bytes to [rDI]'],
  ['maskmovq', 'mmx.maskmovq', '(st, mask s, so) → byte-enable bits'],
  ['pextrw r,xmm,imm', 'sse.pextrw', '→ st.ires[0]'],
  ['pextrw r,mm,imm', 'mmx.pextrw', '→ st.ires[0]'],
  ['pinsrw xmm,r/m16,imm', 'sse.pinsrw', '(st, d, value, imm)'],
  ['pinsrw mm,r/m16,imm', 'mmx.pinsrw', '(st, d, value, imm)'],
  ['movd/movq mm,r/m / movq mm,mm/m64 / movdq2q', 'mmx.load64', '(st, d, lo, hi)'],
  ['movd/movq r/m,mm / movq m64,mm / movq2dq source', 'mmx.read64', '(st, s) → st.ires'],
  ['emms', 'mmx.emms', ''],
  // ---- SSE3 / SSSE3 / SSE4.1 ----
  ['addsubps', 'sse.addsubps', ''], ['addsubpd', 'sse.addsubpd', ''],
  ['haddps', 'sse.haddps', ''], ['haddpd', 'sse.haddpd', ''], ['hsubps', 'sse.hsubps', ''], ['hsubpd', 'sse.hsubpd', ''],
  ['palignr xmm', 'sse.palignr', 'imm'], ['palignr mm', 'mmx.palignr', 'imm'],
  ['roundps', 'sse.roundps', 'imm'], ['roundpd', 'sse.roundpd', 'imm'],
  ['roundss', 'sse.roundss', 'imm'], ['roundsd', 'sse.roundsd', 'imm'],
  ['dpps', 'sse.dpps', 'imm'], ['dppd', 'sse.dppd', 'imm'], ['mpsadbw', 'sse.mpsadbw', 'imm'],
  ['phminposuw', 'sse.phminposuw', ''],
  ['blendps', 'sse.blendps', 'imm'], ['blendpd', 'sse.blendpd', 'imm'], ['pblendw', 'sse.pblendw', 'imm'],
  ['blendvps', 'sse.blendvps', 'mask XMM0'], ['blendvpd', 'sse.blendvpd', 'mask XMM0'],
  ['pblendvb', 'sse.pblendvb', 'mask XMM0'],
  ['ptest', 'sse.ptest', 'returns ZF|CF'],
  ['pextrb', 'sse.pextrb', '→ st.ires[0]'], ['pextrd', 'sse.pextrd', '→ st.ires[0]'],
  ['pextrq', 'sse.pextrq', '→ st.ires[0..1]'], ['extractps', 'sse.extractps', '→ st.ires[0]'],
  ['pinsrb', 'sse.pinsrb', '(st, d, value, imm)'], ['pinsrd', 'sse.pinsrd', '(st, d, value, imm)'],
  ['pinsrq', 'sse.pinsrq', '(st, d, lo, hi, imm)'], ['insertps', 'sse.insertps', '(st, d, s, so, imm, memSource)'],
  ...['bw', 'bd', 'bq', 'wd', 'wq', 'dq'].flatMap((k): Array<[string, string, string]> => [
    [`pmovsx${k}`, `sse.pmovsx${k}`, ''],
    [`pmovzx${k}`, `sse.pmovzx${k}`, ''],
  ]),
  // ---- integer SIMD (both mmx.* for MMX destinations and sse.* for XMM destinations) ----
  ...[
    'paddb', 'paddw', 'paddd', 'paddq', 'psubb', 'psubw', 'psubd', 'psubq', 'paddsb', 'paddsw', 'paddusb', 'paddusw',
    'psubsb', 'psubsw', 'psubusb', 'psubusw', 'pmullw', 'pmulhw', 'pmulhuw', 'pmuludq', 'pmaddwd', 'pavgb', 'pavgw',
    'pminub', 'pmaxub', 'pminsw', 'pmaxsw', 'psadbw', 'pcmpeqb', 'pcmpeqw', 'pcmpeqd', 'pcmpgtb', 'pcmpgtw', 'pcmpgtd',
    'pand', 'pandn', 'por', 'pxor', 'punpcklbw', 'punpcklwd', 'punpckldq', 'punpckhbw', 'punpckhwd', 'punpckhdq',
    'packsswb', 'packssdw', 'packuswb', 'pshufb', 'pabsb', 'pabsw', 'pabsd', 'phaddw', 'phaddd', 'phaddsw', 'phsubw',
    'phsubd', 'phsubsw', 'pmaddubsw', 'pmulhrsw', 'psignb', 'psignw', 'psignd',
    'psllw', 'pslld', 'psllq', 'psrlw', 'psrld', 'psrlq', 'psraw', 'psrad',
  ].flatMap((m): Array<[string, string, string]> => [
    [`${m} xmm`, `sse.${m}`, ''],
    [`${m} mm`, `mmx.${m}`, ''],
  ]),
  ...['psllw', 'pslld', 'psllq', 'psrlw', 'psrld', 'psrlq', 'psraw', 'psrad'].flatMap(
    (m): Array<[string, string, string]> => [
      [`${m} xmm,imm`, `sse.${m}Imm`, '(st, d, imm)'],
      [`${m} mm,imm`, `mmx.${m}Imm`, '(st, d, imm)'],
    ]),
  ['pslldq', 'sse.pslldq', '(st, d, imm)'], ['psrldq', 'sse.psrldq', '(st, d, imm)'],
  ['punpcklqdq', 'sse.punpcklqdq', ''], ['punpckhqdq', 'sse.punpckhqdq', ''],
  ...['pminsb', 'pmaxsb', 'pminuw', 'pmaxuw', 'pminsd', 'pmaxsd', 'pminud', 'pmaxud', 'pmulld', 'pmuldq', 'pcmpeqq',
    'packusdw'].map((m): [string, string, string] => [m, `sse.${m}`, 'SSE4.1']),
];

/** Every mnemonic (lower case, without operands) covered by MNEMONIC_TABLE. */
export const MNEMONICS: readonly string[] = Array.from(
  new Set(MNEMONIC_TABLE.flatMap(([m]) => m.split(' ')[0]!.split('/'))),
).sort();
