/**
 * How the CLI ends: exit codes 0 (ok), 1 (warning), 2 (error), and one line
 * on stderr for an error a user can meet. A stack trace only with
 * CAIRN_DEBUG=1.
 */
import { CairnError } from '../lib/errors.js'

export const EXIT_OK = 0
export const EXIT_WARNING = 1
export const EXIT_ERROR = 2

/** Thrown by commands for bad usage; reported like any other error. */
export function usageError(message: string): CairnError {
  return new CairnError('bad-argument', message, { hint: 'see cairn --help' })
}

export function reportError(err: unknown, debug: boolean): number {
  if (err instanceof CairnError) {
    process.stderr.write(`cairn: ${err.message}${err.hint ? ` (${err.hint})` : ''}\n`)
  } else if ((err as Error)?.name === 'AbortError') {
    process.stderr.write('cairn: interrupted; the repository is unchanged (still at its last commit)\n')
  } else {
    const e = err as NodeJS.ErrnoException
    const detail = e?.code === 'ENOSPC' ? 'no space left on device' : e?.message ?? String(err)
    process.stderr.write(`cairn: ${detail} (unexpected error; run with CAIRN_DEBUG=1 for details)\n`)
  }
  if (debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n')
  return EXIT_ERROR
}
