/**
 * The one description of x86 encodings. The decoder builds its lookup tables from these lines, and the executor
 * binds handlers to the mnemonics named here (lib/cpu/exec/*.ts), so there is a single source of truth.
 *
 * Line syntax:  "<opcode> <mnemonic> [operands] [attributes]" with '|' separating the three fields.
 *   opcode:  [NP|66|F2|F3] [0F [38|3A]] <hex byte>[+r|+cc] [/r | /0../7 [.m|.r] | =XX (exact ModRM byte)]
 *            NP = no 66/F2/F3 prefix; a leading 66/F2/F3 is a mandatory prefix (SSE style).
 *   mnemonic: lower case as binutils prints it in Intel syntax; "cc" in a +cc line expands to the 16 conditions.
 *   operands: Intel SDM appendix A notation: E G M R I J O S C D A X Y V W U P Q N, sizes b w d q v z y p x,
 *             fixed registers (AL, eAX, rAX, CL, DX), Z = register in the opcode's low 3 bits.
 *   attributes: i64 (invalid in 64-bit mode), o64 (64-bit mode only), d64 (64-bit default operand size in long
 *             mode), f64 (always 64-bit in long mode), lock (LOCK allowed), b (byte operation), x87, sse.
 *
 * Matching the CPU the interpreter describes in CPUID and the real CPU it is checked against (AMD EPYC, measured):
 * no TPAUSE (no WAITPKG: 66 0F AE F0 is MFENCE with an ignored 66), and LFENCE/MFENCE/SFENCE accept any ModRM.rm
 * (0F AE E8-EF / F0-F7 / F8-FF), as the CPUs do. The PREFETCH group 0F 0D takes only a memory operand: a register
 * operand is #UD (AMD APM; on the kvm_pvm host the native #UD is then re-run by KVM's emulator, which treats it as a
 * NOP and goes on emulating, so the differential run cannot observe it and does not generate it).
 */

export const CONDITIONS = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'] as const;

const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const SHIFTS = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];

function aluLines(): string[] {
  const out: string[] = [];
  ALU.forEach((m, i) => {
    const b = (i * 8).toString(16).padStart(2, '0');
    const lk = m === 'cmp' ? '' : 'lock';
    const op = (k: number) => (i * 8 + k).toString(16).padStart(2, '0');
    out.push(`${b} /r|${m}|Eb,Gb|${lk}`, `${op(1)} /r|${m}|Ev,Gv|${lk}`, `${op(2)} /r|${m}|Gb,Eb|`, `${op(3)} /r|${m}|Gv,Ev|`,
      `${op(4)}|${m}|AL,Ib|`, `${op(5)}|${m}|rAX,Iz|`);
    out.push(`80 /${i}|${m}|Eb,Ib|${lk}`, `81 /${i}|${m}|Ev,Iz|${lk}`, `82 /${i}|${m}|Eb,Ib|i64 ${lk}`, `83 /${i}|${m}|Ev,Ib|${lk}`);
  });
  SHIFTS.forEach((m, i) => {
    out.push(`C0 /${i}|${m}|Eb,Ib|`, `C1 /${i}|${m}|Ev,Ib|`, `D0 /${i}|${m}|Eb,1|`, `D1 /${i}|${m}|Ev,1|`,
      `D2 /${i}|${m}|Eb,CL|`, `D3 /${i}|${m}|Ev,CL|`);
  });
  return out;
}

