/**
 * Where the passphrase comes from: CAIRN_PASSPHRASE, else the output of
 * CAIRN_PASSCOMMAND, else a prompt on the terminal (asked twice when a new
 * repository is made). With no terminal and neither variable the command
 * fails at once instead of hanging.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { CairnError } from '../lib/errors.js'
import type { Environment } from './environment.js'
import { promptHidden } from './prompt.js'

const run = promisify(execFile)

export function passphraseSource(env: Environment, confirm: boolean): () => Promise<string> {
  return async () => {
    if (env.passphrase !== undefined) return env.passphrase
    if (env.passcommand) {
      try {
        const { stdout } = await run('/bin/sh', ['-c', env.passcommand], { maxBuffer: 1024 * 1024 })
        return stdout.replace(/\r?\n$/, '')
      } catch (err) {
        throw new CairnError('no-passphrase', `CAIRN_PASSCOMMAND failed: ${(err as Error).message.split('\n')[0]}`, { hint: 'fix the command or set CAIRN_PASSPHRASE' })
      }
    }
    if (!process.stdin.isTTY) {
      throw new CairnError('no-passphrase', 'no passphrase given and no terminal to ask on', { hint: 'set CAIRN_PASSPHRASE or CAIRN_PASSCOMMAND' })
    }
    const first = await promptHidden('Enter passphrase: ')
    if (confirm) {
      const second = await promptHidden('Enter the same passphrase again: ')
      if (first !== second) throw new CairnError('bad-argument', 'the passphrases did not match', { hint: 'run the command again' })
    }
    return first
  }
}
