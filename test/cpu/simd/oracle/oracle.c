/* Ground-truth oracle for test/cpu/simd: executes single SSE/x87 instructions on the host CPU.
 * stdin lines:  <op> <ctl> <a0> <a1> <a2> <a3> <b0> <b1> <b2> <b3>   (hex; ctl = MXCSR for SSE ops, FCW for x87)
 * stdout lines: <r0> <r1> <r2> <r3> <status> <aux> <fault>
 *   SSE: r = xmm0 after (unchanged on #XM), status = MXCSR after, aux = EFLAGS (comis/ptest) or integer result
 *        (lo in aux, hi in r… see per-op), fault = 1 when the instruction raised #XM (SIGFPE).
 *   x87: r = ST0 after as 80-bit (lo, hi, sexp), status = FSW, aux = EFLAGS or stored integer/float bits. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

typedef void (*opfn)(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux);

static sigjmp_buf jb;
static volatile uint32_t fault_mxcsr;

static void onfpe(int sig, siginfo_t *si, void *ucv) {
  (void)sig; (void)si;
  ucontext_t *uc = (ucontext_t *)ucv;
  fault_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
  siglongjmp(jb, 1);
}

#define LOAD "movdqu (%[a]), %%xmm0\n movdqu (%[b]), %%xmm1\n ldmxcsr (%[c])\n"
#define SAVE "stmxcsr (%[c])\n movdqu %%xmm0, (%[a])\n"
#define ARGS : : [a] "r"(a), [b] "r"(b), [c] "r"(ctl), [x] "r"(aux) : "xmm0", "xmm1", "rax", "memory", "cc"

#define SSE2OP(name, insn) \
  static void f_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    asm volatile(LOAD insn " %%xmm1, %%xmm0\n" SAVE ARGS); }
#define SSEIMM(name, insn, imm) \
  static void f_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    asm volatile(LOAD insn " $" #imm ", %%xmm1, %%xmm0\n" SAVE ARGS); }
#define SSEFLAGS(name, insn) \
  static void f_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    asm volatile(LOAD insn " %%xmm1, %%xmm0\n pushfq\n popq (%[x])\n" SAVE ARGS); }
#define SSE2GPR(name, insn, reg) \
  static void f_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    asm volatile(LOAD "xor %%eax, %%eax\n" insn " %%xmm1, %%" reg "\n movq %%rax, (%[x])\n" SAVE ARGS); }
#define GPR2SSE(name, insn, reg) \
  static void f_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    asm volatile(LOAD "movq (%[b]), %%rax\n" insn " %%" reg ", %%xmm0\n" SAVE ARGS); }
#define EXTR(name, insn, imm, reg) \
  static void f_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    asm volatile(LOAD "xor %%eax, %%eax\n" insn " $" #imm ", %%xmm1, %%" reg "\n movq %%rax, (%[x])\n" SAVE ARGS); }

#define FP4(op) SSE2OP(op##ps, #op "ps") SSE2OP(op##ss, #op "ss") SSE2OP(op##pd, #op "pd") SSE2OP(op##sd, #op "sd")
FP4(add) FP4(sub) FP4(mul) FP4(div) FP4(min) FP4(max) FP4(sqrt)
#define CMP8(t) SSEIMM(cmp##t##0, "cmp" #t, 0) SSEIMM(cmp##t##1, "cmp" #t, 1) SSEIMM(cmp##t##2, "cmp" #t, 2) \
  SSEIMM(cmp##t##3, "cmp" #t, 3) SSEIMM(cmp##t##4, "cmp" #t, 4) SSEIMM(cmp##t##5, "cmp" #t, 5) \
  SSEIMM(cmp##t##6, "cmp" #t, 6) SSEIMM(cmp##t##7, "cmp" #t, 7)
CMP8(ps) CMP8(ss) CMP8(pd) CMP8(sd)
SSE2OP(addsubps, "addsubps") SSE2OP(addsubpd, "addsubpd") SSE2OP(haddps, "haddps") SSE2OP(haddpd, "haddpd")
SSE2OP(hsubps, "hsubps") SSE2OP(hsubpd, "hsubpd")
SSE2OP(cvtps2dq, "cvtps2dq") SSE2OP(cvttps2dq, "cvttps2dq") SSE2OP(cvtpd2dq, "cvtpd2dq") SSE2OP(cvttpd2dq, "cvttpd2dq")
SSE2OP(cvtdq2ps, "cvtdq2ps") SSE2OP(cvtdq2pd, "cvtdq2pd") SSE2OP(cvtps2pd, "cvtps2pd") SSE2OP(cvtpd2ps, "cvtpd2ps")
SSE2OP(cvtss2sd, "cvtss2sd") SSE2OP(cvtsd2ss, "cvtsd2ss")
#define RND(t) SSEIMM(round##t##0, "round" #t, 0) SSEIMM(round##t##1, "round" #t, 1) SSEIMM(round##t##2, "round" #t, 2) \
  SSEIMM(round##t##3, "round" #t, 3) SSEIMM(round##t##4, "round" #t, 4) SSEIMM(round##t##8, "round" #t, 8) \
  SSEIMM(round##t##12, "round" #t, 12)
RND(ps) RND(pd) RND(ss) RND(sd)
SSEIMM(dpps255, "dpps", 0xff) SSEIMM(dpps49, "dpps", 0x31) SSEIMM(dppd51, "dppd", 0x33) SSEIMM(dppd49, "dppd", 0x31)
SSEFLAGS(comiss, "comiss") SSEFLAGS(ucomiss, "ucomiss") SSEFLAGS(comisd, "comisd") SSEFLAGS(ucomisd, "ucomisd")
SSEFLAGS(ptest, "ptest")
SSE2GPR(cvtss2si32, "cvtss2si", "eax") SSE2GPR(cvtss2si64, "cvtss2si", "rax")
SSE2GPR(cvttss2si32, "cvttss2si", "eax") SSE2GPR(cvttss2si64, "cvttss2si", "rax")
SSE2GPR(cvtsd2si32, "cvtsd2si", "eax") SSE2GPR(cvtsd2si64, "cvtsd2si", "rax")
SSE2GPR(cvttsd2si32, "cvttsd2si", "eax") SSE2GPR(cvttsd2si64, "cvttsd2si", "rax")
SSE2GPR(movmskps, "movmskps", "eax") SSE2GPR(movmskpd, "movmskpd", "eax") SSE2GPR(pmovmskb, "pmovmskb", "eax")
GPR2SSE(cvtsi2ss32, "cvtsi2ssl", "eax") GPR2SSE(cvtsi2ss64, "cvtsi2ssq", "rax")
GPR2SSE(cvtsi2sd32, "cvtsi2sdl", "eax") GPR2SSE(cvtsi2sd64, "cvtsi2sdq", "rax")
/* integer */
#define I1(n) SSE2OP(n, #n)
I1(paddb) I1(paddw) I1(paddd) I1(paddq) I1(psubb) I1(psubw) I1(psubd) I1(psubq) I1(paddsb) I1(paddsw) I1(paddusb)
I1(paddusw) I1(psubsb) I1(psubsw) I1(psubusb) I1(psubusw) I1(pmullw) I1(pmulhw) I1(pmulhuw) I1(pmuludq) I1(pmaddwd)
I1(pavgb) I1(pavgw) I1(pminub) I1(pmaxub) I1(pminsw) I1(pmaxsw) I1(psadbw) I1(pcmpeqb) I1(pcmpeqw) I1(pcmpeqd)
I1(pcmpgtb) I1(pcmpgtw) I1(pcmpgtd) I1(pand) I1(pandn) I1(por) I1(pxor) I1(punpcklbw) I1(punpcklwd) I1(punpckldq)
I1(punpckhbw) I1(punpckhwd) I1(punpckhdq) I1(punpcklqdq) I1(punpckhqdq) I1(packsswb) I1(packssdw) I1(packuswb)
I1(pshufb) I1(pabsb) I1(pabsw) I1(pabsd) I1(phaddw) I1(phaddd) I1(phaddsw) I1(phsubw) I1(phsubd) I1(phsubsw)
I1(pmaddubsw) I1(pmulhrsw) I1(psignb) I1(psignw) I1(psignd) I1(pminsb) I1(pmaxsb) I1(pminuw) I1(pmaxuw) I1(pminsd)
I1(pmaxsd) I1(pminud) I1(pmaxud) I1(pmulld) I1(pmuldq) I1(pcmpeqq) I1(packusdw) I1(phminposuw)
I1(psllw) I1(pslld) I1(psllq) I1(psrlw) I1(psrld) I1(psrlq) I1(psraw) I1(psrad)
I1(andps) I1(andnps) I1(orps) I1(xorps) I1(unpcklps) I1(unpckhps) I1(unpcklpd) I1(unpckhpd)
I1(movsldup) I1(movshdup) I1(movddup) I1(movhlps) I1(movlhps)
I1(pmovsxbw) I1(pmovsxbd) I1(pmovsxbq) I1(pmovsxwd) I1(pmovsxwq) I1(pmovsxdq)
I1(pmovzxbw) I1(pmovzxbd) I1(pmovzxbq) I1(pmovzxwd) I1(pmovzxwq) I1(pmovzxdq)
SSEIMM(palignr3, "palignr", 3) SSEIMM(palignr8, "palignr", 8) SSEIMM(palignr17, "palignr", 17)
SSEIMM(pshufd27, "pshufd", 0x1b) SSEIMM(pshuflw27, "pshuflw", 0x1b) SSEIMM(pshufhw177, "pshufhw", 0xb1)
SSEIMM(shufps78, "shufps", 0x4e) SSEIMM(shufps27, "shufps", 0x1b) SSEIMM(shufpd1, "shufpd", 1) SSEIMM(shufpd2, "shufpd", 2)
SSEIMM(pblendw165, "pblendw", 0xa5) SSEIMM(blendps5, "blendps", 5) SSEIMM(blendpd2, "blendpd", 2)
SSEIMM(mpsadbw0, "mpsadbw", 0) SSEIMM(mpsadbw5, "mpsadbw", 5) SSEIMM(insertps29, "insertps", 0x1d)
SSEIMM(insertps96, "insertps", 0x60) SSEIMM(insertps178, "insertps", 0xb2)
EXTR(pextrb5, "pextrb", 5, "eax") EXTR(pextrw3, "pextrw", 3, "eax") EXTR(pextrd2, "pextrd", 2, "eax")
EXTR(pextrq1, "pextrq", 1, "rax") EXTR(extractps3, "extractps", 3, "eax")
#define SHI(n, imm) static void f_##n##imm(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    asm volatile(LOAD #n " $" #imm ", %%xmm0\n" SAVE ARGS); }
SHI(psllw, 3) SHI(psllw, 16) SHI(pslld, 7) SHI(pslld, 40) SHI(psllq, 33) SHI(psrlw, 5) SHI(psrld, 31) SHI(psrlq, 1)
SHI(psraw, 9) SHI(psraw, 200) SHI(psrad, 31) SHI(psrad, 32) SHI(pslldq, 5) SHI(psrldq, 9) SHI(pslldq, 16)

