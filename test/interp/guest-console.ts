/** Reads a guest's serial output as text and types commands into it, waiting for what the guest prints. */

export class GuestConsole {
  private text = '';
  private waiters: { pattern: RegExp; from: number; resolve: (m: RegExpExecArray) => void }[] = [];
  /** Everything the guest printed so far. */
  get output(): string {
    return this.text;
  }

  constructor(private readonly send: (bytes: Buffer) => void, private readonly echo?: (chunk: string) => void) {}

  /** Feed guest output. */
  push(chunk: Uint8Array | string): void {
    const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('latin1');
    this.text += s;
    this.echo?.(s);
    for (const w of [...this.waiters]) {
      w.pattern.lastIndex = w.from;
      const m = w.pattern.exec(this.text);
      if (m) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }

  /** Position to search from for output that comes after this moment. */
  mark(): number {
    return this.text.length;
  }

  /** Resolves with the first match of `pattern` at or after `from` (default: anywhere). */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    const re = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
    re.lastIndex = from;
    const m = re.exec(this.text);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const waiter = { pattern: re, from, resolve: (x: RegExpExecArray) => { clearTimeout(timer); resolve(x); } };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; last output:\n${this.text.slice(-1500)}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /**
   * Types `command` and resolves with what it printed. The output is framed by two markers the shell echoes
   * before and after the command; they are typed split in two quoted halves, so the echoed command line (which
   * the terminal may also wrap) never contains them whole.
   */
  async run(command: string, timeoutMs: number): Promise<string> {
    const tag = Math.random().toString(36).slice(2, 10);
    const from = this.mark();
    this.send(Buffer.from(`echo "<<""${tag}"; ${command}; echo "${tag}"">>"\n`));
    const start = await this.waitFor(new RegExp(`<<${tag}\\r?\\n`), timeoutMs, from);
    const startAt = start.index + start[0].length;
    const end = await this.waitFor(new RegExp(`${tag}>>\\r?\\n`), timeoutMs, startAt);
    return this.text.slice(startAt, end.index).replace(/\r/g, '');
  }
}
