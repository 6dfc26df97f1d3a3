/**
 * What the mount does ahead of its readers, without a kernel mount: inode numbers from the incremental key
 * hash, the path resolver answering lookups from remembered listings, blob loads of one turn sharing range
 * reads, and a directory's small files loaded ahead once a program reads two of them, in its order. Each must give exactly
 * the bytes and answers a plain, one-at-a-time read gives, damaged blobs included.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { scratch } from './helpers/cli.js'
import { damageBlob } from './helpers/damage.js'
import { ArchiveReader, LocalBackend, PathResolver, Repository, RepositoryView, coalescedBlobLoader, createArchiveFromEntries, type DirNode, type EntrySpec, type FileNode, type Item, type VfsNode } from '../dist/lib/index.js'
import { SiblingPrefetch } from '../dist/lib/vfs/sibling-prefetch.js'
import { CoalescingLoader } from '../dist/lib/cache/coalescing-loader.js'
import { extendKey, inodeOf, keyHash } from '../dist/lib/vfs/inode.js'
import { dirEntry } from '../dist/lib/vfs/node.js'

/** Counts range reads, the thing coalescing saves. */
class CountingBackend extends LocalBackend {
  ranges = 0
  override async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    this.ranges++
    return super.getRange(key, offset, length)
  }
}

