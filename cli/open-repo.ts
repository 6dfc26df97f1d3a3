import { Repository } from '../lib/index.js'
import type { Environment } from './environment.js'
import { passphraseSource } from './passphrase.js'

/** Opens the repository at `location` with the passphrase, key and cache settings from the environment. */
export function openRepository(env: Environment, location: string): Promise<Repository> {
  return Repository.open({ location, passphrase: passphraseSource(env, false), configDir: env.configDir, cacheDir: env.cacheDir })
}
