/** The files cache: what makes an unchanged re-backup skip reading, and when it must not. */
import t from 'tap'
import * as path from 'node:path'
import { promises as fs } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { FilesCache } from '../lib/archive/files-cache.js'
import { readCheckedBytes, writeCacheFile, writeCheckedParts } from '../lib/cache/cache-file.js'
import { pack, unpack } from '../lib/encoding/msgpack.js'
import { scratch } from './helpers/cli.js'

const file = Buffer.from('/data/report.txt')
const identity = { ino: 42n, size: 100, mtimeNs: 1_000n, ctimeNs: 2_000n }
const chunks = [{ id: Buffer.alloc(32, 7), size: 100 }]
const START = 10_000n
const exists = (): boolean => true

function cacheFile(): string {
  return path.join(scratch('cairn-fc-'), 'files')
}

t.test('an unchanged file is found again after a save and load', async (t) => {
  const where = cacheFile()
  const cache = await FilesCache.load(where)
  cache.remember(file, identity, chunks, START)
  await cache.save()
  const again = await FilesCache.load(where)
  t.same(again.lookup(file, identity, exists)?.map((c) => c.size), [100])
})

/** A cache file holding `file` as remembered with `id`, and the cache loaded from it. */
async function savedAndLoaded(id: typeof identity): Promise<FilesCache> {
  const where = cacheFile()
  const cache = await FilesCache.load(where)
  cache.remember(file, id, chunks, START)
  await cache.save()
  return FilesCache.load(where)
}

t.test('any change of inode, size, mtime or ctime, or a missing chunk, means read it again', async (t) => {
  const cache = await savedAndLoaded(identity)
  t.ok(cache.lookup(file, identity, exists), 'found unchanged')
  for (const change of [{ ino: 43n }, { size: 101 }, { mtimeNs: 1_001n }, { ctimeNs: 2_001n }]) {
    t.equal(cache.lookup(file, { ...identity, ...change }, exists), null, JSON.stringify(change, (_, v) => (typeof v === 'bigint' ? String(v) : v)))
  }
  t.equal(cache.lookup(file, identity, () => false), null, 'a chunk the repository lost')
  t.equal(cache.lookup(Buffer.from('/data/other.txt'), identity, exists), null, 'another path')
})

t.test('a file modified at or after the backup started is not trusted to the cache', async (t) => {
  const cache = await savedAndLoaded({ ...identity, mtimeNs: START })
  t.equal(cache.lookup(file, { ...identity, mtimeNs: START }, exists), null)
  t.ok((await savedAndLoaded({ ...identity, mtimeNs: START - 1n })).lookup(file, { ...identity, mtimeNs: START - 1n }, exists), 'one nanosecond earlier is')
})

t.test('what a backup remembers is for the next one: lookups see the cache as loaded, less what was remembered anew', async (t) => {
  const where = cacheFile()
  const first = await FilesCache.load(where)
  first.remember(file, identity, chunks, START)
  t.equal(first.lookup(file, identity, exists), null, 'not found in the backup that remembered it')
  await first.save()
  const second = await FilesCache.load(where)
  t.ok(second.lookup(file, identity, exists), 'found in the next')
  second.remember(file, { ...identity, size: 101 }, chunks, START)
  t.equal(second.lookup(file, identity, exists), null, 'the entry it replaces is gone at once')
})

