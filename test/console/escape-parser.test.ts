import { describe, expect, it } from 'vitest';
import { EscapeParser, escapeHelp, type ConsoleAction } from '../../lib/console/escape-parser.js';

const feed = (p: EscapeParser, s: string | number[]): ConsoleAction[] =>
  p.feed(typeof s === 'string' ? Buffer.from(s, 'latin1') : Uint8Array.from(s));
const text = (a: ConsoleAction): string => (a.kind === 'data' ? Buffer.from(a.bytes).toString('latin1') : `<${a.kind}>`);

describe('EscapeParser', () => {
  it('passes plain data through untouched', () => {
    expect(feed(new EscapeParser(), 'ls -l\r').map(text)).toEqual(['ls -l\r']);
  });

  it('Ctrl-A x quits, with data before it forwarded', () => {
    expect(feed(new EscapeParser(), 'ab\x01xcd').map(text)).toEqual(['ab', '<quit>', 'cd']);
  });

  it('Ctrl-A Ctrl-A is one literal 0x01 joined with the data around it', () => {
    expect(feed(new EscapeParser(), 'a\x01\x01b').map(text)).toEqual(['a\x01b']);
  });

  it('keeps the escape state across chunks', () => {
    const p = new EscapeParser();
    expect(feed(p, 'abc\x01').map(text)).toEqual(['abc']);
    expect(feed(p, 'X').map(text)).toEqual(['<quit>']); // upper case works too
    expect(feed(p, [1]).map(text)).toEqual([]);
    expect(feed(p, [1, 0x41]).map(text)).toEqual(['\x01A']);
  });

  it('recognises h, ?, b, c and drops unknown commands', () => {
    expect(feed(new EscapeParser(), '\x01h\x01?\x01b\x01c\x01zq').map(text)).toEqual([
      '<help>', '<help>', '<break>', '<monitor>', '<unknown>', 'q',
    ]);
  });

  it('supports another escape byte and rejects non-bytes', () => {
    expect(feed(new EscapeParser(0x1d), '\x01\x1dx').map(text)).toEqual(['\x01', '<quit>']);
    expect(() => new EscapeParser(300)).toThrow(/escape byte: 300/);
  });

  it('help uses CRLF line ends and names the escape key', () => {
    const help = escapeHelp(1, false);
    expect(help).toContain('Ctrl-A x');
    expect(help).not.toContain('monitor');
    expect(help.split('\r\n').length).toBeGreaterThan(3);
    expect(help.replace(/\r\n/g, '')).not.toContain('\n');
  });
});
