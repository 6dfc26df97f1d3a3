/**
 * Everything the CLI takes from the environment, read in one place:
 * CAIRN_REPO, CAIRN_PASSPHRASE, CAIRN_PASSCOMMAND, CAIRN_CACHE_DIR,
 * CAIRN_CONFIG_DIR, CAIRN_FILES_CACHE_TTL, CAIRN_DEBUG.
 */
import * as os from 'node:os'
import * as path from 'node:path'
import { CairnError } from '../lib/errors.js'

export interface Environment {
  repo: string | undefined
  passphrase: string | undefined
  passcommand: string | undefined
  cacheDir: string
  configDir: string
  filesCacheTtl: number | undefined
  debug: boolean
}

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const home = os.homedir()
  const ttlText = env.CAIRN_FILES_CACHE_TTL
  const ttl = ttlText === undefined ? undefined : Number(ttlText)
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1)) {
    throw new CairnError('bad-config', `CAIRN_FILES_CACHE_TTL must be a whole number of backups (got ${JSON.stringify(ttlText)})`)
  }
  return {
    repo: env.CAIRN_REPO || undefined,
    passphrase: env.CAIRN_PASSPHRASE,
    passcommand: env.CAIRN_PASSCOMMAND || undefined,
    cacheDir: env.CAIRN_CACHE_DIR || path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'cairn'),
    configDir: env.CAIRN_CONFIG_DIR || path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'cairn'),
    filesCacheTtl: ttl,
    debug: env.CAIRN_DEBUG === '1',
  }
}
