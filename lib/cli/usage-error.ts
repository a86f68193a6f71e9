/** A mistake in how the command was invoked: printed without a stack trace, exit status 2. */
export class UsageError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'UsageError';
  }
}
