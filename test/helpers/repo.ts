import t from 'tap'
import * as path from 'node:path'
import { Repository, type ChunkerParams } from '../../dist/lib/index.js'
import { scratch } from './cli.js'

/** A fresh repokey repository (default chunker parameters unless given) in a scratch dir, with a cheap KDF, closed when the test file ends. */
export async function newTestRepository(chunker?: ChunkerParams): Promise<Repository> {
  const home = scratch()
  const repo = await Repository.init({ location: path.join(home, 'repo'), encryption: 'repokey', passphrase: 'pw', configDir: path.join(home, 'config'), cacheDir: path.join(home, 'cache'), kdf: { N: 1024 }, chunker })
  t.teardown(() => repo.close())
  return repo
}
