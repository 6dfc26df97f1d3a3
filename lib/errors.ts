/**
 * The one error type cairn raises for anything a user can meet.
 *
 * `code` is stable (scripts and the CLI match on it), `message` says what
 * happened, `hint` says what to do, `retryable` tells callers whether trying
 * again can help. The CLI maps codes to exit codes and prints one line.
 */
export type CairnErrorCode =
  | 'wrong-passphrase'
  | 'no-passphrase'
  | 'not-a-repository'
  | 'unsupported-version'
  | 'repository-exists'
  | 'integrity'
  | 'missing-object'
  | 'archive-exists'
  | 'archive-not-found'
  | 'path-not-found'
  | 'unsafe-path'
  | 'locked'
  | 'no-space'
  | 'io'
  | 'bad-argument'
  | 'bad-config'
  | 'fuse-missing'
  | 'mount-failed'
  | 'aborted'

export interface CairnErrorOptions {
  hint?: string
  retryable?: boolean
  cause?: unknown
  path?: string
}

export class CairnError extends Error {
  readonly code: CairnErrorCode
  readonly hint: string | undefined
  readonly retryable: boolean
  readonly path: string | undefined

  constructor(code: CairnErrorCode, message: string, options: CairnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CairnError'
    this.code = code
    this.hint = options.hint
    this.retryable = options.retryable ?? false
    this.path = options.path
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, retryable: this.retryable, path: this.path }
  }
}

export function isCairnError(err: unknown, code?: CairnErrorCode): err is CairnError {
  return err instanceof CairnError && (code === undefined || err.code === code)
}
