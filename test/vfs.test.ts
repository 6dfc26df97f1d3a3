/**
 * The filesystem views and the mount's request handlers, without a kernel mount: the versions view, the
 * repository view going live, the worker pool that opens chunks, and the FUSE handlers over a view
 * (listing, attributes, reads with read-ahead, damaged chunks with and without allow_damaged_files).
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { scratch } from './helpers/cli.js'
import { listed } from './helpers/listing.js'
import { newTestRepository } from './helpers/repo.js'
import { createArchiveFromEntries, makeReaderCaches, ArchiveReader, PathResolver, Repository, RepositoryView, type EntrySpec, type DirNode, type FileNode } from '../dist/lib/index.js'
import { VersionsView, versionName } from '../dist/lib/vfs/versions-view.js'
import { BlobOpener, chunkLoader } from '../dist/lib/cache/blob-opener.js'
import { makeHandlers, type MountNode } from '../dist/mount/fuse-adapter.js'
import { rememberDamage } from '../dist/mount/damaged-chunks.js'
import { parseMountOptions, parseSize } from '../dist/mount/options.js'
import { readAroundDamage } from '../dist/mount/file-reads.js'

const newRepo = newTestRepository

const b = (s: string): Buffer => Buffer.from(s, 'latin1')
const names = (list: { name: Buffer }[]): string[] => list.map((e) => e.name.toString('latin1'))
type Handlers = ReturnType<typeof makeHandlers>
async function archive(repo: Repository, name: string, entries: EntrySpec[]): Promise<void> {
  await createArchiveFromEntries(repo, entries, { name })
}

t.test('version names keep the extension, fit in 255 bytes and sort by time', async (t) => {
  const t1 = 1_700_000_000_000_000_001n
  const t2 = 1_700_000_100_000_000_000n
  t.equal(versionName(b('notes.txt'), t1).toString(), 'notes.2023-11-14T22-13-20.000000001Z.txt')
  t.equal(versionName(b('.bashrc'), t1).toString(), '.bashrc.2023-11-14T22-13-20.000000001Z', 'a leading dot is no extension')
  t.equal(versionName(b('Makefile'), t1).toString(), 'Makefile.2023-11-14T22-13-20.000000001Z')
  const long = Buffer.concat([Buffer.alloc(250, 0x61), b('.tar')])
  const v = versionName(long, t1)
  t.equal(v.length, 255, 'a long name is cut to fit')
  t.ok(v.subarray(-4).equals(b('.tar')))
  t.ok(Buffer.compare(versionName(b('caf\xe9.txt'), t1), versionName(b('caf\xe9.txt'), t2)) < 0, 'earlier sorts first')
  t.ok(versionName(b('caf\xe9.txt'), t1).subarray(0, 4).equals(b('caf\xe9')), 'name bytes kept as they are')
})

t.test('the versions view merges archives, one entry per version of each file', async (t) => {
  const repo = await newRepo()
  await archive(repo, 'mon', [
    { path: 'docs/a.txt', kind: 'file', content: b('one') },
    { path: 'docs/same.txt', kind: 'file', content: b('never changes') },
    { path: 'flip', kind: 'file', content: b('a file first') },
    { path: b('caf\xe9'), kind: 'symlink', target: b('t1') },
  ])
  await archive(repo, 'tue', [
    { path: 'docs/a.txt', kind: 'file', content: b('two'), mtimeNs: 1_650_000_000_000_000_007n },
    { path: 'docs/same.txt', kind: 'file', content: b('never changes'), mode: 0o600 },
    { path: 'docs/new.txt', kind: 'file', content: b('new') },
    { path: 'flip/inner', kind: 'file', content: b('then a directory') },
    { path: b('caf\xe9'), kind: 'symlink', target: b('t1') },
  ])
  await archive(repo, 'wed', [
    { path: 'docs/a.txt', kind: 'file', content: b('one') }, // back to the first content: a new version
    { path: 'docs/same.txt', kind: 'file', content: b('never changes') },
  ])
  const refs = await repo.archives()
  const [mon, tue, wed] = refs.map((r) => r.time)
  const view = new VersionsView(repo, { refreshMs: 0 })
  const resolver = new PathResolver(view, { ttlMs: 0 })
  t.same(names(await view.list()), ['caf\xe9', 'docs', 'flip'], 'the root merges every archive root')

  const docs = (await resolver.resolve(b('/docs'))) as DirNode
  t.same(names(await docs.list()), ['a.txt', 'new.txt', 'same.txt'])
  const a = (await resolver.resolve(b('/docs/a.txt'))) as DirNode
  t.equal(a.kind, 'dir', 'a file path is a directory of versions')
  const versions = await a.list()
  t.same(names(versions), [mon, tue, wed].map((time) => versionName(b('a.txt'), time!).toString('latin1')), 'one entry per change, named by archive time, sorted')
  const contents = await Promise.all(versions.map((v) => (v.node as FileNode).read(0, 100)))
  t.same(contents.map(String), ['one', 'two', 'one'])
  t.equal(versions[1]!.node.attr.mtimeNs, 1_650_000_000_000_000_007n, 'a version keeps its own attributes')
  t.equal((await (await resolver.resolve(b('/docs/same.txt')) as DirNode).list()).length, 1, 'metadata changes alone make no version')

  const flip = (await resolver.resolve(b('/flip'))) as DirNode
  t.same(names(await flip.list()), [versionName(b('flip'), mon!).toString('latin1'), 'inner'], 'a name that was a file and a directory holds both')
  const viaLookup = await resolver.resolve(Buffer.concat([b('/flip/'), versionName(b('flip'), mon!)]))
  t.equal(viaLookup?.kind, 'file')

  const link = (await resolver.resolve(b('/caf\xe9'))) as DirNode
  const linkVersions = await link.list()
  t.equal(linkVersions.length, 1, 'an unchanged symlink is one version')
  t.equal(linkVersions[0]!.node.kind, 'symlink')
  t.equal(await resolver.resolve(b('/docs/none')), null)

  await archive(repo, 'thu', [{ path: 'docs/a.txt', kind: 'file', content: b('three') }])
  const later = (await (await view.lookup(b('docs')) as DirNode).lookup(b('a.txt'))) as DirNode
  t.equal((await later.list()).length, 4, 'a new archive adds its version')
})

t.test('the repository root follows the manifest', async (t) => {
  const repo = await newRepo()
  await archive(repo, 'first', [{ path: 'x', kind: 'file', content: b('x') }])
  const view = new RepositoryView(repo, { refreshMs: 0 })
  t.same(names(await view.list()), ['first'])
  await archive(repo, 'second', [{ path: 'y', kind: 'file', content: b('y') }])
  t.same(names(await view.list()), ['first', 'second'], 'a new archive appears')
  await repo.deleteArchive('first')
  t.same(names(await view.list()), ['second'], 'a deleted one disappears')
  t.equal(await view.lookup(b('first')), null)
})

t.test('the worker pool opens chunks to the same bytes, and reports damage as integrity errors', async (t) => {
  const repo = await newRepo()
  const data = randomBytes(5 * 1024 * 1024)
  await archive(repo, 'big', [{ path: 'big.bin', kind: 'file', content: data }])
  const opener = BlobOpener.forRepository(repo, { workers: 2 })
  t.teardown(() => opener.close())
  const reader = await ArchiveReader.open(repo, 'big', makeReaderCaches(repo, { loadChunk: chunkLoader(repo, opener) }))
  const item = await reader.resolve(b('big.bin'))
  const content = reader.content(item!)
  t.ok((await content.read(0, data.length)).equals(data), 'whole file through the pool')
  const reads = await Promise.all([0, 1, 2, 3, 4].map((i) => content.read(i * 1_000_000, 1000)))
  reads.forEach((r, i) => t.ok(r.equals(data.subarray(i * 1_000_000, i * 1_000_000 + 1000)), `concurrent read ${i}`))

  const id = item!.chunks![0]!.id
  const { sealed, rawLength } = await repo.loadSealedBlob(id)
  sealed[sealed.length >> 1] ^= 1
  await t.rejects(opener.open(0, id, sealed, rawLength), { code: 'integrity' }, 'a flipped byte fails authentication')
  const fine = await repo.loadSealedBlob(id)
  t.ok((await opener.open(0, id, fine.sealed, fine.rawLength)).equals(data.subarray(0, item!.chunks![0]!.size)), 'the pool still works after a failure')
})

t.test('mount options', async (t) => {
  const o = parseMountOptions(['versions,uid=1000', 'umask=027,cache_size=1G', 'allow_damaged_files,ro'])
  t.same(o, { versions: true, allowOther: false, ignorePermissions: false, cacheBytes: 2 ** 30, allowDamagedFiles: true, uid: 1000, umask: 0o27 })
  t.equal(parseSize('256M'), 256 * 2 ** 20)
  t.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30)
  t.throws(() => parseMountOptions(['nosuch']), { code: 'bad-argument' })
  t.throws(() => parseMountOptions(['cache_size=1M']), { code: 'bad-argument' }, 'too small a cache')
  t.throws(() => parseMountOptions(['umask=9']), { code: 'bad-argument' })
  t.throws(() => parseMountOptions(['versions=1']), { code: 'bad-argument' })
})

/** The node at `p` ('/a/b'), found by lookups from the root as the kernel makes them, or the errno. */
async function walk(handlers: Handlers, p: string | Buffer): Promise<MountNode | number> {
  let node = handlers.root
  for (const part of b(typeof p === 'string' ? p : p.toString('latin1')).toString('latin1').split('/').filter(Boolean)) {
    const found = await handlers.lookup(node, b(part))
    if (typeof found === 'number') return found
    node = found.node
  }
  return node
}
async function at(handlers: Handlers, p: string | Buffer): Promise<MountNode> {
  const node = await walk(handlers, p)
  if (typeof node === 'number') throw new Error(`lookup ${p}: ${node}`)
  return node
}

