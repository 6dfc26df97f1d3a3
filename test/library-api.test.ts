/** What another Node program does with cairn: create, list, stat, read byte ranges, stream. */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { scratch } from './helpers/cli.js'
import { newTestRepository } from './helpers/repo.js'
import { ArchiveReader, DEFAULT_CHUNKER_PARAMS, createArchive, createArchiveFromEntries, Repository, extractArchive, RepositoryView, PathResolver, unlockWithPassphrase } from '../dist/lib/index.js'

const newRepo = newTestRepository

t.test('create from paths, then read a file by byte range', async (t) => {
  const repo = await newRepo()
  const src = scratch()
  const data = randomBytes(9 * 1024 * 1024 + 12345)
  await fs.writeFile(path.join(src, 'big.bin'), data)
  await fs.mkdir(path.join(src, 'sub'))
  await fs.writeFile(path.join(src, 'sub', 'small.txt'), 'small')
  const result = await createArchive(repo, { name: 'a1', paths: [src], compression: 'zstd,3' })
  t.equal(result.warnings, 0)
  t.equal(result.archive.stats.files, 2)

  t.same((await repo.archives()).map((a) => a.name), ['a1'])
  const reader = await ArchiveReader.open(repo, 'a1')
  const rel = Buffer.from(path.join(src.slice(1), 'big.bin'))
  const item = await reader.resolve(rel)
  t.ok(item && item.kind === 'file', 'stat finds the file')
  t.equal(item!.size, data.length)
  const content = reader.content(item!)
  for (const [pos, len] of [[0, 10], [2 * 1024 * 1024 - 5, 10], [data.length - 7, 100], [5_000_000, 3_000_000]] as const) {
    const got = await content.read(pos, len)
    t.ok(got.equals(data.subarray(pos, Math.min(data.length, pos + len))), `bytes ${pos}+${len}`)
  }
  const chunks: Buffer[] = []
  for await (const c of content.stream(1000, 8_000_000)) chunks.push(c as Buffer)
  t.ok(Buffer.concat(chunks).equals(data.subarray(1000, 8_000_000)), 'a byte-range stream')
  t.equal(await reader.resolve(Buffer.from('no/such/path')), undefined, 'a missing path is undefined')
})

t.test('create from an async iterable of entries, read back through the filesystem view', async (t) => {
  const repo = await newRepo()
  const name = Buffer.from('caf\xe9.txt', 'latin1')
  async function* entries() {
    yield { path: 'docs', kind: 'dir' as const, mode: 0o750 }
    yield { path: Buffer.concat([Buffer.from('docs/'), name]), kind: 'file' as const, content: (async function* () { yield Buffer.from('hello '); yield Buffer.from('world') })(), mtimeNs: 1_700_000_000_123_456_789n }
    yield { path: 'docs/link', kind: 'symlink' as const, target: Buffer.from('caf\xe9.txt', 'latin1') }
    yield { path: 'deep/a/b/c.txt', kind: 'file' as const, content: Buffer.from('deep') }
  }
  await createArchiveFromEntries(repo, entries(), { name: 'from-api' })
  const view = new RepositoryView(repo)
  const resolver = new PathResolver(view)
  const file = await resolver.resolve(Buffer.concat([Buffer.from('/from-api/docs/'), name]))
  t.equal(file?.kind, 'file')
  if (file?.kind === 'file') {
    t.equal((await file.read(0, 100)).toString(), 'hello world')
    t.equal(file.attr.mtimeNs, 1_700_000_000_123_456_789n, 'nanosecond mtime')
    t.equal(file.attr.size, 11)
  }
  const link = await resolver.resolve(Buffer.from('/from-api/docs/link'))
  t.ok(link?.kind === 'symlink' && link.target.equals(name), 'symlink target bytes')
  const docs = await resolver.resolve(Buffer.from('/from-api/docs'))
  t.equal(docs?.attr.mode, 0o40750)
  const deep = await resolver.resolve(Buffer.from('/from-api/deep/a/b/c.txt'))
  t.ok(deep, 'missing parents are made')

  const dest = scratch()
  await extractArchive(await ArchiveReader.open(repo, 'from-api'), { destination: dest })
  t.equal(await fs.readFile(Buffer.from(path.join(dest, 'docs/') + 'caf\xe9.txt', 'latin1'), 'utf8'), 'hello world')
})

t.test('chunks too large for a worker\'s ring are sealed on their own, and read back', async (t) => {
  // Possible in a repository made with borg's 8 MiB maximum (cairn's default before 4 MiB).
  const repo = await newTestRepository({ ...DEFAULT_CHUNKER_PARAMS, maxSize: 8 * 1024 * 1024 })
  const src = scratch()
  // A long run of one byte has no cut point until the maximal chunk (8 MiB); a ring keeps 4 MiB for one blob.
  const data = Buffer.concat([Buffer.alloc(13 * 1024 * 1024, 0x2a), randomBytes(300_000)])
  await fs.writeFile(path.join(src, 'long'), data)
  await createArchive(repo, { name: 'a', paths: [src] })
  const largest = Math.max(...[...(await repo.index()).index.entries()].map(([, loc]) => loc.rawLength))
  t.ok(largest > 4 * 1024 * 1024, `a chunk of ${(largest / 2 ** 20).toFixed(1)} MiB was stored`)
  const reader = await ArchiveReader.open(repo, 'a')
  const item = await reader.resolve(Buffer.from(path.join(src.slice(1), 'long')))
  t.ok((await reader.content(item!).read(0, data.length)).equals(data), 'and the file reads back')
})

