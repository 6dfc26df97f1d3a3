/**
 * A backup writes index objects as its packs finish, not only at its commit: one that dies keeps the
 * blobs its finished packs hold, and the next backup finds them instead of storing them again.
 */
import t from 'tap'
import * as path from 'node:path'
import { randomBytes } from 'node:crypto'
import { Repository } from '../dist/lib/index.js'
import { RepositoryWriter } from '../dist/lib/repo/writer.js'
import { parseCompressionSpec } from '../dist/lib/compress/codec.js'
import { newTestRepository } from './helpers/repo.js'

const none = parseCompressionSpec('none')
// lib/repo/blob.ts's BlobType (a const enum, gone from the compiled code).
const DATA = 0
const ARCHIVE = 2
const MiB = 1024 * 1024

async function indexObjects(repo: Repository): Promise<string[]> {
  const keys: string[] = []
  for await (const info of repo.backend.list('index/')) keys.push(info.key)
  return keys
}

t.test('a backup that dies after a pack finished keeps that pack, and the next one reuses it', async (t) => {
  const repo = await newTestRepository()
  t.equal(repo.config.packSize, 16 * MiB, 'packs close at 16 MiB')
  // Three 6 MiB blobs: the first pack closes after the third (18 MiB); the fourth goes into a pack that never finishes.
  const blobs = Array.from({ length: 4 }, () => randomBytes(6 * MiB))
  const writer = await RepositoryWriter.start(repo, { indexSliceBytes: 1 })
  const ids: Buffer[] = []
  for (const data of blobs) ids.push(await writer.storeBlob(DATA, data, none))
  // Wait until the first pack is durable and named by an index object, as it would be while a backup goes on.
  for (let i = 0; i < 200 && (await indexObjects(repo)).length === 0; i++) await new Promise((r) => setTimeout(r, 25))
  t.equal((await indexObjects(repo)).length, 1, 'an index object was written before any commit')
  await writer.abort()
  t.same(await repo.archives(), [], 'nothing was committed')

  const home = path.dirname(repo.backend.location)
  const fresh = await Repository.open({ location: repo.backend.location, passphrase: 'pw', configDir: path.join(home, 'config'), cacheDir: null })
  t.teardown(() => fresh.close())
  const second = await RepositoryWriter.start(fresh)
  t.same(ids.map((id) => second.has(id)), [true, true, true, false], 'a new writer finds the finished pack\'s blobs, not the lost one')
  for (const [i, id] of ids.slice(0, 3).entries()) t.ok((await fresh.loadBlob(DATA, id)).equals(blobs[i]!), `blob ${i} reads back`)
  for (const data of blobs) await second.storeBlob(DATA, data, none)
  t.equal(second.stats.newBlobs, 1, 'only the lost blob is stored again')
  await second.abort()
})

t.test('a commit writes its index in objects of about indexSliceBytes, which together name every blob', async (t) => {
  const repo = await newTestRepository()
  const writer = await RepositoryWriter.start(repo, { indexSliceBytes: 1 })
  const blobs = Array.from({ length: 6 }, () => randomBytes(6 * MiB))
  const ids: Buffer[] = []
  for (const data of blobs) ids.push(await writer.storeBlob(DATA, data, none))
  const archive = await writer.storeBlob(ARCHIVE, Buffer.from('not read here'), none)
  await writer.commit({ name: 'a', id: archive, time: 1n })
  // Two full packs of data, then at the commit the third and the metadata pack: one index object each time.
  t.equal((await indexObjects(repo)).length, 3, 'three index objects')
  const home = path.dirname(repo.backend.location)
  const fresh = await Repository.open({ location: repo.backend.location, passphrase: 'pw', configDir: path.join(home, 'config'), cacheDir: null })
  t.teardown(() => fresh.close())
  for (const [i, id] of ids.entries()) t.ok((await fresh.loadBlob(DATA, id)).equals(blobs[i]!), `blob ${i} reads back`)
  t.equal((await fresh.loadBlob(ARCHIVE, archive)).toString(), 'not read here')
})
