/**
 * Extract with file content written by writer threads: every setup (the
 * calling thread alone, one worker, two) restores the same bytes and
 * attributes; a damaged chunk stops the extract with one line and leaves no
 * half-written file; a file that cannot be written costs a warning (exit 1);
 * whatever stands at a target is replaced, never written through; a tree
 * that names an entry twice is refused.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { cairn, scratch, testEnv } from './helpers/cli.js'
import { compareTrees } from './helpers/tree-compare.js'
import { ArchiveReader, extractArchive, isCairnError, LocalBackend, Repository, type Backend } from '../dist/lib/index.js'
import { RepositoryWriter } from '../dist/lib/repo/writer.js'
import { encodeLeaf } from '../dist/lib/archive/tree.js'
import { encodeArchive } from '../dist/lib/archive/archive-object.js'
import { parseCompressionSpec } from '../dist/lib/compress/codec.js'
import { packKey } from '../dist/lib/repo/pack-table.js'

const MiB = 1024 * 1024
const PASSPHRASE = 'correct horse battery staple'

/** A tree with many small files (more than one batch), a big file (written in pieces), holes, hardlinks, odd modes. */
async function makeSource(): Promise<string> {
  const src = scratch()
  await fs.mkdir(path.join(src, 'many'))
  for (let i = 0; i < 150; i++) await fs.writeFile(path.join(src, 'many', `f${i}`), randomBytes(i * 97))
  await fs.writeFile(path.join(src, 'big.bin'), randomBytes(20 * MiB))
  const holes = await fs.open(path.join(src, 'holes.img'), 'w')
  await holes.write(randomBytes(MiB), 0, MiB, 0)
  await holes.write(randomBytes(MiB), 0, MiB, 17 * MiB)
  await holes.truncate(26 * MiB)
  await holes.close()
  await fs.link(path.join(src, 'big.bin'), path.join(src, 'big-link.bin'))
  await fs.link(path.join(src, 'many', 'f7'), path.join(src, 'f7-link'))
  await fs.writeFile(path.join(src, 'read-only'), 'cannot write me later')
  await fs.chmod(path.join(src, 'read-only'), 0o444)
  await fs.writeFile(path.join(src, 'setgid-ish'), 'x')
  await fs.chmod(path.join(src, 'setgid-ish'), 0o2755)
  await fs.writeFile(path.join(src, 'empty'), '')
  const past = new Date('2001-02-03T04:05:06.789Z')
  await fs.utimes(path.join(src, 'big.bin'), past, past)
  return src
}

async function repoWith(src: string): Promise<{ repo: Repository; repoDir: string; env: Record<string, string | undefined> }> {
  const env = testEnv({ CAIRN_PASSPHRASE: PASSPHRASE })
  const repoDir = path.join(scratch(), 'repo')
  const init = await cairn(['init', repoDir], { env })
  if (init.code !== 0) throw new Error(init.stderr)
  const created = await cairn(['create', `${repoDir}::a`, src], { env })
  if (created.code !== 0) throw new Error(created.stderr)
  const repo = await Repository.open({ location: repoDir, passphrase: PASSPHRASE, configDir: env.CAIRN_CONFIG_DIR!, cacheDir: env.CAIRN_CACHE_DIR! })
  t.teardown(() => repo.close())
  return { repo, repoDir, env }
}

/** Flips one byte in the middle of the stored chunk `index` of the file at `rel` (archive path). */
async function damageChunk(repo: Repository, rel: string, index: number): Promise<void> {
  const reader = await ArchiveReader.open(repo, 'a')
  const item = await reader.resolve(Buffer.from(rel))
  const id = item!.chunks![index]!.id
  const state = await repo.index()
  const loc = state.index.get(id)!
  const file = repo.backend.localPath!(packKey(state.packs.idOf(loc.pack)))
  const handle = await fs.open(file, 'r+')
  const byte = Buffer.alloc(1)
  const at = loc.offset + Math.floor(loc.length / 2)
  await handle.read(byte, 0, 1, at)
  byte[0] ^= 0x40
  await handle.write(byte, 0, 1, at)
  await handle.close()
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(() => true, () => false)
}