t.test('a directory with more entries than one tree page', async (t) => {
  const repo = await newRepo()
  async function* many() {
    for (let i = 0; i < 5000; i++) yield { path: `big/f${String(i).padStart(5, '0')}`, kind: 'file' as const, content: Buffer.from(String(i)) }
  }
  await createArchiveFromEntries(repo, many(), { name: 'paged' })
  const reader = await ArchiveReader.open(repo, 'paged')
  const big = await reader.resolve(Buffer.from('big'))
  t.equal(big?.entries, 5000)
  const names: string[] = []
  for await (const item of reader.entries({ tree: big!.tree!, item: big! })) names.push(item.name.toString())
  t.same(names, Array.from({ length: 5000 }, (_, i) => `f${String(i).padStart(5, '0')}`), 'every entry listed, in order')
  const f = await reader.resolve(Buffer.from('big/f04321'))
  t.equal((await reader.content(f!).read(0, 10)).toString(), '4321', 'lookup lands in the right page')
})

t.test('the key can be unlocked by the caller (elsewhere), and an unlocker that fails stops the open', async (t) => {
  const home = scratch()
  const options = { location: path.join(home, 'repo'), configDir: path.join(home, 'config'), cacheDir: null }
  const made = await Repository.init({ ...options, encryption: 'repokey', passphrase: 'pw', kdf: { N: 1024 } })
  const src = scratch()
  await fs.writeFile(path.join(src, 'f'), 'content')
  await createArchive(made, { name: 'a1', paths: [src] })
  await made.close()

  const seen: string[] = []
  const opened = await Repository.open({ ...options, unlockKey: async (envelope, repoId) => {
    seen.push(repoId)
    return unlockWithPassphrase('pw')(envelope, repoId)
  } })
  t.teardown(() => opened.close())
  t.same(seen, [opened.id], 'asked once, with the repository id')
  t.same((await opened.archives()).map((a) => a.name), ['a1'], 'and the repository reads')

  const refused = Repository.open({ ...options, passphrase: 'pw', unlockKey: async () => { throw Object.assign(new Error('no key for you'), { code: 'x' }) } })
  await t.rejects(refused, /no key for you/, 'the unlocker wins over the passphrase, and its failure is the open\'s')
  await t.rejects(Repository.open({ ...options, unlockKey: unlockWithPassphrase('wrong') }), { code: 'wrong-passphrase' })
})

t.test('a repository opened for lookups (as the mount opens it) reads the index from its cache file, follows other clients, and still backs up with whole ids', async (t) => {
  const home = scratch()
  const options = { location: path.join(home, 'repo'), passphrase: 'pw', configDir: path.join(home, 'config'), cacheDir: path.join(home, 'cache') }
  const made = await Repository.init({ ...options, encryption: 'repokey', kdf: { N: 1024 } })
  const src = scratch()
  const data = randomBytes(3 * 1024 * 1024)
  await fs.writeFile(path.join(src, 'f'), data)
  await createArchive(made, { name: 'a1', paths: [src] })
  await made.close()
  const read = async (repo: Repository, archive: string, name: string): Promise<Buffer> => {
    const reader = await ArchiveReader.open(repo, archive)
    const item = await reader.resolve(Buffer.from(path.join(src.slice(1), name)))
    return reader.content(item!).read(0, item!.size)
  }

  const lookups = await Repository.open({ ...options, preloadIndex: 'lookups' })
  t.teardown(() => lookups.close())
  const opened = await lookups.index()
  t.ok(opened.file !== null && opened.index.size === 0, 'blobs are looked up in the cache file, none is held in memory')
  t.ok((await read(lookups, 'a1', 'f')).equals(data), 'and they read back')

  /** Another client adds file `name` to the tree and backs it up; the file's bytes. */
  const backUpNewFile = async (cacheDir: string, archive: string, name: string): Promise<Buffer> => {
    const client = await Repository.open({ ...options, cacheDir })
    const bytes = randomBytes(5000)
    await fs.writeFile(path.join(src, name), bytes)
    await createArchive(client, { name: archive, paths: [src] })
    await client.close()
    return bytes
  }

  // Another client, with a cache of its own, backs up a new file.
  const added = await backUpNewFile(path.join(home, 'other-cache'), 'a2', 'g')
  t.ok((await read(lookups, 'a2', 'g')).equals(added), 'a blob another client added is found')
  const refreshed = await lookups.index()
  t.equal(refreshed.file, opened.file, 'the refresh kept the file open, without reading it again')
  t.ok(refreshed.index.size > 0 && refreshed.index.size < 10, `what it merged since is held in memory (${refreshed.index.size} blobs)`)

  // A client sharing the cache (a backup on this machine while the mount runs) replaces the cache file.
  const more = await backUpNewFile(options.cacheDir, 'a3', 'k')
  t.ok((await read(lookups, 'a3', 'k')).equals(more), 'a blob of a backup made beside it is found')
  const moved = await lookups.index()
  t.ok(moved.file !== null && moved.file !== opened.file, 'the index moved to the newer cache file')
  t.equal(moved.index.size, 0, 'which holds all it knew, so nothing is kept in memory any more')
  t.ok((await read(lookups, 'a2', 'g')).equals(added), 'and what it had merged is still found')

  await fs.writeFile(path.join(src, 'h'), randomBytes(1000))
  const third = await createArchive(lookups, { name: 'a4', paths: [src] })
  t.ok(third.archive.stats.deduplicatedSize < 10_000, `f is not stored again (${third.archive.stats.deduplicatedSize} bytes new)`)
  t.ok((await read(lookups, 'a4', 'f')).equals(data), 'and it reads back')
  t.equal((await lookups.index()).file, null, 'the writer loaded the table into memory')
})
