/**
 * Wraps the mount's chunk loader so that a damaged chunk (missing from the
 * repository, or failing authentication) is logged once and then fails fast
 * for a while instead of being fetched again for every read that touches
 * it: a damaged 8 MiB chunk would otherwise be re-read for each of the 64
 * FUSE reads over it, and reading around it (allow_damaged_files) probes it
 * a few dozen times more.
 */
import { LRUCache } from 'lru-cache'
import { isCairnError } from '../lib/index.js'

const REMEMBER_MS = 30_000

export type ChunkLoad = (id: Buffer) => Promise<Buffer>

export function rememberDamage(load: ChunkLoad, log: (message: string) => void): ChunkLoad {
  const damaged = new LRUCache<string, Error>({ max: 4096, ttl: REMEMBER_MS })
  return async (id) => {
    const key = id.toString('hex')
    const known = damaged.get(key)
    if (known) throw known
    try {
      return await load(id)
    } catch (err) {
      if (isCairnError(err, 'integrity') || isCairnError(err, 'missing-object')) {
        damaged.set(key, err)
        log(`chunk ${key.slice(0, 16)}… is damaged: ${err.message}`)
      } else {
        log(`chunk ${key.slice(0, 16)}… could not be read: ${(err as Error)?.message ?? String(err)}`)
      }
      throw err
    }
  }
}