t.test('a path remembered twice in one backup: the first entry is kept, the cache stays loadable', async (t) => {
  const where = cacheFile()
  const cache = await FilesCache.load(where)
  cache.remember(file, identity, chunks, START)
  cache.remember(file, { ...identity, ctimeNs: 3_000n }, chunks, START)
  await cache.save()
  const loaded = await FilesCache.load(where)
  t.ok(loaded.lookup(file, identity, exists), 'the first identity is found')
  t.equal(loaded.lookup(file, { ...identity, ctimeNs: 3_000n }, exists), null, 'the second is read again next time')
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

/** Chunk ids and sizes, comparable with t.same. */
function plain(chunks: readonly { id: Buffer; size: number }[] | null): [string, number][] | null {
  return chunks && chunks.map((c) => [c.id.toString('hex'), c.size])
}

function chunksOf(n: number, count: number): { id: Buffer; size: number }[] {
  return Array.from({ length: count }, (_, c) => ({ id: createHash('sha256').update(`chunk ${n}.${c}`).digest(), size: n + c }))
}

function identityOf(n: number): { ino: bigint; size: number; mtimeNs: bigint; ctimeNs: bigint } {
  return { ino: BigInt(n) * 7n + 2n ** 40n, size: n * 3, mtimeNs: -1_000n - BigInt(n), ctimeNs: 2_000n + BigInt(n) } // mtimes before 1970, all before START
}

/** Saves a cache of `count` files /data/file-N of one chunk each; returns their paths. */
async function savedFiles(where: string, count: number, ttl: number): Promise<Buffer[]> {
  const paths = Array.from({ length: count }, (_, n) => Buffer.from(`/data/file-${n}`))
  const cache = await FilesCache.load(where, ttl)
  paths.forEach((p, n) => cache.remember(p, identityOf(n), chunksOf(n, 1), START))
  await cache.save()
  return paths
}

t.test('50,000 files: each found with its own chunks after a save and load, and after deleting a third', async (t) => {
  const where = cacheFile()
  const paths = Array.from({ length: 50_000 }, (_, n) => Buffer.from(`/data/dir-${n % 317}/file-${n}-${randomBytes(4).toString('hex')}`))
  const cache = await FilesCache.load(where)
  paths.forEach((p, n) => cache.remember(p, identityOf(n), chunksOf(n, n % 3), START))
  await cache.save()

  const loaded = await FilesCache.load(where)
  const wrong = (c: FilesCache, n: number): boolean => JSON.stringify(plain(c.lookup(paths[n], identityOf(n), exists))) !== JSON.stringify(plain(chunksOf(n, n % 3)))
  t.same(paths.filter((_, n) => wrong(loaded, n)).length, 0, 'every file found with its chunks')

  for (let n = 0; n < paths.length; n += 3) loaded.remember(paths[n], { ...identityOf(n), mtimeNs: START }, [], START)
  const deletedFound = paths.filter((p, n) => n % 3 === 0 && loaded.lookup(p, identityOf(n), exists) !== null).length
  const othersLost = paths.filter((_, n) => n % 3 !== 0 && wrong(loaded, n)).length
  t.same([deletedFound, othersLost], [0, 0], 'deleted entries gone, every other one still found')
  await loaded.save()
  const again = await FilesCache.load(where)
  t.same(paths.filter((_, n) => (n % 3 === 0 ? again.lookup(paths[n], identityOf(n), exists) !== null : wrong(again, n))).length, 0, 'the same after another save and load')
})

t.test('a changed file replaces its entry and chunk list; only the new chunks are saved', async (t) => {
  const where = cacheFile()
  const first = await FilesCache.load(where)
  first.remember(file, identityOf(1), chunksOf(1, 3), START)
  first.remember(Buffer.from('/data/neighbour'), identityOf(2), chunksOf(2, 2), START)
  await first.save()
  const cache = await FilesCache.load(where)
  t.ok(cache.lookup(Buffer.from('/data/neighbour'), identityOf(2), exists), 'the neighbour is seen')
  cache.remember(file, identityOf(3), chunksOf(3, 1), START)
  t.equal(cache.lookup(file, identityOf(1), exists), null, 'the old identity no longer matches')
  await cache.save()
  const written = (await readCheckedBytes(where))!
  t.same(unpack(written.subarray(4, 4 + written.readUInt32LE(0))), [3, 2, 3], 'chunks saved: the neighbour’s two and the new one')
  const loaded = await FilesCache.load(where)
  t.same(plain(loaded.lookup(file, identityOf(3), exists)), plain(chunksOf(3, 1)))
  t.same(plain(loaded.lookup(Buffer.from('/data/neighbour'), identityOf(2), exists)), plain(chunksOf(2, 2)))
})

t.test('remembering a file modified at or after the backup started deletes its entry', async (t) => {
  const where = cacheFile()
  const cache = await FilesCache.load(where)
  cache.remember(file, identity, chunks, START)
  cache.remember(Buffer.from('/data/neighbour'), identity, chunks, START)
  await cache.save()
  const next = await FilesCache.load(where)
  next.remember(file, { ...identity, mtimeNs: START + 5n }, chunks, START)
  t.equal(next.lookup(file, identity, exists), null, 'the old identity is no longer trusted')
  t.equal(next.lookup(file, { ...identity, mtimeNs: START + 5n }, exists), null)
  await next.save()
  const last = await FilesCache.load(where)
  t.equal(last.lookup(file, identity, exists), null, 'nor after a save and load')
  t.ok(last.lookup(Buffer.from('/data/neighbour'), identity, exists), 'the neighbour stays')
})

t.test('of many files, those seen in each backup stay and the others age out after ttl backups', async (t) => {
  const where = cacheFile()
  const paths = await savedFiles(where, 1000, 3)
  const found = (c: FilesCache, parity: number): number => paths.filter((p, n) => n % 2 === parity && c.lookup(p, identityOf(n), exists)).length
  for (let backup = 1; backup <= 3; backup++) {
    if (backup === 3) {
      // Looking the others up would mark them seen: look in a copy.
      await fs.copyFile(where, `${where}-copy`)
      t.equal(found(await FilesCache.load(`${where}-copy`, 3), 1), 500, 'unseen in 2 backups: still there')
    }
    const cache = await FilesCache.load(where, 3)
    t.equal(found(cache, 0), 500, `backup ${backup}: the seen half is there`)
    await cache.save()
  }
  const last = await FilesCache.load(where, 3)
  t.equal(found(last, 1), 0, 'unseen in 3 backups: gone')
  t.equal(found(last, 0), 500)
})

t.test('an older, damaged or inconsistent file reads as an empty cache, and the next save replaces it', async (t) => {
  const where = cacheFile()
  const key = createHash('sha256').update(file).digest().subarray(0, 16)
  await writeCacheFile(where, [1, [[key, 42, 100, [0, 1000], [0, 2000], Buffer.alloc(32, 7), [100], 0]]])
  const fromV1 = await FilesCache.load(where)
  t.equal(fromV1.lookup(file, identity, exists), null, 'version 1 is ignored')
  const le = (bytes: number, value: number): Buffer => Buffer.from(new BigUint64Array([BigInt(value)]).buffer).subarray(0, bytes)
  await writeCacheFile(where, [2, 1, key, le(8, 42), Buffer.from(new Float64Array([100]).buffer), le(8, 1000), le(8, 2000), le(4, 0), le(4, 1), Buffer.alloc(32, 7), le(4, 100)])
  const fromV2 = await FilesCache.load(where)
  t.equal(fromV2.lookup(file, identity, exists), null, 'version 2 is ignored')
  fromV2.remember(file, identity, chunks, START)
  await fromV2.save()

  const saved = (await readCheckedBytes(where))!
  const headerEnd = 4 + saved.readUInt32LE(0)
  t.same(unpack(saved.subarray(4, headerEnd)), [3, 1, 1], 'rewritten as version 3: one entry, one chunk')
  t.equal(saved.length - headerEnd, 16 + 4 * 8 + 2 * 4 + 32 + 4, 'followed by the columns and nothing else')
  t.ok((await FilesCache.load(where)).lookup(file, identity, exists))

  const rewrite = async (header: unknown[], columns: Buffer): Promise<void> => {
    const packed = pack(header)
    const length = Buffer.alloc(4)
    length.writeUInt32LE(packed.length)
    await writeCheckedParts(where, [length, packed, columns])
  }
  await rewrite([3, 2, 1], saved.subarray(headerEnd))
  t.equal((await FilesCache.load(where)).lookup(file, identity, exists), null, 'a count that disagrees with the columns')
  await rewrite([3, 1, 2], saved.subarray(headerEnd))
  t.equal((await FilesCache.load(where)).lookup(file, identity, exists), null, 'a chunk count that disagrees with the columns')
  await rewrite([3, 1, 1], saved.subarray(headerEnd, saved.length - 4))
  t.equal((await FilesCache.load(where)).lookup(file, identity, exists), null, 'a column cut short')

  await rewrite([3, 1, 1], saved.subarray(headerEnd))
  t.ok((await FilesCache.load(where)).lookup(file, identity, exists), 'the same parts written again read back')
  const bytes = await fs.readFile(where)
  bytes[20] ^= 1
  await fs.writeFile(where, bytes)
  t.equal((await FilesCache.load(where)).lookup(file, identity, exists), null, 'a flipped bit')
})

t.test('a backup that saw every file and remembered nothing leaves the file as it was', async (t) => {
  const where = cacheFile()
  const first = await FilesCache.load(where)
  first.remember(file, identity, chunks, START)
  await first.save()
  const written = (await fs.stat(where)).ino

  const seeingAll = await FilesCache.load(where)
  seeingAll.lookup(file, identity, exists)
  await seeingAll.save()
  t.equal((await fs.stat(where)).ino, written, 'not rewritten')

  await (await FilesCache.load(where)).save()
  t.not((await fs.stat(where)).ino, written, 'a backup that did not see it rewrites the file (the entry aged)')
})

t.test('thousands of files touched before the cache is loaded all stay', async (t) => {
  const where = cacheFile()
  const paths = await savedFiles(where, 3000, 2)
  for (let backup = 1; backup <= 3; backup++) {
    const cache = FilesCache.deferred(where, 2)
    for (const p of paths) cache.touch(p)
    await cache.ready()
    cache.remember(Buffer.from(`/data/new-${backup}`), identity, chunks, START)
    await cache.save()
  }
  const last = await FilesCache.load(where, 2)
  t.equal(paths.filter((p, n) => last.lookup(p, identityOf(n), exists)).length, paths.length)
})
