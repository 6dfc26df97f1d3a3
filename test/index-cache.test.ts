/**
 * The local chunk index cache (lib/repo/index-cache.ts): what is written reads back exactly, read a
 * piece at a time into memory or looked up in the file (as a mount does), and a cache that is damaged,
 * truncated, of another repository or of an older layout reads as null (so it is rebuilt from the
 * repository) instead of being trusted.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { scratch } from './helpers/cli.js'
import { IndexState, readIndexCache, writeCache } from '../dist/lib/repo/index-cache.js'
import { writeCacheFile } from '../dist/lib/cache/cache-file.js'
import { readCachedSync } from '../dist/lib/native/posix.js'
import { cachedBytes, evictFromPageCache } from './helpers/page-cache.js'

const REPO = 'a'.repeat(64)

/** An index of `blobs` blobs over a few packs and index objects. */
function sampleState(blobs: number): IndexState {
  const state = new IndexState()
  const packs = Array.from({ length: 5 }, () => randomBytes(32).toString('hex'))
  for (let k = 0; k < 3; k++) {
    const listed = packs.flatMap((packId, p) =>
      Array.from({ length: Math.ceil(blobs / 15) }, (_, i) => ({ packId, type: 0, id: randomBytes(32), offset: i * 1000 + p, length: 100 + i, rawLength: 200 + k })),
    )
    state.add(`index/${randomBytes(32).toString('hex')}`, listed)
  }
  return state
}

function same(t: Tap.Test, a: IndexState | null, b: IndexState, what: string): void {
  t.ok(a, `${what}: read back`)
  if (!a) return
  t.same([...a.merged].sort(), [...b.merged].sort(), `${what}: merged index objects`)
  t.same(a.packs.all(), b.packs.all(), `${what}: pack table`)
  t.equal(a.index.size, b.index.size, `${what}: blob count`)
  let differ = 0
  for (const [id, loc] of b.index.entries()) {
    const got = a.index.get(id)
    if (!got || got.pack !== loc.pack || got.offset !== loc.offset || got.length !== loc.length || got.rawLength !== loc.rawLength) differ++
  }
  t.equal(differ, 0, `${what}: every location`)
}

/** Every blob of `b` is found in `a`'s file, at its location; ids it does not have are not. */
async function sameLookups(t: Tap.Test, a: IndexState | null, b: IndexState, what: string): Promise<void> {
  t.ok(a?.file, `${what}: read for lookups in the file`)
  if (!a?.file) return
  t.equal(a.index.size, 0, `${what}: nothing held in memory but the fence`)
  t.equal(a.file.size, b.index.size, `${what}: blob count`)
  t.same(a.packs.all(), b.packs.all(), `${what}: pack table`)
  let differ = 0
  for (const [id, loc] of b.index.entries()) {
    const got = await a.locate(id)
    if (!got || got.pack !== loc.pack || got.offset !== loc.offset || got.length !== loc.length || got.rawLength !== loc.rawLength) differ++
  }
  t.equal(differ, 0, `${what}: every location`)
  const absent = await Promise.all(Array.from({ length: 2000 }, () => a.locate(randomBytes(32))))
  t.ok(absent.every((loc) => loc === undefined), `${what}: an id it does not have is not found`)
  await a.close()
}

t.test('what is written reads back exactly, small and over many pieces, into memory or for lookups', async (t) => {
  for (const blobs of [0, 10, 60_000]) {
    const state = sampleState(blobs)
    const file = path.join(scratch(), 'chunks')
    await writeCache(file, REPO, state)
    if (blobs === 60_000) t.ok((await fs.stat(file)).size > 2 * 1024 * 1024, 'larger than one piece')
    same(t, await readIndexCache(file, REPO), state, `${state.index.size} blobs`)
    await sameLookups(t, await readIndexCache(file, REPO, true), state, `${state.index.size} blobs, lookups`)
  }
})

