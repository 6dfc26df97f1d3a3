/**
 * How `cairn mount` behaves around the happy path, each case in its own mount process: a damaged chunk
 * (EIO for that file only, zeros with allow_damaged_files; in a directory cp -a copies, whose small files load
 * ahead in batches, too), Ctrl-C and SIGTERM in the foreground, kill -9
 * followed by `cairn umount`, the versions view, a keyfile repository mounted detached, and mount errors
 * reported by the detaching parent.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { cairn, scratch, testEnv } from '../helpers/cli.js'
import { damageBlob } from '../helpers/damage.js'
import { ArchiveReader, Repository } from '../../dist/lib/index.js'
import { versionName } from '../../dist/lib/vfs/versions-view.js'
import { findMount } from '../../mount/fuse-binding.js'
import { readRecord } from '../../mount/mount-record.js'
import { cleanUpMounts, client, eventually, mountDetached, mountForeground, mountpointIn, sh } from './fixtures-mount/mounting.js'

const env = testEnv()
const { track } = cleanUpMounts(t, env)
const work = scratch('cairn-mount-behaviour-')
const repo = path.join(work, 'repo')
const src = path.join(work, 'src')
const bad = randomBytes(3 * 1024 * 1024)

/** Flips one byte in the middle of the stored first chunk of `file` in archive `archive` (found via the index). */
async function damageFirstChunk(archive: string, file: string, location = repo): Promise<{ start: number; end: number }> {
  const repository = await Repository.open({ location, passphrase: env.CAIRN_PASSPHRASE!, configDir: env.CAIRN_CONFIG_DIR!, cacheDir: null })
  const item = await (await ArchiveReader.open(repository, archive)).resolve(Buffer.from(file))
  const chunk = item!.chunks![0]!
  await damageBlob(repository, location, chunk.id)
  return { start: 0, end: chunk.size }
}

let damaged = { start: 0, end: 0 }

t.before(async () => {
  await fs.mkdir(src)
  await fs.writeFile(path.join(src, 'good.txt'), 'still fine\n')
  await fs.writeFile(path.join(src, 'bad.bin'), bad)
  await fs.writeFile(path.join(src, 'notes.txt'), 'monday\n')
  t.equal((await cairn(['init', '--encryption', 'repokey', repo], { env })).code, 0, 'init')
  t.equal((await cairn(['create', `${repo}::mon`, '.'], { env, cwd: src })).code, 0, 'create mon')
  damaged = await damageFirstChunk('mon', 'bad.bin')
  await fs.writeFile(path.join(src, 'notes.txt'), 'tuesday\n')
  await fs.rm(path.join(src, 'bad.bin'))
  t.equal((await cairn(['create', `${repo}::tue`, '.'], { env, cwd: src })).code, 0, 'create tue')
})

t.test('a damaged chunk: EIO for that file only, logged; SIGTERM unmounts cleanly', async (t) => {
  const mp = mountpointIn(work, 'strict')
  const m = await mountForeground([`${repo}::mon`], mp, env, track)
  const cat = await sh('cat', [path.join(mp, 'bad.bin')])
  t.not(cat.code, 0, 'reading the damaged file fails')
  t.match(cat.stderr, /Input\/output error/, 'with EIO')
  t.equal((await sh('cat', [path.join(mp, 'good.txt')])).stdout.toString(), 'still fine\n', 'other files still read')
  t.equal((await client('stat', fs.stat(path.join(mp, 'bad.bin')))).size, bad.length, 'the damaged file still lists and stats')
  t.ok(await eventually(async () => /damaged/.test(m.stderr())), `logged on stderr: ${m.stderr()}`)
  m.child.kill('SIGTERM')
  t.equal(await client('exit', m.exited), 0, 'exits 0 on SIGTERM')
  t.equal(await findMount(mp), undefined, 'and unmounted')
})

t.test('cp -a of a directory of small files, one of them damaged: every other file exact, EIO for that one', async (t) => {
  const many = path.join(work, 'many')
  const files = new Map<string, Buffer>()
  await fs.mkdir(path.join(many, 'dir'), { recursive: true })
  for (let i = 0; i < 300; i++) {
    const content = i % 2 ? randomBytes(500 + i * 13) : Buffer.from(`line ${i} compresses, `.repeat(20 + i))
    files.set(`f${String(i).padStart(3, '0')}`, content)
    await fs.writeFile(path.join(many, 'dir', `f${String(i).padStart(3, '0')}`), content)
  }
  const manyRepo = path.join(work, 'repo-many')
  t.equal((await cairn(['init', '--encryption', 'repokey', manyRepo], { env })).code, 0, 'init')
  t.equal((await cairn(['create', `${manyRepo}::many`, '.'], { env, cwd: many })).code, 0, 'create')
  await damageFirstChunk('many', 'dir/f150', manyRepo)
  const mp = mountpointIn(work, 'many-mnt')
  const m = await mountForeground([`${manyRepo}::many`], mp, env, track)
  const dest = path.join(work, 'many-copy')
  const cp = await sh('cp', ['-a', path.join(mp, 'dir'), dest])
  t.equal(cp.code, 1, 'cp -a reports a failure')
  t.match(cp.stderr, /f150.*Input\/output error/, 'for the damaged file, with EIO')
  let exact = 0
  for (const [name, content] of files) {
    if (name === 'f150') continue
    if ((await fs.readFile(path.join(dest, name))).equals(content)) exact++
    else t.fail(`${name}: other bytes`)
  }
  t.equal(exact, 299, 'the 299 others copied exactly')
  m.child.kill('SIGTERM')
  t.equal(await client('exit', m.exited), 0, 'exits 0 on SIGTERM')
})