/** A repository with one archive and the FUSE handlers over it, damaged chunk optional. */
async function handlersOver(allowDamagedFiles: boolean) {
  const repo = await newRepo()
  const good = randomBytes(3 * 1024 * 1024)
  const bad = randomBytes(6 * 1024 * 1024)
  await archive(repo, 'a', [
    { path: 'good.bin', kind: 'file', content: good, mode: 0o640, mtimeNs: 1_234_567_890_123_456_789n, xattrs: [[b('user.k'), b('v\xff')]] },
    { path: 'bad.bin', kind: 'file', content: bad },
    { path: b('dir/n\xe9w\nline'), kind: 'file', content: b('odd name') },
    { path: 'link', kind: 'symlink', target: b('good.bin') },
  ])
  const reader = await ArchiveReader.open(repo, 'a')
  const badItem = await reader.resolve(b('bad.bin'))
  const damagedId = badItem!.chunks![1]!.id
  const logs: string[] = []
  const log = (m: string): void => void logs.push(m)
  const load = chunkLoader(repo, null)
  const { CairnError } = await import('../dist/lib/index.js')
  const failing = rememberDamage(async (id: Buffer) => {
    if (id.equals(damagedId)) throw new CairnError('integrity', 'chunk failed authentication (test)')
    return load(id)
  }, log)
  const view = new RepositoryView(repo, { caches: { loadChunk: failing } })
  const handlers = makeHandlers({ root: view, allowDamagedFiles, readAheadBytes: 4 * 1024 * 1024, log })
  const chunkStart = badItem!.chunks![0]!.size
  const chunkEnd = chunkStart + badItem!.chunks![1]!.size
  return { handlers, good, bad, logs, chunkStart, chunkEnd }
}