const GENERAL = `
06|push|ES|i64
07|pop|ES|i64
0E|push|CS|i64
16|push|SS|i64
17|pop|SS|i64
1E|push|DS|i64
1F|pop|DS|i64
27|daa||i64
2F|das||i64
37|aaa||i64
3F|aas||i64
40+r|inc|Zv|i64
48+r|dec|Zv|i64
50+r|push|Zv|d64
58+r|pop|Zv|d64
60|pusha||i64
61|popa||i64
62 /r.m|bound|Gv,Ma|i64
63 /r|arpl|Ew,Gw|i64
63 /r|movsxd|Gv,Ed|o64
68|push|Iz|d64
69 /r|imul|Gv,Ev,Iz|
6A|push|Ib|d64
6B /r|imul|Gv,Ev,Ib|
6C|ins|Yb,DX|b
6D|ins|Yz,DX|
6E|outs|DX,Xb|b
6F|outs|DX,Xz|
70+cc|jcc|Jb|f64
84 /r|test|Eb,Gb|
85 /r|test|Ev,Gv|
86 /r|xchg|Eb,Gb|lock
87 /r|xchg|Ev,Gv|lock
88 /r|mov|Eb,Gb|
89 /r|mov|Ev,Gv|
8A /r|mov|Gb,Eb|
8B /r|mov|Gv,Ev|
8C /r|mov|Ev,Sw|
8D /r.m|lea|Gv,M|
8E /r|mov|Sw,Ew|
8F /0|pop|Ev|d64
90|nop||
F3 90|pause||
90+r|xchg|Zv,rAX|
98|cbw||
99|cwd||
9A|call|Ap|i64
9B|fwait||
9C|pushf||d64
9D|popf||d64
9E|sahf||
9F|lahf||
A0|mov|AL,Ob|
A1|mov|rAX,Ov|
A2|mov|Ob,AL|
A3|mov|Ov,rAX|
A4|movs|Yb,Xb|b
A5|movs|Yv,Xv|
A6|cmps|Xb,Yb|b
A7|cmps|Xv,Yv|
A8|test|AL,Ib|
A9|test|rAX,Iz|
AA|stos|Yb,AL|b
AB|stos|Yv,rAX|
AC|lods|AL,Xb|
AD|lods|rAX,Xv|
AE|scas|AL,Yb|
AF|scas|rAX,Yv|
B0+r|mov|Zb,Ib|
B8+r|mov|Zv,Iv|
C2|ret|Iw|f64
C3|ret||f64
C4 /r.m|les|Gz,Mp|i64
C5 /r.m|lds|Gz,Mp|i64
C6 /0|mov|Eb,Ib|
C7 /0|mov|Ev,Iz|
C6 =F8|xabort|Ib|
C7 =F8|xbegin|Jz|
C8|enter|Iw,Ib|d64
C9|leave||d64
CA|retf|Iw|
CB|retf||
CC|int3||
CD|int|Ib|
CE|into||i64
CF|iret||
D4|aam|Ib|i64
D5|aad|Ib|i64
D6|salc||i64
D7|xlat||b
E0|loopne|Jb|f64
E1|loope|Jb|f64
E2|loop|Jb|f64
E3|jrcxz|Jb|f64
E4|in|AL,Ib|
E5|in|eAX,Ib|
E6|out|Ib,AL|b
E7|out|Ib,eAX|
E8|call|Jz|f64
E9|jmp|Jz|f64
EA|jmp|Ap|i64
EB|jmp|Jb|f64
EC|in|AL,DX|
ED|in|eAX,DX|
EE|out|DX,AL|b
EF|out|DX,eAX|
F1|int1||
F4|hlt||
F5|cmc||
F6 /0|test|Eb,Ib|
F6 /1|test|Eb,Ib|
F6 /2|not|Eb|lock
F6 /3|neg|Eb|lock
F6 /4|mul|Eb|
F6 /5|imul|Eb|
F6 /6|div|Eb|
F6 /7|idiv|Eb|
F7 /0|test|Ev,Iz|
F7 /1|test|Ev,Iz|
F7 /2|not|Ev|lock
F7 /3|neg|Ev|lock
F7 /4|mul|Ev|
F7 /5|imul|Ev|
F7 /6|div|Ev|
F7 /7|idiv|Ev|
F8|clc||
F9|stc||
FA|cli||
FB|sti||
FC|cld||
FD|std||
FE /0|inc|Eb|lock
FE /1|dec|Eb|lock
FF /0|inc|Ev|lock
FF /1|dec|Ev|lock
FF /2|call|Ev|f64
FF /3.m|call|Mp|
FF /4|jmp|Ev|f64
FF /5.m|jmp|Mp|
FF /6|push|Ev|d64
`;

