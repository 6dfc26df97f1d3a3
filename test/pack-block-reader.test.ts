/**
 * Trees loaded through blocks of their packs (lib/cache/pack-block-reader.ts): the same bytes as loading
 * each blob alone, in far fewer storage reads, and a damaged block fails its own trees only.
 */
import t from 'tap'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { scratch } from './helpers/cli.js'
import { ArchiveReader, LocalBackend, Repository, blockedTreeLoader, createArchive } from '../dist/lib/index.js'
import { decodeTree } from '../dist/lib/archive/tree.js'
import { packKey } from '../dist/lib/repo/pack-table.js'

const TREE = 1
const PASS = 'pack-block-reader-test'

/** Counts getRange calls (storage reads) of a local backend. */
class CountingBackend extends LocalBackend {
  reads = 0
  override getRange(key: string, offset: number, length: number): Promise<Buffer> {
    this.reads++
    return super.getRange(key, offset, length)
  }
}

async function repoWithManyTrees(): Promise<string> {
  const src = scratch()
  for (let d = 0; d < 150; d++) {
    const dir = path.join(src, `dir${String(d).padStart(3, '0')}`, 'inner')
    await fs.mkdir(dir, { recursive: true })
    for (let f = 0; f < 12; f++) await fs.writeFile(path.join(dir, `a-long-enough-file-name-${f}`), `${d}/${f}\n`)
  }
  const location = path.join(scratch(), 'repo')
  const dirs = { cacheDir: path.join(scratch(), 'cache'), configDir: path.join(scratch(), 'config') }
  const repo = await Repository.init({ location, encryption: 'repokey', passphrase: PASS, kdf: { N: 1024 }, ...dirs })
  await createArchive(repo, { name: 'a', paths: [src] })
  return location
}

const location = await repoWithManyTrees()
const open = async (backend: LocalBackend) => Repository.open({ location: backend, passphrase: PASS, cacheDir: null, configDir: path.join(scratch(), 'unused') })

/** Every tree id of archive `a`, parents before children. */
async function treeIds(repo: Repository): Promise<Buffer[]> {
  const reader = await ArchiveReader.open(repo, 'a')
  const ids: Buffer[] = []
  const todo = [reader.meta.root]
  while (todo.length > 0) {
    const id = todo.shift()!
    ids.push(id)
    const tree = decodeTree(await repo.loadBlob(TREE, id), 'test')
    if (tree.kind === 'leaf') for (const e of tree.entries) if (e.tree) todo.push(e.tree)
  }
  return ids
}

t.test('trees come out as loaded alone, in a few reads', async (t) => {
  const plain = await open(new LocalBackend(location))
  const ids = await treeIds(plain)
  t.ok(ids.length > 300, `${ids.length} trees`)
  const backend = new CountingBackend(location)
  const repo = await open(backend)
  await repo.index()
  const load = blockedTreeLoader(repo, 1024 * 1024)
  let differ = 0
  for (const id of ids) if (!(await load(id)).equals(await plain.loadBlob(TREE, id))) differ++
  t.equal(differ, 0, 'every tree has the bytes it has when loaded alone')
  t.ok(backend.reads < ids.length / 10, `${backend.reads} reads for ${ids.length} trees`)
})

t.test('a damaged block fails the trees in it and nothing else', async (t) => {
  const copy = path.join(scratch(), 'damaged')
  await fs.cp(location, copy, { recursive: true })
  const repo = await open(new LocalBackend(copy))
  const ids = await treeIds(repo)
  const state = await repo.index()
  const victim = ids[ids.length - 1]!
  const loc = state.index.get(victim)!
  const file = path.join(copy, packKey(state.packs.idOf(loc.pack)))
  const bytes = await fs.readFile(file)
  bytes[loc.offset + Math.floor(loc.length / 2)]! ^= 0x01
  await fs.writeFile(file, bytes)

  const load = blockedTreeLoader(repo, 1024 * 1024)
  await t.rejects(load(victim), { code: 'integrity' }, 'the damaged tree fails authentication')
  await t.rejects(load(victim), { code: 'integrity' }, 'and again: no decrypted garbage was kept')
  const neighbour = ids.find((id) => id !== victim && state.index.get(id)!.pack === loc.pack)!
  t.ok(neighbour, 'another tree shares the damaged tree\'s pack')
  t.ok((await load(neighbour)).equals(await repo.loadBlob(TREE, neighbour)), 'an intact tree beside it loads intact')
})
