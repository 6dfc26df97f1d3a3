/** A fresh repokey repository in a scratch dir, with a cheap KDF, closed when the test file ends. */
import t from 'tap'
import * as path from 'node:path'
import { Repository } from '../../dist/lib/index.js'
import { scratch } from './cli.js'

export async function newTestRepository(): Promise<Repository> {
  const home = scratch()
  const repo = await Repository.init({ location: path.join(home, 'repo'), encryption: 'repokey', passphrase: 'pw', configDir: path.join(home, 'config'), cacheDir: path.join(home, 'cache'), kdf: { N: 1024 } })
  t.teardown(() => repo.close())
  return repo
}