const TWO_BYTE = `
0F 00 /0|sldt|Ew|
0F 00 /1|str|Ew|
0F 00 /2|lldt|Ew|
0F 00 /3|ltr|Ew|
0F 00 /4|verr|Ew|
0F 00 /5|verw|Ew|
0F 01 =C1|vmcall||
0F 01 =D9|vmmcall||
0F 01 =DC|stgi||
0F 01 =E8|serialize||
0F 01 =FA|monitorx||
0F 01 =FB|mwaitx||
0F 01 =C8|monitor||
0F 01 =C9|mwait||
0F 01 =CA|clac||
0F 01 =CB|stac||
0F 01 =D0|xgetbv||
0F 01 =D1|xsetbv||
0F 01 =D5|xend||
0F 01 =D6|xtest||
0F 01 =F8|swapgs||o64
0F 01 =F9|rdtscp||
0F 01 /0.m|sgdt|M|
0F 01 /1.m|sidt|M|
0F 01 /2.m|lgdt|M|
0F 01 /3.m|lidt|M|
0F 01 /4|smsw|Ew|
0F 01 /6|lmsw|Ew|
0F 01 /7.m|invlpg|M|
0F 02 /r|lar|Gv,Ew|
0F 03 /r|lsl|Gv,Ew|
0F 05|syscall||
0F 06|clts||
0F 07|sysret||
0F 08|invd||
0F 09|wbinvd||
0F 0B|ud2||
0F 0D /1.m|prefetchw|M|
0F 0D /r.m|nop|Ev|
0F 18 /0.m|prefetchnta|M|
0F 18 /1.m|prefetcht0|M|
0F 18 /2.m|prefetcht1|M|
0F 18 /3.m|prefetcht2|M|
0F 18 /r|nop|Ev|
0F 19 /r|nop|Ev|
0F 1A /r|nop|Ev|
0F 1B /r|nop|Ev|
0F 1C /r|nop|Ev|
F3 0F 1E =FA|endbr64||
F3 0F 1E =FB|endbr32||
F3 0F 1E /1.r|rdsspq|Ry|
0F 1E /r|nop|Ev|
0F 1F /r|nop|Ev|
0F 20 /r|mov|Ry,Cy|f64
0F 21 /r|mov|Ry,Dy|f64
0F 22 /r|mov|Cy,Ry|f64
0F 23 /r|mov|Dy,Ry|f64
0F 30|wrmsr||
0F 31|rdtsc||
0F 32|rdmsr||
0F 33|rdpmc||
0F 34|sysenter||
0F 35|sysexit||
0F 40+cc /r|cmovcc|Gv,Ev|
0F 80+cc|jcc|Jz|f64
0F 90+cc /r|setcc|Eb|
0F A0|push|FS|d64
0F A1|pop|FS|d64
0F A2|cpuid||
0F A3 /r|bt|Ev,Gv|
0F A4 /r|shld|Ev,Gv,Ib|
0F A5 /r|shld|Ev,Gv,CL|
0F A8|push|GS|d64
0F A9|pop|GS|d64
0F AA|rsm||
0F AB /r|bts|Ev,Gv|lock
0F AC /r|shrd|Ev,Gv,Ib|
0F AD /r|shrd|Ev,Gv,CL|
0F AE /0.m|fxsave|M|
0F AE /1.m|fxrstor|M|
0F AE /2.m|ldmxcsr|Md|
0F AE /3.m|stmxcsr|Md|
0F AE /4.m|xsave|M|
0F AE /5.m|xrstor|M|
0F AE /6.m|xsaveopt|M|
0F AE /7.m|clflush|M|
66 0F AE /7.m|clflushopt|M|
0F AE /5.r|lfence||
0F AE /6.r|mfence||
0F AE /7.r|sfence||
F3 0F AE /5.r|incsspq|Ry|
F3 0F AE /0.r|rdfsbase|Ry|
F3 0F AE /1.r|rdgsbase|Ry|
F3 0F AE /2.r|wrfsbase|Ry|
F3 0F AE /3.r|wrgsbase|Ry|
66 0F AE /6.m|clwb|M|
0F A7 =C0|xstore-rng||
0F AF /r|imul|Gv,Ev|
0F B0 /r|cmpxchg|Eb,Gb|lock
0F B1 /r|cmpxchg|Ev,Gv|lock
0F B2 /r.m|lss|Gv,Mp|
0F B3 /r|btr|Ev,Gv|lock
0F B4 /r.m|lfs|Gv,Mp|
0F B5 /r.m|lgs|Gv,Mp|
0F B6 /r|movzx|Gv,Eb|
0F B7 /r|movzx|Gv,Ew|
F3 0F B8 /r|popcnt|Gv,Ev|
0F B9 /r|ud1|Gv,Ev|
0F BA /4|bt|Ev,Ib|
0F BA /5|bts|Ev,Ib|lock
0F BA /6|btr|Ev,Ib|lock
0F BA /7|btc|Ev,Ib|lock
0F BB /r|btc|Ev,Gv|lock
F3 0F BC /r|tzcnt|Gv,Ev|
0F BC /r|bsf|Gv,Ev|
F3 0F BD /r|lzcnt|Gv,Ev|
0F BD /r|bsr|Gv,Ev|
0F BE /r|movsx|Gv,Eb|
0F BF /r|movsx|Gv,Ew|
0F C0 /r|xadd|Eb,Gb|lock
0F C1 /r|xadd|Ev,Gv|lock
NP 0F C3 /r.m|movnti|My,Gy|
0F C7 /1.m|cmpxchg8b|Mq|lock
0F C7 /3.m|xrstors|M|
0F C7 /4.m|xsavec|M|
0F C7 /5.m|xsaves|M|
0F C7 /6.r|rdrand|Rv|
0F C7 /7.r|rdseed|Rv|
F3 0F C7 /7.r|rdpid|Ry|
0F C8+r|bswap|Zv|
0F FF /r|ud0|Gv,Ev|
66 0F 38 82 /r.m|invpcid|Gy,Mx|
0F 38 F0 /r.m|movbe|Gv,Mv|
0F 38 F1 /r.m|movbe|Mv,Gv|
`;

