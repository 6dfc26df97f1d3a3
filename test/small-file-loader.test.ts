/**
 * The batch loader the mount uses to take a directory's small files ahead (lib/cache/small-file-loader.ts,
 * lib/native/blob-batch.c): in every encryption mode it gives exactly the bytes a plain read gives, stored,
 * compressed, split into chunks or all zeros, without a storage read through the backend; a damaged or missing
 * blob fails its own file and no other.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { scratch } from './helpers/cli.js'
import { damageBlob } from './helpers/damage.js'
import { ArchiveReader, LocalBackend, Repository, createArchiveFromEntries, type EntrySpec, type Item } from '../dist/lib/index.js'

/** Counts what goes through the backend's own reads. */
class CountingBackend extends LocalBackend {
  ranges = 0
  override async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    this.ranges++
    return super.getRange(key, offset, length)
  }
}

/** A backend whose packs are not local files (as ssh or S3 would be): the loader's other way. */
class RemoteLikeBackend extends LocalBackend {
  override localPath = undefined
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1')
const text = (i: number): Buffer => b(`line ${i} of a file that compresses well, `.repeat(40 + i))

function sources(): Map<string, Buffer> {
  const files = new Map<string, Buffer>()
  for (let i = 0; i < 40; i++) files.set(`random-${i}`, randomBytes(200 + i * 97))
  for (let i = 0; i < 40; i++) files.set(`text-${i}`, text(i))
  files.set('zeros', Buffer.alloc(70_000))
  files.set('split', randomBytes(200_000)) // several chunks with the small chunker below
  files.set('split-text', Buffer.concat(Array.from({ length: 60 }, (_, i) => text(i))))
  return files
}

async function archiveOf(mode: 'repokey' | 'authenticated' | 'none', files: Map<string, Buffer>, backendClass = CountingBackend) {
  const home = scratch()
  const backend = new backendClass(path.join(home, 'repo'))
  const repo = await Repository.init({
    location: backend, encryption: mode, passphrase: 'pw', configDir: path.join(home, 'config'), cacheDir: null, kdf: { N: 1024 },
    chunker: { minSize: 16 * 1024, avgSize: 32 * 1024, maxSize: 64 * 1024 },
  })
  t.teardown(() => repo.close())
  const entries: EntrySpec[] = [...files].map(([name, content]) => ({ path: `dir/${name}`, kind: 'file', content }))
  await createArchiveFromEntries(repo, entries, { name: 'a' })
  const reader = await ArchiveReader.open(repo, 'a')
  const items: Item[] = []
  const dir = (await reader.resolve(b('dir')))!
  for await (const item of reader.entries({ tree: dir.tree!, item: dir })) items.push(item)
  return { repo, backend, reader, items }
}

for (const mode of ['repokey', 'authenticated', 'none'] as const) {
  t.test(`${mode}: every file's exact bytes, in one batch off the backend's reads`, async (t) => {
    const files = sources()
    const { backend, reader, items } = await archiveOf(mode, files)
    t.ok(items.some((i) => (i.chunks?.length ?? 0) > 2), 'a file of several chunks')
    backend.ranges = 0
    const contents = await reader.caches.smallFiles(items)
    items.forEach((item, i) => t.same(contents[i], files.get(item.name.toString('latin1')), item.name.toString('latin1')))
    t.equal(backend.ranges, 0, 'packs read by the native batch, not through the backend')
  })
}

t.test('a damaged blob fails its own file; a pack cut short fails the files past the cut', async (t) => {
  const files = sources()
  const { repo, backend, reader, items } = await archiveOf('repokey', files)
  const victim = items.find((i) => i.name.equals(b('text-7')))!
  await damageBlob(repo, backend.root, victim.chunks![0]!.id)
  const contents = await reader.caches.smallFiles(items)
  items.forEach((item, i) => {
    if (item === victim) t.equal(contents[i], null, 'the damaged file is not given')
    else if (!contents[i]?.equals(files.get(item.name.toString('latin1'))!)) t.fail(`${item.name.toString('latin1')}: other bytes`)
  })
  await t.rejects(reader.content(victim).read(0, 1 << 20), { code: 'integrity' }, 'its own read says why')

  const state = await repo.index()
  const located = await Promise.all(items.map(async (item) => state.locate(item.chunks![0]!.id)))
  const pack = located[0]!.pack
  // Single-chunk files of that pack (not the all-zero file, which has no blob)
  const inPack = items.map((_, i) => i).filter((i) => located[i]?.pack === pack && items[i] !== victim && items[i]!.chunks!.length === 1)
  const cut = located[inPack[Math.floor(inPack.length / 2)]!]!.offset
  await fs.truncate(path.join(backend.root, 'data', state.packs.idOf(pack).slice(0, 2), state.packs.idOf(pack)), cut)
  const after = await reader.caches.smallFiles(items)
  const before = inPack.filter((i) => located[i]!.offset + located[i]!.length <= cut)
  const past = inPack.filter((i) => located[i]!.offset >= cut)
  t.ok(before.length > 3 && past.length > 3, `${before.length} files before the cut, ${past.length} past it`)
  t.ok(before.every((i) => after[i]?.equals(files.get(items[i]!.name.toString('latin1'))!)), 'files before the cut load')
  t.ok(past.every((i) => after[i] === null), 'files past the cut are not given')
})

t.test('packs that are not local files: the same bytes through the chunk cache', async (t) => {
  const files = sources()
  const { reader, items } = await archiveOf('repokey', files, RemoteLikeBackend)
  const contents = await reader.caches.smallFiles(items)
  items.forEach((item, i) => t.same(contents[i], files.get(item.name.toString('latin1')), item.name.toString('latin1')))
})
