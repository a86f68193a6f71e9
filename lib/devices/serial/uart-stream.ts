/**
 * A UART seen as a Node Duplex: the readable side yields what the guest transmits, the writable side queues
 * input for the guest. Writes complete once the UART's host queue is below a high-water mark, so a fast
 * producer (a pipe, a file) is paced by how fast the guest reads instead of growing memory without bound.
 *
 * The readable side does not slow the guest down: a guest cannot be told to wait for a host consumer, so output
 * is buffered by the stream until it is read (as a terminal would scroll it away).
 */
import { Duplex } from 'node:stream';

/** The part of the UART the stream needs (kept structural to avoid an import cycle). */
export interface UartStreamEndpoint {
  receive(data: Uint8Array): void;
  readonly pendingInputBytes: number;
  addOutputListener(listener: (chunk: Uint8Array) => void): () => void;
  addInputDrainedListener(listener: () => void): () => void;
  flushOutput(): void;
}

export class UartStream extends Duplex {
  private readonly unsubscribeOutput: () => void;
  private readonly unsubscribeDrained: () => void;
  private pendingWriteCallback: ((error?: Error | null) => void) | undefined;

  constructor(
    private readonly uart: UartStreamEndpoint,
    private readonly highWaterBytes: number,
  ) {
    super({ allowHalfOpen: true });
    this.unsubscribeOutput = uart.addOutputListener((chunk) => {
      this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
    this.unsubscribeDrained = uart.addInputDrainedListener(() => this.releaseWriter());
  }

  override _read(): void {
    // Output is pushed as the guest produces it; deliver anything still batched.
    this.uart.flushOutput();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.uart.receive(chunk);
    if (this.uart.pendingInputBytes < this.highWaterBytes) callback();
    else this.pendingWriteCallback = callback;
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback(); // end of host input: the guest simply receives nothing more
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.unsubscribeOutput();
    this.unsubscribeDrained();
    const pending = this.pendingWriteCallback;
    this.pendingWriteCallback = undefined;
    pending?.(error);
    callback(error);
  }

  /** The guest is gone: no more output will come. */
  endOfGuest(): void {
    this.push(null);
    this.releaseWriter();
  }

  private releaseWriter(): void {
    if (this.pendingWriteCallback === undefined || this.uart.pendingInputBytes >= this.highWaterBytes) return;
    const callback = this.pendingWriteCallback;
    this.pendingWriteCallback = undefined;
    callback();
  }
}
