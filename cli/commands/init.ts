import { Repository, type EncryptionMode } from '../../lib/index.js'
import type { Command } from '../command.js'
import { EXIT_OK, usageError } from '../exit.js'
import { parseLocation } from '../location.js'
import { passphraseSource } from '../passphrase.js'

const MODES: EncryptionMode[] = ['repokey', 'keyfile', 'authenticated', 'none']

export const init: Command = {
  name: 'init',
  usage: 'init [--encryption repokey|keyfile|authenticated|none] REPO',
  summary: 'create a new, empty repository',
  options: { encryption: { type: 'string', short: 'e', default: 'repokey' } },
  async run({ values, positionals, env, out }) {
    const mode = values.encryption as EncryptionMode
    if (!MODES.includes(mode)) throw usageError(`unknown encryption mode ${JSON.stringify(mode)} (choose ${MODES.join(', ')})`)
    const loc = parseLocation(positionals[0], env.repo)
    const repo = await Repository.init({
      location: loc.repo,
      encryption: mode,
      passphrase: mode === 'none' ? undefined : passphraseSource(env, true),
      configDir: env.configDir,
      cacheDir: env.cacheDir,
    })
    out(`Initialized repository ${loc.repo} (id ${repo.id.slice(0, 16)}…, encryption ${mode}).\n`)
    if (mode === 'keyfile') out(`The key is in ${env.configDir}/keys/${repo.id}: without it and the passphrase the backups cannot be read. Keep a copy elsewhere.\n`)
    if (mode === 'repokey' || mode === 'authenticated') out('The key is stored in the repository, protected by the passphrase: without the passphrase the backups cannot be read.\n')
    return EXIT_OK
  },
}