t.test('FUSE handlers over a view: listing, attributes, xattrs, reads', async (t) => {
  const { handlers, good } = await handlersOver(false)
  const root = await listed(handlers, handlers.root)
  t.same(typeof root === 'number' ? root : names(root), ['a'])
  const listing = await listed(handlers, await at(handlers, '/a/dir'))
  t.ok(typeof listing !== 'number' && listing[0]!.name.equals(b('n\xe9w\nline')), 'names cross as their bytes')
  const file = await at(handlers, '/a/good.bin')
  const attr = await handlers.getattr(file)
  if (typeof attr === 'number') throw new Error(`getattr: ${attr}`)
  t.equal(attr.mode, 0o100640)
  t.equal(attr.size, good.length)
  t.equal(attr.mtimeNs, 1_234_567_890_123_456_789n)
  t.equal(attr.blocks, Math.ceil(good.length / 512))
  t.equal(await walk(handlers, '/a/nothing'), -2, 'ENOENT')
  t.equal(await walk(handlers, '/a/good.bin/x'), -20, 'ENOTDIR')
  t.same((await at(handlers, '/a/dir/n\xe9w\nline')).path(), b('/a/dir/n\xe9w\nline'), 'a node knows its path, for log lines')
  t.same(await handlers.listxattr!(file), [b('user.k')])
  t.same(await handlers.getxattr!(file, b('user.k')), b('v\xff'))
  t.equal(await handlers.getxattr!(file, b('user.none')), -61, 'ENODATA')
  t.same(await handlers.readlink!(await at(handlers, '/a/link')), b('good.bin'))
  let pos = 0
  const parts: Buffer[] = []
  while (pos < good.length) {
    const part = await handlers.read(file, 128 * 1024, pos)
    if (typeof part === 'number') throw new Error(`read: ${part}`)
    parts.push(Buffer.from(part))
    pos += part.length
  }
  t.ok(Buffer.concat(parts).equals(good), 'sequential 128 KiB reads give the file')
  const statfs = await handlers.statfs!()
  t.equal(typeof statfs === 'number' ? statfs : statfs.namemax, 255)
})