t.test('every writer setup restores the same bytes, holes, hardlinks, modes and times', async (t) => {
  const src = await makeSource()
  const { repo } = await repoWith(src)
  const reader = await ArchiveReader.open(repo, 'a')
  const holesItem = await reader.resolve(Buffer.from(`${src.slice(1)}/holes.img`))
  const zeroBytes = holesItem!.chunks!.filter((c) => c.id.every((b) => b === 0)).reduce((n, c) => n + c.size, 0)
  t.ok(zeroBytes >= 8 * MiB, `the archive keeps zero chunks for the holes (${zeroBytes} bytes)`)
  for (const workers of [0, 1, 2]) {
    for (const sparse of [false, true]) {
      const dest = scratch()
      const result = await extractArchive(reader, { destination: dest, workers, sparse })
      t.equal(result.warnings, 0, `workers ${workers}, sparse ${sparse}: no warnings`)
      t.same(await compareTrees(src, path.join(dest, src.slice(1))), [], `workers ${workers}, sparse ${sparse}: identical`)
      const holes = await fs.stat(path.join(dest, src.slice(1), 'holes.img'))
      if (sparse) t.ok(holes.blocks * 512 <= 26 * MiB - zeroBytes + MiB, `zero chunks became holes (${holes.blocks} blocks)`)
      else t.ok(holes.blocks * 512 >= 26 * MiB, `zeros are written without --sparse (${holes.blocks} blocks)`)
      await fs.rm(dest, { recursive: true, force: true })
    }
  }
})

t.test('a backend without local files: chunks fetched by the calling thread, written by the writers', async (t) => {
  const src = await makeSource()
  const { repoDir, env } = await repoWith(src)
  const local = new LocalBackend(repoDir)
  // Everything a Backend must have, and no localPath.
  const remote: Backend = {
    location: local.location,
    get: (key) => local.get(key),
    getRange: (key, offset, length) => local.getRange(key, offset, length),
    put: (key, data) => local.put(key, data),
    create: (key, data) => local.create(key, data),
    delete: (key) => local.delete(key),
    stat: (key) => local.stat(key),
    list: (prefix) => local.list(prefix),
  }
  const repo = await Repository.open({ location: remote, passphrase: PASSPHRASE, configDir: env.CAIRN_CONFIG_DIR!, cacheDir: null })
  t.teardown(() => local.close())
  for (const workers of [0, 1]) {
    const dest = scratch()
    const result = await extractArchive(await ArchiveReader.open(repo, 'a'), { destination: dest, workers })
    t.equal(result.warnings, 0)
    t.same(await compareTrees(src, path.join(dest, src.slice(1))), [], `workers ${workers}: identical`)
  }
})

t.test('a damaged chunk stops the extract with one line and leaves no half-written file', async (t) => {
  const src = await makeSource()
  const rel = src.slice(1)
  for (const [file, chunk] of [['big.bin', 4], ['many/f120', 0]] as const) {
    const { repo, repoDir, env } = await repoWith(src)
    await damageChunk(repo, `${rel}/${file}`, chunk)

    const dest = scratch()
    const r = await cairn(['extract', `${repoDir}::a`], { env, cwd: dest })
    t.equal(r.code, 2, `${file}: exit code 2`)
    const lines = r.stderr.trim().split('\n')
    t.equal(lines.length, 1, `${file}: one line: ${r.stderr}`)
    t.match(lines[0], /damaged|tampered|authentication/)
    t.notOk(await exists(path.join(dest, rel, file)), `${file}: not left half-written`)

    for (const workers of [0, 1]) {
      const libDest = scratch()
      const failed = await extractArchive(await ArchiveReader.open(repo, 'a'), { destination: libDest, workers }).then(
        () => null,
        (err: unknown) => err,
      )
      t.ok(isCairnError(failed, 'integrity'), `${file}, workers ${workers}: a CairnError 'integrity'`)
      t.notOk(await exists(path.join(libDest, rel, file)), `${file}, workers ${workers}: not left half-written`)
    }
  }
})