// SSE/SSE2/SSE3/SSSE3/SSE4.1 (+ MMX forms), semantics in lib/cpu/simd.
const SSE = `
NP 0F 10 /r|movups|Vx,Wx|
66 0F 10 /r|movupd|Vx,Wx|
F3 0F 10 /r|movss|Vx,Wd|
F2 0F 10 /r|movsd|Vx,Wq|
NP 0F 11 /r|movups|Wx,Vx|
66 0F 11 /r|movupd|Wx,Vx|
F3 0F 11 /r|movss|Wd,Vx|
F2 0F 11 /r|movsd|Wq,Vx|
NP 0F 12 /r.r|movhlps|Vx,Ux|
NP 0F 12 /r.m|movlps|Vx,Mq|
66 0F 12 /r.m|movlpd|Vx,Mq|
F2 0F 12 /r|movddup|Vx,Wq|
F3 0F 12 /r|movsldup|Vx,Wx|
NP 0F 13 /r.m|movlps|Mq,Vx|
66 0F 13 /r.m|movlpd|Mq,Vx|
NP 0F 14 /r|unpcklps|Vx,Wx|
66 0F 14 /r|unpcklpd|Vx,Wx|
NP 0F 15 /r|unpckhps|Vx,Wx|
66 0F 15 /r|unpckhpd|Vx,Wx|
NP 0F 16 /r.r|movlhps|Vx,Ux|
NP 0F 16 /r.m|movhps|Vx,Mq|
66 0F 16 /r.m|movhpd|Vx,Mq|
F3 0F 16 /r|movshdup|Vx,Wx|
NP 0F 17 /r.m|movhps|Mq,Vx|
66 0F 17 /r.m|movhpd|Mq,Vx|
NP 0F 28 /r|movaps|Vx,Wx|
66 0F 28 /r|movapd|Vx,Wx|
NP 0F 29 /r|movaps|Wx,Vx|
66 0F 29 /r|movapd|Wx,Vx|
NP 0F 2A /r|cvtpi2ps|Vx,Qq|
66 0F 2A /r|cvtpi2pd|Vx,Qq|
F3 0F 2A /r|cvtsi2ss|Vx,Ey|
F2 0F 2A /r|cvtsi2sd|Vx,Ey|
NP 0F 2B /r.m|movntps|Mx,Vx|
66 0F 2B /r.m|movntpd|Mx,Vx|
NP 0F 2C /r|cvttps2pi|Pq,Wq|
66 0F 2C /r|cvttpd2pi|Pq,Wx|
F3 0F 2C /r|cvttss2si|Gy,Wd|
F2 0F 2C /r|cvttsd2si|Gy,Wq|
NP 0F 2D /r|cvtps2pi|Pq,Wq|
66 0F 2D /r|cvtpd2pi|Pq,Wx|
F3 0F 2D /r|cvtss2si|Gy,Wd|
F2 0F 2D /r|cvtsd2si|Gy,Wq|
NP 0F 2E /r|ucomiss|Vx,Wd|
66 0F 2E /r|ucomisd|Vx,Wq|
NP 0F 2F /r|comiss|Vx,Wd|
66 0F 2F /r|comisd|Vx,Wq|
NP 0F 50 /r.r|movmskps|Gd,Ux|
66 0F 50 /r.r|movmskpd|Gd,Ux|
NP 0F 51 /r|sqrtps|Vx,Wx|
66 0F 51 /r|sqrtpd|Vx,Wx|
F3 0F 51 /r|sqrtss|Vx,Wd|
F2 0F 51 /r|sqrtsd|Vx,Wq|
NP 0F 52 /r|rsqrtps|Vx,Wx|
F3 0F 52 /r|rsqrtss|Vx,Wd|
NP 0F 53 /r|rcpps|Vx,Wx|
F3 0F 53 /r|rcpss|Vx,Wd|
NP 0F 54 /r|andps|Vx,Wx|
66 0F 54 /r|andpd|Vx,Wx|
NP 0F 55 /r|andnps|Vx,Wx|
66 0F 55 /r|andnpd|Vx,Wx|
NP 0F 56 /r|orps|Vx,Wx|
66 0F 56 /r|orpd|Vx,Wx|
NP 0F 57 /r|xorps|Vx,Wx|
66 0F 57 /r|xorpd|Vx,Wx|
NP 0F 58 /r|addps|Vx,Wx|
66 0F 58 /r|addpd|Vx,Wx|
F3 0F 58 /r|addss|Vx,Wd|
F2 0F 58 /r|addsd|Vx,Wq|
NP 0F 59 /r|mulps|Vx,Wx|
66 0F 59 /r|mulpd|Vx,Wx|
F3 0F 59 /r|mulss|Vx,Wd|
F2 0F 59 /r|mulsd|Vx,Wq|
NP 0F 5A /r|cvtps2pd|Vx,Wq|
66 0F 5A /r|cvtpd2ps|Vx,Wx|
F3 0F 5A /r|cvtss2sd|Vx,Wd|
F2 0F 5A /r|cvtsd2ss|Vx,Wq|
NP 0F 5B /r|cvtdq2ps|Vx,Wx|
66 0F 5B /r|cvtps2dq|Vx,Wx|
F3 0F 5B /r|cvttps2dq|Vx,Wx|
NP 0F 5C /r|subps|Vx,Wx|
66 0F 5C /r|subpd|Vx,Wx|
F3 0F 5C /r|subss|Vx,Wd|
F2 0F 5C /r|subsd|Vx,Wq|
NP 0F 5D /r|minps|Vx,Wx|
66 0F 5D /r|minpd|Vx,Wx|
F3 0F 5D /r|minss|Vx,Wd|
F2 0F 5D /r|minsd|Vx,Wq|
NP 0F 5E /r|divps|Vx,Wx|
66 0F 5E /r|divpd|Vx,Wx|
F3 0F 5E /r|divss|Vx,Wd|
F2 0F 5E /r|divsd|Vx,Wq|
NP 0F 5F /r|maxps|Vx,Wx|
66 0F 5F /r|maxpd|Vx,Wx|
F3 0F 5F /r|maxss|Vx,Wd|
F2 0F 5F /r|maxsd|Vx,Wq|
0F 60 /r|punpcklbw|Vx,Wx|
0F 61 /r|punpcklwd|Vx,Wx|
0F 62 /r|punpckldq|Vx,Wx|
0F 63 /r|packsswb|Vx,Wx|
0F 64 /r|pcmpgtb|Vx,Wx|
0F 65 /r|pcmpgtw|Vx,Wx|
0F 66 /r|pcmpgtd|Vx,Wx|
0F 67 /r|packuswb|Vx,Wx|
0F 68 /r|punpckhbw|Vx,Wx|
0F 69 /r|punpckhwd|Vx,Wx|
0F 6A /r|punpckhdq|Vx,Wx|
0F 6B /r|packssdw|Vx,Wx|
66 0F 6C /r|punpcklqdq|Vx,Wx|
66 0F 6D /r|punpckhqdq|Vx,Wx|
0F 6E /r|movd|Vx,Ey|
0F 6F /r|movq|Pq,Qq|
66 0F 6F /r|movdqa|Vx,Wx|
F3 0F 6F /r|movdqu|Vx,Wx|
0F 70 /r|pshufw|Pq,Qq,Ib|
66 0F 70 /r|pshufd|Vx,Wx,Ib|
F3 0F 70 /r|pshufhw|Vx,Wx,Ib|
F2 0F 70 /r|pshuflw|Vx,Wx,Ib|
0F 71 /2.r|psrlw|Ux,Ib|
0F 71 /4.r|psraw|Ux,Ib|
0F 71 /6.r|psllw|Ux,Ib|
0F 72 /2.r|psrld|Ux,Ib|
0F 72 /4.r|psrad|Ux,Ib|
0F 72 /6.r|pslld|Ux,Ib|
0F 73 /2.r|psrlq|Ux,Ib|
66 0F 73 /3.r|psrldq|Ux,Ib|
0F 73 /6.r|psllq|Ux,Ib|
66 0F 73 /7.r|pslldq|Ux,Ib|
0F 74 /r|pcmpeqb|Vx,Wx|
0F 75 /r|pcmpeqw|Vx,Wx|
0F 76 /r|pcmpeqd|Vx,Wx|
NP 0F 77|emms||
66 0F 7C /r|haddpd|Vx,Wx|
F2 0F 7C /r|haddps|Vx,Wx|
66 0F 7D /r|hsubpd|Vx,Wx|
F2 0F 7D /r|hsubps|Vx,Wx|
F3 0F 7E /r|movq|Vx,Wq|
0F 7E /r|movd|Ey,Vx|
0F 7F /r|movq|Qq,Pq|
66 0F 7F /r|movdqa|Wx,Vx|
F3 0F 7F /r|movdqu|Wx,Vx|
NP 0F C2 /r|cmpps|Vx,Wx,Ib|
66 0F C2 /r|cmppd|Vx,Wx,Ib|
F3 0F C2 /r|cmpss|Vx,Wd,Ib|
F2 0F C2 /r|cmpsd|Vx,Wq,Ib|
0F C4 /r|pinsrw|Vx,Ed,Ib|
0F C5 /r.r|pextrw|Gd,Ux,Ib|
NP 0F C6 /r|shufps|Vx,Wx,Ib|
66 0F C6 /r|shufpd|Vx,Wx,Ib|
66 0F D0 /r|addsubpd|Vx,Wx|
F2 0F D0 /r|addsubps|Vx,Wx|
0F D1 /r|psrlw|Vx,Wx|
0F D2 /r|psrld|Vx,Wx|
0F D3 /r|psrlq|Vx,Wx|
0F D4 /r|paddq|Vx,Wx|
0F D5 /r|pmullw|Vx,Wx|
66 0F D6 /r|movq|Wq,Vx|
F3 0F D6 /r.r|movq2dq|Vx,Nq|
F2 0F D6 /r.r|movdq2q|Pq,Ux|
0F D7 /r.r|pmovmskb|Gd,Ux|
0F D8 /r|psubusb|Vx,Wx|
0F D9 /r|psubusw|Vx,Wx|
0F DA /r|pminub|Vx,Wx|
0F DB /r|pand|Vx,Wx|
0F DC /r|paddusb|Vx,Wx|
0F DD /r|paddusw|Vx,Wx|
0F DE /r|pmaxub|Vx,Wx|
0F DF /r|pandn|Vx,Wx|
0F E0 /r|pavgb|Vx,Wx|
0F E1 /r|psraw|Vx,Wx|
0F E2 /r|psrad|Vx,Wx|
0F E3 /r|pavgw|Vx,Wx|
0F E4 /r|pmulhuw|Vx,Wx|
0F E5 /r|pmulhw|Vx,Wx|
66 0F E6 /r|cvttpd2dq|Vx,Wx|
F3 0F E6 /r|cvtdq2pd|Vx,Wq|
F2 0F E6 /r|cvtpd2dq|Vx,Wx|
NP 0F E7 /r.m|movntq|Mq,Pq|
66 0F E7 /r.m|movntdq|Mx,Vx|
0F E8 /r|psubsb|Vx,Wx|
0F E9 /r|psubsw|Vx,Wx|
0F EA /r|pminsw|Vx,Wx|
0F EB /r|por|Vx,Wx|
0F EC /r|paddsb|Vx,Wx|
0F ED /r|paddsw|Vx,Wx|
0F EE /r|pmaxsw|Vx,Wx|
0F EF /r|pxor|Vx,Wx|
F2 0F F0 /r.m|lddqu|Vx,Mx|
0F F1 /r|psllw|Vx,Wx|
0F F2 /r|pslld|Vx,Wx|
0F F3 /r|psllq|Vx,Wx|
0F F4 /r|pmuludq|Vx,Wx|
0F F5 /r|pmaddwd|Vx,Wx|
0F F6 /r|psadbw|Vx,Wx|
NP 0F F7 /r.r|maskmovq|Pq,Nq|
66 0F F7 /r.r|maskmovdqu|Vx,Ux|
0F F8 /r|psubb|Vx,Wx|
0F F9 /r|psubw|Vx,Wx|
0F FA /r|psubd|Vx,Wx|
0F FB /r|psubq|Vx,Wx|
0F FC /r|paddb|Vx,Wx|
0F FD /r|paddw|Vx,Wx|
0F FE /r|paddd|Vx,Wx|
0F 38 00 /r|pshufb|Vx,Wx|
0F 38 01 /r|phaddw|Vx,Wx|
0F 38 02 /r|phaddd|Vx,Wx|
0F 38 03 /r|phaddsw|Vx,Wx|
0F 38 04 /r|pmaddubsw|Vx,Wx|
0F 38 05 /r|phsubw|Vx,Wx|
0F 38 06 /r|phsubd|Vx,Wx|
0F 38 07 /r|phsubsw|Vx,Wx|
0F 38 08 /r|psignb|Vx,Wx|
0F 38 09 /r|psignw|Vx,Wx|
0F 38 0A /r|psignd|Vx,Wx|
0F 38 0B /r|pmulhrsw|Vx,Wx|
66 0F 38 10 /r|pblendvb|Vx,Wx|
66 0F 38 14 /r|blendvps|Vx,Wx|
66 0F 38 15 /r|blendvpd|Vx,Wx|
66 0F 38 17 /r|ptest|Vx,Wx|
0F 38 1C /r|pabsb|Vx,Wx|
0F 38 1D /r|pabsw|Vx,Wx|
0F 38 1E /r|pabsd|Vx,Wx|
66 0F 38 20 /r|pmovsxbw|Vx,Wq|
66 0F 38 21 /r|pmovsxbd|Vx,Wd|
66 0F 38 22 /r|pmovsxbq|Vx,Ww|
66 0F 38 23 /r|pmovsxwd|Vx,Wq|
66 0F 38 24 /r|pmovsxwq|Vx,Wd|
66 0F 38 25 /r|pmovsxdq|Vx,Wq|
66 0F 38 28 /r|pmuldq|Vx,Wx|
66 0F 38 29 /r|pcmpeqq|Vx,Wx|
66 0F 38 2A /r.m|movntdqa|Vx,Mx|
66 0F 38 2B /r|packusdw|Vx,Wx|
66 0F 38 30 /r|pmovzxbw|Vx,Wq|
66 0F 38 31 /r|pmovzxbd|Vx,Wd|
66 0F 38 32 /r|pmovzxbq|Vx,Ww|
66 0F 38 33 /r|pmovzxwd|Vx,Wq|
66 0F 38 34 /r|pmovzxwq|Vx,Wd|
66 0F 38 35 /r|pmovzxdq|Vx,Wq|
66 0F 38 37 /r|pcmpgtq|Vx,Wx|
66 0F 38 38 /r|pminsb|Vx,Wx|
66 0F 38 39 /r|pminsd|Vx,Wx|
66 0F 38 3A /r|pminuw|Vx,Wx|
66 0F 38 3B /r|pminud|Vx,Wx|
66 0F 38 3C /r|pmaxsb|Vx,Wx|
66 0F 38 3D /r|pmaxsd|Vx,Wx|
66 0F 38 3E /r|pmaxuw|Vx,Wx|
66 0F 38 3F /r|pmaxud|Vx,Wx|
66 0F 38 40 /r|pmulld|Vx,Wx|
66 0F 38 41 /r|phminposuw|Vx,Wx|
F2 0F 38 F0 /r|crc32|Gd,Eb|
F2 0F 38 F1 /r|crc32|Gd,Ev|
66 0F 3A 08 /r|roundps|Vx,Wx,Ib|
66 0F 3A 09 /r|roundpd|Vx,Wx,Ib|
66 0F 3A 0A /r|roundss|Vx,Wd,Ib|
66 0F 3A 0B /r|roundsd|Vx,Wq,Ib|
66 0F 3A 0C /r|blendps|Vx,Wx,Ib|
66 0F 3A 0D /r|blendpd|Vx,Wx,Ib|
66 0F 3A 0E /r|pblendw|Vx,Wx,Ib|
0F 3A 0F /r|palignr|Vx,Wx,Ib|
66 0F 3A 14 /r|pextrb|Ed,Vx,Ib|
66 0F 3A 15 /r|pextrw|Ed,Vx,Ib|
66 0F 3A 16 /r|pextrd|Ey,Vx,Ib|
66 0F 3A 17 /r|extractps|Ed,Vx,Ib|
66 0F 3A 20 /r|pinsrb|Vx,Ed,Ib|
66 0F 3A 21 /r|insertps|Vx,Wd,Ib|
66 0F 3A 22 /r|pinsrd|Vx,Ey,Ib|
66 0F 3A 40 /r|dpps|Vx,Wx,Ib|
66 0F 3A 41 /r|dppd|Vx,Wx,Ib|
66 0F 3A 42 /r|mpsadbw|Vx,Wx,Ib|
66 0F 3A 60 /r|pcmpestrm|Vx,Wx,Ib|
66 0F 3A 61 /r|pcmpestri|Vx,Wx,Ib|
66 0F 3A 62 /r|pcmpistrm|Vx,Wx,Ib|
66 0F 3A 63 /r|pcmpistri|Vx,Wx,Ib|
`;