t.test('a damaged chunk: EIO for that file only, or zeros with allow_damaged_files', async (t) => {
  const strict = await handlersOver(false)
  const badFile = await at(strict.handlers, '/a/bad.bin')
  t.ok((await strict.handlers.read(badFile, 4096, 0) as Buffer).equals(strict.bad.subarray(0, 4096)), 'before the damage reads')
  t.equal(await strict.handlers.read(badFile, 4096, strict.chunkStart + 10), -5, 'EIO inside the damaged chunk')
  t.ok((await strict.handlers.read(await at(strict.handlers, '/a/good.bin'), 100, 0) as Buffer).equals(strict.good.subarray(0, 100)), 'other files still read')
  t.ok(strict.logs.some((l) => /damaged/.test(l)), 'the damage is logged')

  const lenient = await handlersOver(true)
  const across = await lenient.handlers.read(await at(lenient.handlers, '/a/bad.bin'), 128 * 1024, lenient.chunkStart - 1000)
  if (typeof across === 'number') throw new Error(`read: ${across}`)
  t.equal(across.length, 128 * 1024)
  t.ok(across.subarray(0, 1000).equals(lenient.bad.subarray(lenient.chunkStart - 1000, lenient.chunkStart)), 'the good bytes before the damage are kept')
  t.ok(across.subarray(1000).equals(Buffer.alloc(128 * 1024 - 1000)), 'the damaged bytes read as zeros')
  const after = await readAroundDamage({ kind: 'file', attr: { size: 10 } as never, xattrs: [], read: async (p: number, l: number) => {
    if (p < 4 && p + l > 3) throw new Error('bad byte 3')
    return Buffer.from('0123456789').subarray(p, p + l)
  } } as FileNode, 0, 10)
  t.same(after, { data: Buffer.from('012\x00456789'), zeroed: 1 }, 'reading around exactly the damaged bytes')
  t.ok(lenient.logs.some((l) => /read as zeros/.test(l)), 'zeroed reads are logged')
})

t.test('storage failures under a mount become EIO, not a crash', async (t) => {
  // The pack files are cut short (a damaged disk). Deleting them would not
  // do: the backend keeps recently read packs open, and a removed pack is
  // still read, correctly, from its old inode.
  const repo = await newRepo()
  await archive(repo, 'a', [{ path: 'f', kind: 'file', content: randomBytes(100_000) }])
  const logs: string[] = []
  const handlers = makeHandlers({ root: new RepositoryView(repo), allowDamagedFiles: false, readAheadBytes: 0, log: (m: string) => void logs.push(m) })
  const f = await at(handlers, '/a/f')
  t.equal(typeof (await handlers.getattr(f)), 'object')
  const dataDir = path.join(repo.backend.location, 'data')
  for (const sub of await fs.readdir(dataDir)) for (const f of await fs.readdir(path.join(dataDir, sub))) await fs.truncate(path.join(dataDir, sub, f), 10)
  t.equal(await handlers.read(f, 100, 0), -5, 'EIO')
  t.match(logs.join('\n'), /read "\/a\/f" failed/, 'with the path')
  t.ok(logs.length > 0, 'and logged')
})

t.test('an archive directory finds each entry again by its position, across pages', async (t) => {
  const repo = await newTestRepository()
  const count = 2500 // three pages of up to 1,024 entries
  const entries: EntrySpec[] = Array.from({ length: count }, (_, i) => ({ path: `big/f-${String(i).padStart(5, '0')}`, kind: 'file', content: Buffer.from(String(i)) }))
  await createArchiveFromEntries(repo, entries, { name: 'a' })
  const view = new RepositoryView(repo, { caches: { treeBytes: 64 * 1024 } })
  const dir = (await ((await view.lookup(Buffer.from('a'))) as DirNode).lookup(Buffer.from('big'))) as DirNode
  const listedNames = (await dir.list()).map((e) => e.name.toString())
  let wrong = 0
  for (const i of [0, 1, 1023, 1024, 1025, 2047, 2048, count - 1]) {
    const e = await dir.entryAt!(i)
    if (e?.name.toString() !== listedNames[i]) wrong++
    const content = await (e!.node as FileNode).read(0, 100)
    if (content.toString() !== String(i)) wrong++
  }
  t.equal(wrong, 0, 'the entry at a position is the one listed there, with its content')
  t.equal(await dir.entryAt!(count), null, 'none past the end')
})