/* ---- x87: ST1 = b, ST0 = a, ctl = FCW; r = ST0 after (10 bytes), status = FSW ---- */
#define XARGS : : [a] "r"(a), [b] "r"(b), [c] "r"(ctl), [x] "r"(aux), [sw] "r"(&sw) : "rax", "memory", "cc", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"
#define XPRE "fninit\n fldcw (%[c])\n fldt (%[b])\n fldt (%[a])\n"
/* FNCLEX before the (waiting) FSTP so a pending unmasked exception does not raise #MF here. */
#define XPOST "fnstsw (%[sw])\n fnclex\n fstpt (%[a])\n fninit\n"
#define X87OP(name, insn) static void f_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    uint16_t sw; asm volatile(XPRE insn "\n" XPOST XARGS); ctl[0] = sw; }
#define X87STORE(name, insn) static void f_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    uint16_t sw; asm volatile(XPRE insn " (%[x])\n" XPOST XARGS); ctl[0] = sw; }
#define X87FLAGS(name, insn) static void f_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    uint16_t sw; asm volatile(XPRE insn "\n pushfq\n popq (%[x])\n" XPOST XARGS); ctl[0] = sw; }
X87OP(fadd, "fadd %%st(1), %%st") X87OP(fsub, "fsub %%st(1), %%st") X87OP(fsubr, "fsubr %%st(1), %%st")
X87OP(fmul, "fmul %%st(1), %%st") X87OP(fdiv, "fdiv %%st(1), %%st") X87OP(fdivr, "fdivr %%st(1), %%st")
X87OP(fsqrt, "fsqrt") X87OP(frndint, "frndint") X87OP(fscale, "fscale") X87OP(fprem, "fprem") X87OP(fprem1, "fprem1")
X87OP(fcom, "fcom %%st(1)") X87OP(fucom, "fucom %%st(1)") X87OP(fxam, "fxam") X87OP(ftst, "ftst")
X87OP(fchs, "fchs") X87OP(fabs, "fabs") X87OP(fxtract, "fxtract")
X87OP(fsin, "fsin") X87OP(fcos, "fcos") X87OP(fptan, "fptan") X87OP(fpatan, "fpatan") X87OP(f2xm1, "f2xm1")
X87OP(fyl2x, "fyl2x") X87OP(fyl2xp1, "fyl2xp1") X87OP(fsincos, "fsincos")
X87OP(fldpi, "fldpi") X87OP(fldl2e, "fldl2e") X87OP(fldl2t, "fldl2t") X87OP(fldlg2, "fldlg2") X87OP(fldln2, "fldln2")
X87FLAGS(fcomi, "fcomi %%st(1), %%st") X87FLAGS(fucomi, "fucomi %%st(1), %%st")
X87STORE(fist16, "fists") X87STORE(fist32, "fistl") X87STORE(fistp64, "fistpll")
X87STORE(fisttp16, "fisttps") X87STORE(fisttp32, "fisttpl") X87STORE(fisttp64, "fisttpll")
X87STORE(fst32, "fsts") X87STORE(fst64, "fstl")
/* memory-operand forms: the operand is b's first bytes (b is also loaded as ST1, harmlessly) */
#define X87MEM(name, insn) static void f_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    uint16_t sw; asm volatile(XPRE insn " (%[b])\n" XPOST XARGS); ctl[0] = sw; }
X87MEM(faddm64, "faddl") X87MEM(fdivrm32, "fdivrs") X87MEM(fisubrm16, "fisubrs") X87MEM(fimulm32, "fimull")
X87MEM(fcompm64, "fcompl") X87MEM(fldm32, "flds") X87MEM(fldm64, "fldl") X87MEM(fidivm32, "fidivl")


