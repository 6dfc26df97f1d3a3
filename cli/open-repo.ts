import { Repository } from '../lib/index.js'
import type { Environment } from './environment.js'
import { passphraseSource } from './passphrase.js'

/**
 * Opens the repository at `location` with the passphrase, key and cache
 * settings from the environment; `preloadIndex` for commands that will need
 * the chunk index (see RepositoryOptions).
 */
export function openRepository(env: Environment, location: string, options: { preloadIndex?: boolean } = {}): Promise<Repository> {
  return Repository.open({ location, passphrase: passphraseSource(env, false), configDir: env.configDir, cacheDir: env.cacheDir, ...options })
}