// x87: memory forms by ModRM.reg, register forms by reg (and exact ModRM for the no-operand ones).
const X87_MEM: Record<string, string[]> = {
  D8: ['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr'],
  D9: ['fld', '', 'fst', 'fstp', 'fldenv', 'fldcw', 'fnstenv', 'fnstcw'],
  DA: ['fiadd', 'fimul', 'ficom', 'ficomp', 'fisub', 'fisubr', 'fidiv', 'fidivr'],
  DB: ['fild', 'fisttp', 'fist', 'fistp', '', 'fld', '', 'fstp'],
  DC: ['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr'],
  DD: ['fld', 'fisttp', 'fst', 'fstp', 'frstor', '', 'fnsave', 'fnstsw'],
  DE: ['fiadd', 'fimul', 'ficom', 'ficomp', 'fisub', 'fisubr', 'fidiv', 'fidivr'],
  DF: ['fild', 'fisttp', 'fist', 'fistp', 'fbld', 'fild', 'fbstp', 'fistp'],
};
const X87_REG: Record<string, string[]> = {
  D8: ['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr'],
  D9: ['fld', 'fxch', '', '', '', '', '', ''],
  DA: ['fcmovb', 'fcmove', 'fcmovbe', 'fcmovu', '', '', '', ''],
  DB: ['fcmovnb', 'fcmovne', 'fcmovnbe', 'fcmovnu', '', 'fucomi', 'fcomi', ''],
  // DC/DE register forms: E0+i is the *reversed* operation (SDM: DC E0+i FSUBR ST(i),ST(0); DE E0+i FSUBRP).
  DC: ['fadd', 'fmul', '', '', 'fsubr', 'fsub', 'fdivr', 'fdiv'],
  DD: ['ffree', '', 'fst', 'fstp', 'fucom', 'fucomp', '', ''],
  DE: ['faddp', 'fmulp', '', '', 'fsubrp', 'fsubp', 'fdivrp', 'fdivp'],
  DF: ['', '', '', '', '', 'fucomip', 'fcomip', ''],
};
const X87_EXACT: Record<string, string> = {
  'D9 D0': 'fnop', 'D9 E0': 'fchs', 'D9 E1': 'fabs', 'D9 E4': 'ftst', 'D9 E5': 'fxam', 'D9 E8': 'fld1', 'D9 E9': 'fldl2t',
  'D9 EA': 'fldl2e', 'D9 EB': 'fldpi', 'D9 EC': 'fldlg2', 'D9 ED': 'fldln2', 'D9 EE': 'fldz', 'D9 F0': 'f2xm1',
  'D9 F1': 'fyl2x', 'D9 F2': 'fptan', 'D9 F3': 'fpatan', 'D9 F4': 'fxtract', 'D9 F5': 'fprem1', 'D9 F6': 'fdecstp',
  'D9 F7': 'fincstp', 'D9 F8': 'fprem', 'D9 F9': 'fyl2xp1', 'D9 FA': 'fsqrt', 'D9 FB': 'fsincos', 'D9 FC': 'frndint',
  'D9 FD': 'fscale', 'D9 FE': 'fsin', 'D9 FF': 'fcos', 'DA E9': 'fucompp', 'DB E2': 'fnclex', 'DB E3': 'fninit',
  'DE D9': 'fcompp', 'DF E0': 'fnstsw',
};

function x87Lines(): string[] {
  const out: string[] = [];
  for (const [k, m] of Object.entries(X87_EXACT)) out.push(`${k.slice(0, 2)} =${k.slice(3)}|${m}||x87`);
  for (const [op, names] of Object.entries(X87_MEM)) {
    names.forEach((m, r) => { if (m) out.push(`${op} /${r}.m|${m}|M|x87`); });
  }
  for (const [op, names] of Object.entries(X87_REG)) {
    names.forEach((m, r) => { if (m) out.push(`${op} /${r}.r|${m}|STi|x87`); });
  }
  return out;
}

/** Every encoding line, in priority order within one opcode (more specific lines are sorted first by the decoder). */
export function encodingLines(): string[] {
  const lines: string[] = [...aluLines()];
  for (const block of [GENERAL, TWO_BYTE, SSE]) {
    for (const l of block.split('\n')) if (l.trim()) lines.push(l.trim());
  }
  lines.push(...x87Lines());
  return lines;
}
