/**
 * The local chunk index cache (lib/repo/index-cache.ts): what is written reads back exactly, read a
 * piece at a time, and a cache that is damaged, truncated, of another repository or of an older layout
 * reads as null (so it is rebuilt from the repository) instead of being trusted.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { scratch } from './helpers/cli.js'
import { IndexState, readIndexCache, writeCache } from '../dist/lib/repo/index-cache.js'
import { writeCacheFile } from '../dist/lib/cache/cache-file.js'

const REPO = 'a'.repeat(64)

/** An index of `blobs` blobs over a few packs and index objects. */
function sampleState(blobs: number): IndexState {
  const state = new IndexState()
  const packs = Array.from({ length: 5 }, () => randomBytes(32).toString('hex'))
  for (let k = 0; k < 3; k++) {
    const entries = packs.map((packId, p) => ({
      packId,
      blobs: Array.from({ length: Math.ceil(blobs / 15) }, (_, i) => ({ type: 0, id: randomBytes(32), offset: i * 1000 + p, length: 100 + i, rawLength: 200 + k })),
    }))
    state.add(`index/${randomBytes(32).toString('hex')}`, entries)
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

t.test('what is written reads back exactly, small and over many pieces', async (t) => {
  for (const blobs of [0, 10, 60_000]) {
    const state = sampleState(blobs)
    const file = path.join(scratch(), 'chunks')
    await writeCache(file, REPO, state)
    if (blobs === 60_000) t.ok((await fs.stat(file)).size > 2 * 1024 * 1024, 'larger than one piece')
    same(t, await readIndexCache(file, REPO), state, `${state.index.size} blobs`)
  }
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
  }
  await fs.writeFile(file, good)
  t.equal(await readIndexCache(file, 'b'.repeat(64)), null, 'another repository\'s cache')
  await writeCacheFile(file, [1, REPO, [], [], state.index.serialize()])
  t.equal(await readIndexCache(file, REPO), null, 'the layout before version 2')
  t.equal(await readIndexCache(path.join(scratch(), 'missing'), REPO), null, 'no file')
})
