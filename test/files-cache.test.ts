/** The files cache: what makes an unchanged re-backup skip reading, and when it must not. */
import t from 'tap'
import * as path from 'node:path'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { FilesCache } from '../lib/archive/files-cache.js'

const file = Buffer.from('/data/report.txt')
const identity = { ino: 42n, size: 100, mtimeNs: 1_000n, ctimeNs: 2_000n }
const chunks = [{ id: Buffer.alloc(32, 7), size: 100 }]
const START = 10_000n
const exists = (): boolean => true

function cacheFile(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'cairn-fc-')), 'files')
}

t.test('an unchanged file is found again after a save and load', async (t) => {
  const where = cacheFile()
  const cache = await FilesCache.load(where)
  cache.remember(file, identity, chunks, START)
  await cache.save()
  const again = await FilesCache.load(where)
  t.same(again.lookup(file, identity, exists)?.map((c) => c.size), [100])
})

t.test('any change of inode, size, mtime or ctime, or a missing chunk, means read it again', async (t) => {
  const cache = await FilesCache.load(null)
  cache.remember(file, identity, chunks, START)
  for (const change of [{ ino: 43n }, { size: 101 }, { mtimeNs: 1_001n }, { ctimeNs: 2_001n }]) {
    t.equal(cache.lookup(file, { ...identity, ...change }, exists), null, JSON.stringify(change, (_, v) => (typeof v === 'bigint' ? String(v) : v)))
  }
  t.equal(cache.lookup(file, identity, () => false), null, 'a chunk the repository lost')
  t.equal(cache.lookup(Buffer.from('/data/other.txt'), identity, exists), null, 'another path')
})

t.test('a file modified at or after the backup started is not trusted to the cache', async (t) => {
  const cache = await FilesCache.load(null)
  cache.remember(file, { ...identity, mtimeNs: START }, chunks, START)
  t.equal(cache.lookup(file, { ...identity, mtimeNs: START }, exists), null)
})

t.test('entries age out after ttl backups in which the file was not seen', async (t) => {
  const where = cacheFile()
  let cache = await FilesCache.load(where, 3)
  cache.remember(file, identity, chunks, START)
  await cache.save()
  for (let backup = 1; backup <= 2; backup++) {
    cache = await FilesCache.load(where, 3)
    await cache.save() // a backup that did not see the file
  }
  cache = await FilesCache.load(where, 3)
  t.ok(cache.lookup(file, identity, exists), 'still there after 2 unseen backups')
  await cache.save() // seen again: age back to 0
  for (let backup = 1; backup <= 3; backup++) {
    cache = await FilesCache.load(where, 3)
    await cache.save()
  }
  cache = await FilesCache.load(where, 3)
  t.equal(cache.lookup(file, identity, exists), null, 'gone after 3 unseen backups')
})

t.test('a deferred cache: touches before loading count, and an unloaded cache is left as it was', async (t) => {
  const where = cacheFile()
  const first = await FilesCache.load(where, 2)
  first.remember(file, identity, chunks, START)
  await first.save()
  const before = await import('node:fs/promises').then((fs) => fs.readFile(where))

  const untouched = FilesCache.deferred(where, 2)
  await untouched.save()
  t.ok((await import('node:fs/promises').then((fs) => fs.readFile(where))).equals(before), 'never loaded: the file is not rewritten')

  // Two backups that only touch the file (its directory came from the tree
  // cache) and load the cache later: the entry must not age out (ttl 2).
  for (let backup = 1; backup <= 3; backup++) {
    const cache = FilesCache.deferred(where, 2)
    cache.touch(file)
    await cache.ready()
    cache.remember(Buffer.from(`/data/new-${backup}`), identity, chunks, START) // something changed elsewhere
    await cache.save()
  }
  const last = await FilesCache.load(where, 2)
  t.ok(last.lookup(file, identity, exists), 'touched before loading: still cached after more backups than the ttl')
})