/* ---- MMX: mm0 = a (64 bits), mm1 = b; r = mm0 after ---- */
#define MMLOAD "movq (%[a]), %%mm0\n movq (%[b]), %%mm1\n"
#define MMSAVE "movq %%mm0, (%[a])\n emms\n"
#define MMARGS : : [a] "r"(a), [b] "r"(b), [c] "r"(ctl), [x] "r"(aux) : "mm0", "mm1", "rax", "memory", "cc"
#define MM2(name, insn) static void f_mm_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    asm volatile(MMLOAD insn " %%mm1, %%mm0\n" MMSAVE MMARGS); }
#define MMIMM(name, insn, imm) static void f_mm_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    asm volatile(MMLOAD insn " $" #imm ", %%mm1, %%mm0\n" MMSAVE MMARGS); }
#define MMSHI(name, insn, imm) static void f_mm_##name(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) { \
    asm volatile(MMLOAD insn " $" #imm ", %%mm0\n" MMSAVE MMARGS); }
MM2(paddb, "paddb") MM2(paddw, "paddw") MM2(paddd, "paddd") MM2(paddq, "paddq") MM2(psubb, "psubb") MM2(psubw, "psubw") MM2(psubd, "psubd") MM2(psubq, "psubq") MM2(paddsb, "paddsb") MM2(paddsw, "paddsw") MM2(paddusb, "paddusb") MM2(paddusw, "paddusw") MM2(psubsb, "psubsb") MM2(psubsw, "psubsw") MM2(psubusb, "psubusb") MM2(psubusw, "psubusw") MM2(pmullw, "pmullw") MM2(pmulhw, "pmulhw") MM2(pmulhuw, "pmulhuw") MM2(pmuludq, "pmuludq") MM2(pmaddwd, "pmaddwd") MM2(pavgb, "pavgb") MM2(pavgw, "pavgw") MM2(pminub, "pminub") MM2(pmaxub, "pmaxub") MM2(pminsw, "pminsw") MM2(pmaxsw, "pmaxsw") MM2(psadbw, "psadbw") MM2(pcmpeqb, "pcmpeqb") MM2(pcmpeqw, "pcmpeqw") MM2(pcmpeqd, "pcmpeqd") MM2(pcmpgtb, "pcmpgtb") MM2(pcmpgtw, "pcmpgtw") MM2(pcmpgtd, "pcmpgtd") MM2(pand, "pand") MM2(pandn, "pandn") MM2(por, "por") MM2(pxor, "pxor") MM2(punpcklbw, "punpcklbw") MM2(punpcklwd, "punpcklwd") MM2(punpckldq, "punpckldq") MM2(punpckhbw, "punpckhbw") MM2(punpckhwd, "punpckhwd") MM2(punpckhdq, "punpckhdq") MM2(packsswb, "packsswb") MM2(packssdw, "packssdw") MM2(packuswb, "packuswb") MM2(pshufb, "pshufb") MM2(pabsb, "pabsb") MM2(pabsw, "pabsw") MM2(pabsd, "pabsd") MM2(phaddw, "phaddw") MM2(phaddd, "phaddd") MM2(phaddsw, "phaddsw") MM2(phsubw, "phsubw") MM2(phsubd, "phsubd") MM2(phsubsw, "phsubsw") MM2(pmaddubsw, "pmaddubsw") MM2(pmulhrsw, "pmulhrsw") MM2(psignb, "psignb") MM2(psignw, "psignw") MM2(psignd, "psignd") MM2(psllw, "psllw") MM2(pslld, "pslld") MM2(psllq, "psllq") MM2(psrlw, "psrlw") MM2(psrld, "psrld") MM2(psrlq, "psrlq") MM2(psraw, "psraw") MM2(psrad, "psrad")
MMIMM(palignr3, "palignr", 3) MMIMM(palignr11, "palignr", 11) MMIMM(pshufw27, "pshufw", 0x1b) MMIMM(pshufw114, "pshufw", 0x72)
MMSHI(psllw3, "psllw", 3) MMSHI(psrad33, "psrad", 33) MMSHI(psrlq7, "psrlq", 7)

/* FNSTENV after "fadd %st(1), %st": r = bytes 0-15 (FCW, FSW, FTW, FIP dwords), status = FCS|FOP dword,
 * aux = FXSAVE bytes 0-7 (FCW, FSW, abridged FTW, FOP) taken right after. */
static void f_fnstenv(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) {
  uint32_t env[7];
  static uint8_t fx[512] __attribute__((aligned(16)));
  asm volatile(XPRE "fadd %%st(1), %%st\n fnstenv (%[e])\n fldenv (%[e])\n fxsave (%[f])\n fninit\n"
               : : [a] "r"(a), [b] "r"(b), [c] "r"(ctl), [e] "r"(env), [f] "r"(fx)
               : "memory", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
  for (int i = 0; i < 4; i++) a[i] = env[i];
  ctl[0] = env[4];
  memcpy(aux, fx, 8);
}
/* FBSTP: r = the 10 stored bytes (+ padding), status = FSW after. FBLD: b holds the BCD bytes; r = ST0. */
static void f_fbstp(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) {
  uint16_t sw;
  static uint8_t out[16];
  memset(out, 0, sizeof out);
  asm volatile(XPRE "fbstp (%[o])\n fnstsw (%[sw])\n fnclex\n fninit\n"
               : : [a] "r"(a), [b] "r"(b), [c] "r"(ctl), [o] "r"(out), [sw] "r"(&sw)
               : "memory", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
  memcpy(a, out, 16);
  ctl[0] = sw;
  (void)aux;
}
static void f_fbld(uint32_t *a, uint32_t *b, uint32_t *ctl, uint64_t *aux) {
  uint16_t sw;
  asm volatile("fninit\n fldcw (%[c])\n fbld (%[b])\n" XPOST
               : : [a] "r"(a), [b] "r"(b), [c] "r"(ctl), [sw] "r"(&sw)
               : "memory", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
  ctl[0] = sw;
  (void)aux;
}
#define E(n) {#n, f_##n}
#define EM(n) {"mm_" #n, f_mm_##n}
static const struct { const char *name; opfn fn; } ops[] = {
#define EFP4(op) E(op##ps), E(op##ss), E(op##pd), E(op##sd)
  EFP4(add), EFP4(sub), EFP4(mul), EFP4(div), EFP4(min), EFP4(max), EFP4(sqrt),
#define ECMP8(t) E(cmp##t##0), E(cmp##t##1), E(cmp##t##2), E(cmp##t##3), E(cmp##t##4), E(cmp##t##5), E(cmp##t##6), E(cmp##t##7)
  ECMP8(ps), ECMP8(ss), ECMP8(pd), ECMP8(sd),
  E(addsubps), E(addsubpd), E(haddps), E(haddpd), E(hsubps), E(hsubpd),
  E(cvtps2dq), E(cvttps2dq), E(cvtpd2dq), E(cvttpd2dq), E(cvtdq2ps), E(cvtdq2pd), E(cvtps2pd), E(cvtpd2ps),
  E(cvtss2sd), E(cvtsd2ss),
#define ERND(t) E(round##t##0), E(round##t##1), E(round##t##2), E(round##t##3), E(round##t##4), E(round##t##8), E(round##t##12)
  ERND(ps), ERND(pd), ERND(ss), ERND(sd),
  E(dpps255), E(dpps49), E(dppd51), E(dppd49),
  E(comiss), E(ucomiss), E(comisd), E(ucomisd), E(ptest),
  E(cvtss2si32), E(cvtss2si64), E(cvttss2si32), E(cvttss2si64), E(cvtsd2si32), E(cvtsd2si64), E(cvttsd2si32),
  E(cvttsd2si64), E(movmskps), E(movmskpd), E(pmovmskb),
  E(cvtsi2ss32), E(cvtsi2ss64), E(cvtsi2sd32), E(cvtsi2sd64),
  E(paddb), E(paddw), E(paddd), E(paddq), E(psubb), E(psubw), E(psubd), E(psubq), E(paddsb), E(paddsw), E(paddusb),
  E(paddusw), E(psubsb), E(psubsw), E(psubusb), E(psubusw), E(pmullw), E(pmulhw), E(pmulhuw), E(pmuludq), E(pmaddwd),
  E(pavgb), E(pavgw), E(pminub), E(pmaxub), E(pminsw), E(pmaxsw), E(psadbw), E(pcmpeqb), E(pcmpeqw), E(pcmpeqd),
  E(pcmpgtb), E(pcmpgtw), E(pcmpgtd), E(pand), E(pandn), E(por), E(pxor), E(punpcklbw), E(punpcklwd), E(punpckldq),
  E(punpckhbw), E(punpckhwd), E(punpckhdq), E(punpcklqdq), E(punpckhqdq), E(packsswb), E(packssdw), E(packuswb),
  E(pshufb), E(pabsb), E(pabsw), E(pabsd), E(phaddw), E(phaddd), E(phaddsw), E(phsubw), E(phsubd), E(phsubsw),
  E(pmaddubsw), E(pmulhrsw), E(psignb), E(psignw), E(psignd), E(pminsb), E(pmaxsb), E(pminuw), E(pmaxuw), E(pminsd),
  E(pmaxsd), E(pminud), E(pmaxud), E(pmulld), E(pmuldq), E(pcmpeqq), E(packusdw), E(phminposuw),
  E(psllw), E(pslld), E(psllq), E(psrlw), E(psrld), E(psrlq), E(psraw), E(psrad),
  E(andps), E(andnps), E(orps), E(xorps), E(unpcklps), E(unpckhps), E(unpcklpd), E(unpckhpd),
  E(movsldup), E(movshdup), E(movddup), E(movhlps), E(movlhps),
  E(pmovsxbw), E(pmovsxbd), E(pmovsxbq), E(pmovsxwd), E(pmovsxwq), E(pmovsxdq),
  E(pmovzxbw), E(pmovzxbd), E(pmovzxbq), E(pmovzxwd), E(pmovzxwq), E(pmovzxdq),
  E(palignr3), E(palignr8), E(palignr17), E(pshufd27), E(pshuflw27), E(pshufhw177), E(shufps78), E(shufps27),
  E(shufpd1), E(shufpd2), E(pblendw165), E(blendps5), E(blendpd2), E(mpsadbw0), E(mpsadbw5), E(insertps29),
  E(insertps96), E(insertps178), E(pextrb5), E(pextrw3), E(pextrd2), E(pextrq1), E(extractps3),
  E(psllw3), E(psllw16), E(pslld7), E(pslld40), E(psllq33), E(psrlw5), E(psrld31), E(psrlq1), E(psraw9), E(psraw200),
  E(psrad31), E(psrad32), E(pslldq5), E(psrldq9), E(pslldq16),
  E(fadd), E(fsub), E(fsubr), E(fmul), E(fdiv), E(fdivr), E(fsqrt), E(frndint), E(fscale), E(fprem), E(fprem1),
  E(fcom), E(fucom), E(fxam), E(ftst), E(fchs), E(fabs), E(fxtract), E(fsin), E(fcos), E(fptan), E(fpatan), E(f2xm1), E(fyl2x), E(fyl2xp1), E(fsincos), E(fldpi), E(fldl2e), E(fldl2t), E(fldlg2),
  E(fldln2), E(fcomi), E(fucomi), E(fist16), E(fist32), E(fistp64), E(fisttp16), E(fisttp32), E(fisttp64),
  E(fst32), E(fst64), E(fnstenv), E(faddm64), E(fdivrm32), E(fisubrm16), E(fimulm32), E(fcompm64),
  E(fldm32), E(fldm64), E(fidivm32), E(fbstp), E(fbld),
  EM(paddb), EM(paddw), EM(paddd), EM(paddq), EM(psubb), EM(psubw), EM(psubd), EM(psubq), EM(paddsb), EM(paddsw), EM(paddusb), EM(paddusw), EM(psubsb), EM(psubsw), EM(psubusb), EM(psubusw), EM(pmullw), EM(pmulhw), EM(pmulhuw), EM(pmuludq), EM(pmaddwd), EM(pavgb), EM(pavgw), EM(pminub), EM(pmaxub), EM(pminsw), EM(pmaxsw), EM(psadbw), EM(pcmpeqb), EM(pcmpeqw), EM(pcmpeqd), EM(pcmpgtb), EM(pcmpgtw), EM(pcmpgtd), EM(pand), EM(pandn), EM(por), EM(pxor), EM(punpcklbw), EM(punpcklwd), EM(punpckldq), EM(punpckhbw), EM(punpckhwd), EM(punpckhdq), EM(packsswb), EM(packssdw), EM(packuswb), EM(pshufb), EM(pabsb), EM(pabsw), EM(pabsd), EM(phaddw), EM(phaddd), EM(phaddsw), EM(phsubw), EM(phsubd), EM(phsubsw), EM(pmaddubsw), EM(pmulhrsw), EM(psignb), EM(psignw), EM(psignd), EM(psllw), EM(pslld), EM(psllq), EM(psrlw), EM(psrld), EM(psrlq), EM(psraw), EM(psrad), EM(palignr3), EM(palignr11), EM(pshufw27), EM(pshufw114), EM(psllw3), EM(psrad33), EM(psrlq7),
};

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = onfpe;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGFPE, &sa, NULL);
  char name[64];
  unsigned ctlIn, av[4], bv[4];
  while (scanf("%63s %x %x %x %x %x %x %x %x %x", name, &ctlIn, &av[0], &av[1], &av[2], &av[3], &bv[0], &bv[1],
               &bv[2], &bv[3]) == 10) {
    opfn fn = NULL;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
      if (!strcmp(ops[i].name, name)) fn = ops[i].fn;
    if (!fn) {
      printf("unknown %s\n", name);
      fflush(stdout);
      continue;
    }
    static uint32_t a[4] __attribute__((aligned(16))), b[4] __attribute__((aligned(16))), ctl[4];
    static uint64_t aux;
    for (int i = 0; i < 4; i++) { a[i] = av[i]; b[i] = bv[i]; }
    ctl[0] = ctlIn;
    aux = 0;
    int fault = 0;
    if (sigsetjmp(jb, 1)) {
      fault = 1;
      ctl[0] = fault_mxcsr;
      for (int i = 0; i < 4; i++) a[i] = av[i];
    } else {
      fn(a, b, ctl, &aux);
    }
    printf("%x %x %x %x %x %llx %d\n", a[0], a[1], a[2], a[3], ctl[0], (unsigned long long)aux, fault);
  }
  return 0;
}
