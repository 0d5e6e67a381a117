/**
 * An error meant for the user: the CLI prints its message without a stack trace and exits 1.
 * The message must name the file, record or field at fault.
 */
export class UserError extends Error {
  readonly userFacing = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