t.test('lookups keep at most a quarter of a byte a blob, and closing waits for the lookups under way', async (t) => {
  const state = sampleState(200_000)
  const file = path.join(scratch(), 'chunks')
  await writeCache(file, REPO, state)
  const lookups = (await readIndexCache(file, REPO, true))!
  const fence = lookups.file!.byteLength
  t.ok(fence <= state.index.size / 4 + 8, `${fence} bytes for ${state.index.size} blobs (the table in memory: ${state.index.byteLength})`)
  const [id, loc] = state.index.entries().next().value!
  const under = lookups.locate(id)
  const closing = lookups.close()
  t.same(await under, loc, 'a lookup under way is answered')
  await closing
  t.equal(await lookups.locate(id), undefined, 'one after close finds nothing: its caller looks again in the index that replaced it')
})

t.test('lookups in a file the page cache no longer holds are read through the thread pool, and are right', async (t) => {
  const state = sampleState(30_000)
  const file = path.join(scratch(), 'chunks')
  await writeCache(file, REPO, state)
  const lookups = (await readIndexCache(file, REPO, true))!
  evictFromPageCache(file)
  const probe = await fs.open(file, 'r')
  const cached = readCachedSync(probe.fd, Buffer.alloc(48), 1000)
  await probe.close()
  t.equal(cached, -1, 'the file is out of the page cache: no lookup is answered on the spot')
  await sameLookups(t, lookups, state, 'after eviction')
})

t.test('a few lookups that miss the page cache bring the whole file back into it', async (t) => {
  const state = sampleState(200_000)
  const file = path.join(scratch(), 'chunks')
  await writeCache(file, REPO, state)
  const size = (await fs.stat(file)).size
  const lookups = (await readIndexCache(file, REPO, true))!
  evictFromPageCache(file)
  const before = cachedBytes(file)
  if (before === null) return t.skip('no fincore here to tell what the page cache holds')
  t.ok(before < size / 4, `evicted: ${before} of ${size} bytes cached`)
  const ids = [...state.index.entries()].slice(0, 9)
  for (const [id, loc] of ids) t.same(await lookups.locate(id), loc, 'a lookup after eviction is right')
  let cached = cachedBytes(file)!
  for (const until = Date.now() + 10_000; cached < size && Date.now() < until; cached = cachedBytes(file)!) await new Promise((r) => setTimeout(r, 20))
  t.ok(cached >= size, `nine lookups read nine runs, and the whole file is cached again (${cached} bytes in pages, of ${size})`)
  await lookups.close()
})

t.test('a damaged, truncated, foreign or old cache reads as null', async (t) => {
  const state = sampleState(3000)
  const file = path.join(scratch(), 'chunks')
  await writeCache(file, REPO, state)
  const good = await fs.readFile(file)
  const headerLength = good.readUInt32LE(0)
  const cases: [string, Buffer][] = [
    ['a flipped byte in the header', Buffer.from(good).fill(good[10]! ^ 1, 10, 11)],
    ['a flipped byte in a record', Buffer.from(good).fill(good[good.length - 500]! ^ 1, good.length - 500, good.length - 499)],
    ['a flipped byte in the table digest', Buffer.from(good).fill(good[good.length - 1]! ^ 1, good.length - 1)],
    ['cut short', good.subarray(0, good.length - 7)],
    ['cut inside the header', good.subarray(0, 4 + Math.floor(headerLength / 2))],
    ['longer', Buffer.concat([good, Buffer.alloc(48)])],
    ['empty', Buffer.alloc(0)],
  ]
  for (const [what, bytes] of cases) {
    await fs.writeFile(file, bytes)
    t.equal(await readIndexCache(file, REPO), null, what)
    t.equal(await readIndexCache(file, REPO, true), null, `${what}, read for lookups`)
  }
  await fs.writeFile(file, good)
  t.equal(await readIndexCache(file, 'b'.repeat(64)), null, 'another repository\'s cache')
  await writeCacheFile(file, [1, REPO, [], [], state.index.serialize()])
  t.equal(await readIndexCache(file, REPO), null, 'the layout before version 2')
  await writeCacheFile(file, [2, REPO, [], [], state.index.serialize()])
  t.equal(await readIndexCache(file, REPO, true), null, 'the layout before version 3, whose table was not in id order')
  t.equal(await readIndexCache(path.join(scratch(), 'missing'), REPO), null, 'no file')
})
