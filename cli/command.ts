import type { ParseArgsConfig } from 'node:util'
import type { Environment } from './environment.js'

export interface CommandContext {
  values: Record<string, unknown>
  positionals: string[]
  env: Environment
  /** Standard output and error; bytes pass through unchanged (names are bytes). */
  out: (data: string | Buffer) => void
  err: (data: string | Buffer) => void
  /** Aborted on SIGINT / SIGTERM. */
  signal: AbortSignal
  /** The whole command line, for the archive's record. */
  argv: string[]
}

export interface Command {
  name: string
  usage: string
  summary: string
  options: NonNullable<ParseArgsConfig['options']>
  /** Resolves to the exit code. */
  run(ctx: CommandContext): Promise<number>
}