t.test('a file that cannot be written is one warning line (exit 1); everything else is restored', async (t) => {
  const src = await makeSource()
  const { repo, repoDir, env } = await repoWith(src)
  const dest = scratch()
  // A non-empty directory where a file goes cannot be replaced by it.
  await fs.mkdir(path.join(dest, src.slice(1), 'many', 'f3', 'in-the-way'), { recursive: true })
  const r = await cairn(['extract', `${repoDir}::a`], { env, cwd: dest })
  t.equal(r.code, 1, 'exit code 1')
  const lines = r.stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line: ${r.stderr}`)
  t.match(lines[0], /many\/f3: not restored: /)
  const diffs = await compareTrees(src, path.join(dest, src.slice(1)), { ignore: (p) => p.startsWith('many/f3') })
  t.same(diffs, [], 'the rest is identical')

  const libDest = scratch()
  await fs.mkdir(path.join(libDest, src.slice(1), 'empty', 'in-the-way'), { recursive: true })
  const warnings: string[] = []
  const result = await extractArchive(await ArchiveReader.open(repo, 'a'), { destination: libDest, onWarning: (w) => warnings.push(`${w.code} ${w.path.toString()}`) })
  t.same(warnings, [`not-restored ${path.join(libDest, src.slice(1), 'empty')}`])
  const reader = await ArchiveReader.open(repo, 'a')
  let items = 0
  for await (const _ of reader.walk()) items++
  t.equal(result.items, items - 1, 'the file not restored is not counted')
})

t.test('an existing symlink or hardlink at a target is replaced, never written through', async (t) => {
  const src = scratch()
  await fs.writeFile(path.join(src, 'a.txt'), 'archived a')
  await fs.writeFile(path.join(src, 'b.txt'), 'archived b')
  const { repoDir, env } = await repoWith(src)
  const outside = scratch()
  await fs.writeFile(path.join(outside, 'target'), 'outside, untouched')
  await fs.writeFile(path.join(outside, 'other-name'), 'outside, untouched')
  const dest = scratch()
  const here = path.join(dest, src.slice(1))
  await fs.mkdir(here, { recursive: true })
  await fs.symlink(path.join(outside, 'target'), path.join(here, 'a.txt'))
  await fs.link(path.join(outside, 'other-name'), path.join(here, 'b.txt'))
  const r = await cairn(['extract', `${repoDir}::a`], { env, cwd: dest })
  t.equal(r.code, 0, r.stderr)
  t.equal(await fs.readFile(path.join(outside, 'target'), 'utf8'), 'outside, untouched')
  t.equal(await fs.readFile(path.join(outside, 'other-name'), 'utf8'), 'outside, untouched')
  t.equal(await fs.readFile(path.join(here, 'a.txt'), 'utf8'), 'archived a')
  t.equal(await fs.readFile(path.join(here, 'b.txt'), 'utf8'), 'archived b')
  t.ok((await fs.lstat(path.join(here, 'a.txt'))).isFile(), 'the symlink became a file')
})

t.test('a tree that names an entry twice is refused before anything is written through it', async (t) => {
  const env = testEnv({ CAIRN_PASSPHRASE: PASSPHRASE })
  const repoDir = path.join(scratch(), 'repo')
  await cairn(['init', repoDir], { env })
  const repo = await Repository.open({ location: repoDir, passphrase: PASSPHRASE, configDir: env.CAIRN_CONFIG_DIR!, cacheDir: null })
  t.teardown(() => repo.close())
  const outside = scratch()
  const writer = await RepositoryWriter.start(repo)
  const none = parseCompressionSpec('none')
  const base = { uid: 0, gid: 0, mtimeNs: 0n, atimeNs: 0n, ctimeNs: 0n, size: 0 }
  const inner = await writer.storeBlob(1, encodeLeaf([{ ...base, name: Buffer.from('planted'), kind: 'file', mode: 0o100644, chunks: [] }]), none)
  const root = await writer.storeBlob(
    1,
    encodeLeaf([
      { ...base, name: Buffer.from('a'), kind: 'symlink', mode: 0o120777, target: Buffer.from(outside) },
      { ...base, name: Buffer.from('a'), kind: 'dir', mode: 0o40755, tree: inner, entries: 1 },
    ]),
    none,
  )
  const meta = { name: 'twice', hostname: 'h', username: 'u', commandLine: [], startNs: 1n, endNs: 2n, root, stats: { files: 1, dirs: 1, others: 1, originalSize: 0, compressedSize: 0, deduplicatedSize: 0 }, chunker: repo.config.chunker, comment: '' }
  const id = await writer.storeBlob(2, encodeArchive(meta), none)
  await writer.commit({ name: 'twice', id, time: 1n })
  const dest = scratch()
  const r = await cairn(['extract', `${repoDir}::twice`], { env, cwd: dest })
  t.equal(r.code, 2)
  t.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  t.match(r.stderr, /twice or out of order/)
  t.same(await fs.readdir(outside), [], 'nothing was written through the symlink')
})
