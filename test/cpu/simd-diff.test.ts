/**
 * x87/MMX/SSE wiring vs the host CPU (native-diff.ts): operand fetch (register/memory), stores, flag-setting
 * compares and GPR results. Values leave the vector unit through GPRs and the compared scratch area.
 */
import { describe, expect, it } from 'vitest';
import { type DiffCase, nativeDiffUnavailable, Rng, runDiff } from './native-diff.js';

const unavailable = nativeDiffUnavailable(64);
if (unavailable) console.warn(unavailable);

const IF = 0x200;

function cases(seed: number, n: number, bodies: string[], undef = 0): DiffCase[] {
  const rng = new Rng(seed);
  const out: DiffCase[] = [];
  for (let k = 0; k < n; k++) {
    const body = bodies[k % bodies.length]!;
    const setup = 'movdqu xmm0, [scratch]\nmovdqu xmm1, [scratch + 16]\nmovq xmm2, rax\nmovq xmm3, rbx\npunpcklqdq xmm2, xmm3\n';
    const tail = '\nmovq rax, xmm0\npsrldq xmm0, 8\nmovq rbx, xmm0\nmovq rcx, xmm1\npsrldq xmm1, 8\nmovq rdx, xmm1\nmovq rsi, xmm2\n';
    out.push({
      asm: setup + body + tail, regs: Array.from({ length: 15 }, () => rng.value()), flags: Number(rng.next() & 0x8d5n),
      mem: [rng.value(), rng.value(), rng.value(), rng.value()], undefinedFlags: IF | undef, label: `${k}: ${body.replace(/\n/g, '; ')}`,
    });
  }
  return out;
}

function check(c: DiffCase[]): void {
  const bad = runDiff(c);
  expect(bad.slice(0, 15).map((m) => `${m.label} ${m.field}: native 0x${m.native.toString(16)} interp 0x${m.interp.toString(16)}`)).toEqual([]);
}

describe.skipIf(unavailable !== null)('SIMD wiring vs native', () => {
  it('SSE2 integer ops, moves, shuffles and masks (glibc string-function patterns)', () => {
    check(cases(11, 160, [
      'pcmpeqb xmm0, xmm1\npmovmskb eax, xmm0', 'paddb xmm0, xmm1', 'pxor xmm0, xmm2', 'pandn xmm1, xmm0', 'pminub xmm0, xmm1',
      'pcmpgtb xmm1, xmm0', 'psubb xmm0, xmm1', 'por xmm1, xmm2', 'pand xmm0, [scratch]', 'punpcklbw xmm0, xmm1',
      'punpcklqdq xmm1, xmm2', 'pshufd xmm0, xmm1, 0x1b', 'pslldq xmm0, 3', 'psrldq xmm1, 5', 'palignr xmm0, xmm1, 7',
      'pshufb xmm0, xmm1', 'movd xmm0, ecx\nmovd edi, xmm1', 'movq xmm1, qword ptr [scratch + 8]', 'movaps xmm1, xmm0\nmovups [scratch], xmm2',
      'movdqa [scratch + 16], xmm0', 'pextrw eax, xmm1, 3\npinsrw xmm0, ebx, 5', 'pcmpeqd xmm0, xmm1', 'psllq xmm0, 13', 'psrad xmm1, 3',
      'pmaxub xmm0, xmm1', 'pmuludq xmm0, xmm1', 'psadbw xmm0, xmm1', 'pminud xmm0, xmm1', 'pmovzxbw xmm0, xmm1', 'pextrd eax, xmm1, 2',
      'movhps xmm0, [scratch + 8]\nmovlps [scratch], xmm1', 'movhlps xmm0, xmm1', 'shufps xmm0, xmm1, 0x4e', 'unpckhpd xmm0, xmm1',
      'ptest xmm0, xmm1', 'movmskps eax, xmm1', 'pmovmskb eax, xmm2', 'packuswb xmm0, xmm1', 'pmaddwd xmm0, xmm1', 'pavgb xmm0, xmm1',
    ]));
  });

  it('SSE/SSE2 floating point: arithmetic, compares, conversions', () => {
    check(cases(12, 120, [
      'cvtsi2sd xmm0, rax\ncvtsi2sd xmm1, ebx\naddsd xmm0, xmm1', 'cvtsi2ss xmm0, rcx\nmulss xmm0, xmm0', 'cvtsi2sd xmm0, rax\ncvttsd2si rdi, xmm0',
      'cvtsi2sd xmm0, rax\ncvtsi2sd xmm1, rbx\nucomisd xmm0, xmm1', 'cvtsi2sd xmm0, rax\ncvtsi2sd xmm1, rbx\ncomisd xmm1, xmm0',
      'cvtsi2sd xmm0, rax\ncvtsi2sd xmm1, rbx\ndivsd xmm0, xmm1', 'cvtsi2sd xmm0, rax\nsqrtsd xmm1, xmm0', 'cvtsi2sd xmm0, rax\ncvtsd2ss xmm1, xmm0\ncvtss2sd xmm2, xmm1',
      'xorps xmm0, xmm0\ncvtsi2sd xmm0, rbx\nsubsd xmm0, [scratch]', 'cvtdq2ps xmm0, xmm1', 'cvttps2dq xmm1, xmm2', 'cvtsi2sd xmm0, rax\nmaxsd xmm0, xmm1',
      'cvtsi2ss xmm0, eax\ncvtsi2ss xmm1, ebx\ncmpltss xmm0, xmm1', 'cvtsi2sd xmm0, eax\ncvtsd2si edi, xmm0', 'stmxcsr [scratch]',
    ]));
  });

  it('x87 loads, arithmetic, stores and control words', () => {
    check(cases(13, 60, [
      'fild qword ptr [scratch]\nfild qword ptr [scratch + 8]\nfaddp st(1), st\nfistp qword ptr [scratch + 16]',
      'fild qword ptr [scratch]\nfistp qword ptr [scratch + 24]\nfild qword ptr [scratch + 8]\nfbstp tbyte ptr [scratch]',
      'fild dword ptr [scratch]\nfld st(0)\nfmulp st(1), st\nfstp qword ptr [scratch + 8]',
      'fld1\nfldz\nfucomip st, st(1)\nfstp st(0)', 'fldpi\nfstp tbyte ptr [scratch]', 'fnstcw word ptr [scratch]\nfldcw word ptr [scratch]',
      'fild word ptr [scratch]\nfchs\nfabs\nfistp dword ptr [scratch + 4]', 'fild dword ptr [scratch]\nfild dword ptr [scratch + 4]\nfdivp st(1), st\nfstp dword ptr [scratch+8]',
      'fninit\nfnstsw ax', 'shr qword ptr [scratch], 12\nfild qword ptr [scratch]\nfbstp tbyte ptr [scratch + 16]\nfbld tbyte ptr [scratch + 16]\nfistp qword ptr [scratch + 8]', 'fild qword ptr [scratch]\nfxam\nfnstsw ax\nfstp st(0)', 'fild dword ptr [scratch]\nfsqrt\nfstp qword ptr [scratch]',
    ], 0x810)); // AF/OF after SHR by 12 are undefined
  });
});
