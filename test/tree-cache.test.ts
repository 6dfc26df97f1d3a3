/**
 * The tree cache: a re-backup takes unchanged directories' trees from it,
 * and must give exactly the archive a backup without any cache gives (same
 * trees, same statistics), also after changes deep in the tree, to modes
 * only, and with hardlinks.
 */
import t from 'tap'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { scratch } from './helpers/cli.js'
import { ArchiveReader, createArchive, Repository } from '../dist/lib/index.js'

const PASS = 'pw'

async function setup() {
  const home = scratch()
  const location = path.join(home, 'repo')
  const configDir = path.join(home, 'config')
  await Repository.init({ location, encryption: 'repokey', passphrase: PASS, configDir, cacheDir: path.join(home, 'cache'), kdf: { N: 1024 } })
  /** A client with its own cache directory (a fresh one has neither files nor tree cache). */
  const client = (cache: string) => Repository.open({ location, passphrase: PASS, configDir, cacheDir: path.join(home, cache) })
  return { client }
}

async function write(file: string, content: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true })
  await fs.writeFile(file, content)
}

t.test('cached and uncached backups of the same tree are the same archive', async (t) => {
  const { client } = await setup()
  const src = scratch('cairn-tc-src-')
  await write(path.join(src, 'a/x.txt'), 'x')
  await write(path.join(src, 'a/deep/y.txt'), 'y')
  await write(path.join(src, 'b/z.txt'), 'z')
  await write(path.join(src, 'd/hard1'), 'shared')
  await fs.link(path.join(src, 'd/hard1'), path.join(src, 'd/hard2'))
  await fs.symlink('../a/x.txt', path.join(src, 'b/link'))

  // The archive's root holds the real parents of src (tmp, ...), whose times
  // other programs change: compare src's own tree.
  const backup = async (cache: string, name: string) => {
    const repo = await client(cache)
    const result = await createArchive(repo, { name, paths: [src] })
    t.equal(result.warnings, 0, `${name}: no warnings`)
    const srcItem = await (await ArchiveReader.open(repo, name)).resolve(Buffer.from(src.slice(1)))
    return { ...result.archive, tree: srcItem!.tree }
  }
  const first = await backup('cache-1', 'first')
  const again = await backup('cache-1', 'again')
  t.same(again.tree, first.tree, 'an unchanged tree gives the same tree')
  t.same(again.stats, { ...first.stats, deduplicatedSize: again.stats.deduplicatedSize }, 'and the same statistics')

  // Changes: content deep down, a mode only (ctime), a new file, and a new
  // hardlink pair walked before d/ (whose cached tree holds a group too).
  await fs.appendFile(path.join(src, 'a/deep/y.txt'), ' grew')
  await fs.chmod(path.join(src, 'b/z.txt'), 0o600)
  await write(path.join(src, 'b/new.txt'), 'new')
  await write(path.join(src, 'a/h1'), 'pair')
  await fs.link(path.join(src, 'a/h1'), path.join(src, 'a/h2'))

  const changed = await backup('cache-1', 'changed')
  const fresh = await backup('cache-fresh', 'fresh')
  t.same(changed.tree, fresh.tree, 'after changes, the cached backup equals one made without caches')
  t.same(changed.stats, { ...fresh.stats, deduplicatedSize: changed.stats.deduplicatedSize }, 'with the same statistics')

  const reader = await ArchiveReader.open(await client('cache-1'), 'changed')
  const rel = (p: string) => Buffer.from(path.join(src.slice(1), p))
  const y = await reader.resolve(rel('a/deep/y.txt'))
  t.equal((await reader.content(y!).read(0, 100)).toString(), 'y grew', 'the deep change is in the archive')
  t.equal((await reader.resolve(rel('b/z.txt')))!.mode & 0o777, 0o600, 'the mode change is in the archive')
  t.ok(await reader.resolve(rel('b/new.txt')), 'the new file is in the archive')
  const [h1, hard1] = [await reader.resolve(rel('a/h1')), await reader.resolve(rel('d/hard1'))]
  t.not(h1!.hardlink!.group, hard1!.hardlink!.group, 'hardlink groups stay distinct')
})