t.test('allow_damaged_files reads the damaged chunk as zeros; Ctrl-C unmounts cleanly', async (t) => {
  const mp = mountpointIn(work, 'lenient')
  const m = await mountForeground(['-o', 'allow_damaged_files', `${repo}::mon`], mp, env, track)
  const got = await client('read', fs.readFile(path.join(mp, 'bad.bin')))
  t.equal(got.length, bad.length)
  t.ok(got.subarray(damaged.start, damaged.end).equals(Buffer.alloc(damaged.end - damaged.start)), 'the damaged chunk reads as zeros')
  t.ok(got.subarray(damaged.end).equals(bad.subarray(damaged.end)), 'the rest is intact')
  t.match(m.stderr(), /read as zeros/, 'and it is logged')
  m.child.kill('SIGINT')
  t.equal(await client('exit', m.exited), 0, 'exits 0 on Ctrl-C')
  t.equal(await findMount(mp), undefined, 'and unmounted')
})

t.test('cairn umount after kill -9 of the mount process', async (t) => {
  const mp = mountpointIn(work, 'killed')
  const m = await mountForeground([repo], mp, env, track)
  t.same((await client('readdir', fs.readdir(mp))).sort(), ['mon', 'tue'])
  m.child.kill('SIGKILL')
  await client('exit', m.exited)
  t.ok(await findMount(mp), 'a dead mount is left behind')
  const r = await cairn(['umount', mp], { env })
  t.equal(r.code, 0, `umount: ${r.stderr}`)
  t.match(r.stderr, /had died; removed its dead mount/, 'with a clear message')
  t.equal(await findMount(mp), undefined, 'no mount left')
  t.same(await fs.readdir(path.join(repo, 'locks', 'mounts')).catch(() => []), [], 'its registration is removed too')
})

t.test('the versions view', async (t) => {
  const mp = mountpointIn(work, 'versions')
  const r = await mountDetached(['-o', 'versions', repo], mp, env, track)
  t.equal(r.code, 0, `mount -o versions: ${r.stderr}`)
  t.same((await client('readdir', fs.readdir(mp))).sort(), ['bad.bin', 'good.txt', 'notes.txt'], 'the archives merged')
  const refs = await (await Repository.open({ location: repo, passphrase: env.CAIRN_PASSPHRASE!, configDir: env.CAIRN_CONFIG_DIR!, cacheDir: null })).archives()
  const versions = await client('readdir', fs.readdir(path.join(mp, 'notes.txt')))
  t.same(versions, refs.map((a) => versionName(Buffer.from('notes.txt'), a.time).toString()), 'one entry per version, sorted by time')
  t.same(await Promise.all(versions.map((v) => client('read', fs.readFile(path.join(mp, 'notes.txt', v), 'utf8')))), ['monday\n', 'tuesday\n'])
  t.equal((await client('readdir', fs.readdir(path.join(mp, 'good.txt')))).length, 1, 'an unchanged file has one version')
  t.equal((await cairn(['umount', mp], { env })).code, 0)
  t.equal(await findMount(mp), undefined)
})

t.test('a keyfile repository mounts detached: the parent unlocks the key file the child asks about', async (t) => {
  const keyed = path.join(work, 'keyfile-repo')
  t.equal((await cairn(['init', '--encryption', 'keyfile', keyed], { env })).code, 0, 'init')
  t.equal((await cairn(['create', `${keyed}::only`, '.'], { env, cwd: src })).code, 0, 'create')
  const mp = mountpointIn(work, 'keyed')
  const r = await mountDetached([keyed], mp, env, track)
  t.equal(r.code, 0, `mount: ${r.stderr}`)
  t.equal(await client('read', fs.readFile(path.join(mp, 'only', 'notes.txt'), 'utf8')), 'tuesday\n')
  const daemon = await readRecord(path.join(env.CAIRN_CACHE_DIR!, 'mounts'), mp)
  const environ = daemon ? await fs.readFile(`/proc/${daemon.pid}/environ`, 'latin1') : ''
  const tunables = environ.split('\0').find((v) => v.startsWith('GLIBC_TUNABLES='))
  t.match(tunables ?? '', /glibc\.malloc\.hugetlb=1/, "the detached daemon runs with glibc's huge-page tunable")
  t.equal((await cairn(['umount', mp], { env })).code, 0)
  const elsewhere = await mountDetached([keyed], mp, { ...env, CAIRN_CONFIG_DIR: scratch() }, track)
  t.equal(elsewhere.code, 2, 'without the key file')
  t.match(elsewhere.stderr, /^cairn: the key file for repository .* is not in .*\n$/, `one line: ${elsewhere.stderr}`)
  t.equal(await findMount(mp), undefined, 'nothing left mounted')
})

t.test('mount errors come back from the detached process as one line, exit 2', async (t) => {
  const mp = mountpointIn(work, 'errors')
  const missing = await mountDetached([`${repo}::nosuch`], mp, env, track)
  t.equal(missing.code, 2)
  t.match(missing.stderr, /^cairn: there is no archive named "nosuch".*\n$/, 'the archive error, one line')
  const wrong = await mountDetached([repo], mp, { ...env, CAIRN_PASSPHRASE: 'wrong' }, track)
  t.equal(wrong.code, 2)
  t.equal(wrong.stderr.split('\n').length, 2, `one line: ${wrong.stderr}`)
  const notDir = await mountDetached([repo], path.join(work, 'src', 'good.txt'), env, track)
  t.equal(notDir.code, 2)
  t.match(notDir.stderr, /not a directory/)
  const usage = await mountDetached(['-o', 'versions', `${repo}::mon`], mp, env, track)
  t.equal(usage.code, 2, 'versions needs the whole repository')
  t.equal(await findMount(mp), undefined, 'nothing was mounted')
})