async function newRepo(): Promise<{ repo: Repository; backend: CountingBackend }> {
  const home = scratch()
  const backend = new CountingBackend(path.join(home, 'repo'))
  const repo = await Repository.init({ location: backend, encryption: 'repokey', passphrase: 'pw', configDir: path.join(home, 'config'), cacheDir: null, kdf: { N: 1024 } })
  return { repo, backend }
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1')

/** A repository holding archive 'a' with `count` small files of random content in dir/. */
async function smallFiles(count: number): Promise<{ repo: Repository; backend: CountingBackend; files: Map<string, Buffer> }> {
  const { repo, backend } = await newRepo()
  const files = new Map<string, Buffer>()
  for (let i = 0; i < count; i++) files.set(`f${String(i).padStart(4, '0')}`, randomBytes(100 + ((i * 7919) % 5000)))
  const entries: EntrySpec[] = [...files].map(([name, content]) => ({ path: `dir/${name}`, kind: 'file', content }))
  await createArchiveFromEntries(repo, entries, { name: 'a' })
  return { repo, backend, files }
}

function shuffled<T>(items: T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = (i * 2654435761) % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

t.test('inode numbers: the same key gives the same number, different paths different numbers', async (t) => {
  const root = keyHash(b('archive id'))
  t.equal(inodeOf(extendKey(extendKey(root, b('a')), b('b'))), inodeOf(extendKey(extendKey(keyHash(b('archive id')), b('a')), b('b'))), 'stable')
  t.not(inodeOf(extendKey(root, b('ab'))), inodeOf(extendKey(extendKey(root, b('a')), b('b'))), "'ab' is not 'a/b'")
  t.not(inodeOf(extendKey(root, b('x'))), inodeOf(extendKey(keyHash(b('other archive')), b('x'))), 'the archive counts')
  const seen = new Set<bigint>()
  for (let d = 0; d < 500; d++) {
    const dir = extendKey(root, b(`dir-${d}`))
    seen.add(inodeOf(dir))
    for (let f = 0; f < 400; f++) seen.add(inodeOf(extendKey(dir, b(`file-${f}.txt`))))
  }
  t.equal(seen.size, 500 * 401, '200,500 paths, 200,500 numbers')
  t.ok([...seen].every((n) => n >= 16n && n < 2n ** 63n), 'in [16, 2^63)')
})

t.test('listing and lookup give a node the same inode number', async (t) => {
  const { repo } = await newRepo()
  await createArchiveFromEntries(repo, [
    { path: 'd/one', kind: 'file', content: b('1') },
    { path: 'd/caf\xe9', kind: 'file', content: b('2') },
    { path: 'd/sub/deeper', kind: 'file', content: b('3') },
  ], { name: 'a' })
  const view = new RepositoryView(repo)
  const archiveDir = (await view.lookup(b('a'))) as DirNode
  const d = (await archiveDir.lookup(b('d'))) as DirNode
  const listed = new Map((await d.list()).map((e) => [e.name.toString('latin1'), e.node.attr.ino]))
  t.equal(listed.size, 3)
  for (const e of await d.list()) t.equal(e.mode, e.node.attr.mode, `${JSON.stringify(e.name.toString('latin1'))}: the listing's mode is the node's`)
  for (const name of listed.keys()) t.equal((await d.lookup(b(name)))!.attr.ino, listed.get(name), `${JSON.stringify(name)}: lookup = listing`)
  t.not((await archiveDir.lookup(b('d')))!.attr.ino, listed.get('one'))
})

t.test('the path resolver answers lookups from a remembered listing', async (t) => {
  let lookups = 0
  const file = (ino: bigint): VfsNode => ({ kind: 'file', attr: { ino, mode: 0o100644 } as never, xattrs: [], read: async () => Buffer.alloc(0) }) as FileNode
  const children = [dirEntry(b('caf\xe9'), file(20n)), dirEntry(b('x'), file(21n))]
  const root: DirNode = {
    kind: 'dir', attr: { ino: 1n } as never, xattrs: [],
    list: async () => children,
    lookup: async (name) => {
      lookups++
      return children.find((c) => c.name.equals(name))?.node ?? null
    },
  }
  const resolver = new PathResolver(root)
  t.equal(await resolver.resolve(b('/caf\xe9')), children[0]!.node, 'looked up')
  t.equal(lookups, 1)
  resolver.remember(b('/'), children)
  t.equal(await resolver.resolve(b('/x')), children[1]!.node, 'from the listing')
  t.equal(await resolver.resolve(b('/nothing')), null, 'a name the listing lacks does not exist')
  t.equal(lookups, 1, 'neither needed a lookup')
  t.equal(await resolver.resolve(b('//x/')), children[1]!.node, 'extra slashes do not count')
  t.equal(await resolver.resolve(b('/')), root)
  const expiring = new PathResolver(root, { ttlMs: 1 })
  expiring.remember(b('/'), children)
  await new Promise((r) => setTimeout(r, 20))
  t.equal(await expiring.resolve(b('/x')), children[1]!.node, 'after the listing expired')
  t.equal(lookups, 2, 'the directory is asked again')
})

t.test('blob loads of one turn share range reads and give the same bytes; damage stays with its blob', async (t) => {
  const { repo, backend } = await smallFiles(60)
  const reader = await ArchiveReader.open(repo, 'a')
  const ids: Buffer[] = []
  for await (const { item } of reader.walk()) for (const c of item.chunks ?? []) ids.push(c.id)
  t.equal(ids.length, 60)
  const expected = await Promise.all(ids.map((id) => repo.loadSealedBlob(id)))

  backend.ranges = 0
  const loader = new CoalescingLoader(repo)
  const got = await Promise.all(ids.map((id) => loader.load(id)))
  t.ok(backend.ranges <= 2, `60 neighbouring blobs in ${backend.ranges} read(s)`)
  got.forEach((g, i) => {
    if (!g.sealed.equals(expected[i]!.sealed) || g.rawLength !== expected[i]!.rawLength) t.fail(`blob ${i} differs`)
  })
  backend.ranges = 0
  await loader.load(ids[0]!)
  t.equal(backend.ranges, 1, 'a lone load is one read')

  const packFile = await damageBlob(repo, backend.root, ids[10]!)
  const open = coalescedBlobLoader(repo, 'data', null)
  const results = await Promise.allSettled(ids.map((id) => open(id)))
  t.match(results[10], { status: 'rejected', reason: { code: 'integrity' } }, 'the damaged blob fails')
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 59, 'every other blob opens')

  // A pack cut short: the span read fails, and each blob is read alone (those before the cut still load).
  const state = await repo.index()
  const locs = ids.map((id) => state.index.get(id)!)
  const cut = locs[40]!.offset
  await fs.truncate(packFile, cut)
  const afterCut = await Promise.allSettled(ids.map((id) => open(id)))
  const before = ids.map((_, i) => i).filter((i) => i !== 10 && locs[i]!.offset + locs[i]!.length <= cut)
  const past = ids.map((_, i) => i).filter((i) => locs[i]!.offset >= cut)
  t.ok(before.length > 5 && past.length > 5, `${before.length} blobs before the cut, ${past.length} past it`)
  t.ok(before.every((i) => afterCut[i]!.status === 'fulfilled'), 'blobs before the cut load')
  t.ok(past.every((i) => afterCut[i]!.status === 'rejected'), 'blobs past the cut fail')
})

t.test("a directory's files read in any order: the rest come ahead in a few reads, never other bytes", async (t) => {
  const { repo, backend, files } = await smallFiles(300)
  const reader = await ArchiveReader.open(repo, 'a')
  const damagedItem = await reader.resolve(b('dir/f0123'))
  await damageBlob(repo, backend.root, damagedItem!.chunks![0]!.id)

  const view = new RepositoryView(repo, { caches: { loadChunk: coalescedBlobLoader(repo, 'data', null) } })
  const resolver = new PathResolver(view)
  const dir = (await resolver.resolve(b('/a/dir'))) as DirNode
  resolver.remember(b('/a/dir'), await dir.list())
  backend.ranges = 0
  let failed = 0
  for (const name of shuffled([...files.keys()])) {
    const node = (await resolver.resolve(b(`/a/dir/${name}`))) as FileNode
    try {
      const data = await node.read(0, 1 << 20)
      if (!data.equals(files.get(name)!)) t.fail(`${name}: other bytes`)
    } catch (err) {
      failed++
      t.equal(name, 'f0123', `only the damaged file fails (${(err as Error).message})`)
    }
  }
  t.equal(failed, 1, 'the damaged file fails')
  t.ok(backend.ranges < 30, `300 files in ${backend.ranges} range reads`)
})

t.test("files are loaded ahead in the program's order: by inode number after two reads in that order, else by name", async (t) => {
  const { repo, files } = await smallFiles(200)
  const reader = await ArchiveReader.open(repo, 'a')
  const dirItem = (await reader.resolve(b('dir')))!
  const listing: Item[] = []
  for await (const item of reader.entries({ tree: dirItem.tree!, item: dirItem })) listing.push(item)
  // Any numbering unrelated to names does: cp -a sorts by the hash inode numbers the mount shows.
  const inodeOf = (item: Item): bigint => BigInt(`0x${createHash('sha256').update(item.name).digest('hex').slice(0, 15)}`)
  const byInode = [...listing].sort((x, y) => (inodeOf(x) < inodeOf(y) ? -1 : 1))
  for (const [order, sequence] of [['inode', byInode], ['name', listing]] as const) {
    const batches: string[][] = []
    const loadBatch = reader.caches.smallFiles
    reader.caches.smallFiles = (items) => {
      batches.push(items.map((i) => i.name.toString('latin1')))
      return loadBatch(items)
    }
    let offered = 0
    const sink = { offer: (index: number, content: Buffer) => (content.equals(files.get(listing[index]!.name.toString('latin1'))!) ? ++offered > 0 : false) }
    const prefetch = new SiblingPrefetch(reader, { tree: dirItem.tree!, item: dirItem }, 16 * 1024 * 1024, inodeOf)
    prefetch.noteRead(sequence[0]!, sink)
    prefetch.noteRead(sequence[1]!, sink)
    for (let i = 0; i < 200 && offered < 198; i++) await new Promise((r) => setTimeout(r, 10))
    reader.caches.smallFiles = loadBatch
    t.equal(offered, 198, `${order}: the 198 others offered, each with its own bytes`)
    t.same(batches[0], sequence.slice(2, 18).map((i) => i.name.toString('latin1')), `${order}: the first batch holds the next 16 files in that order`)
    t.same(batches.flat(), sequence.slice(2).map((i) => i.name.toString('latin1')), `${order}: then the rest, in that order`)
  }
})
