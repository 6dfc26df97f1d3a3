/**
 * Every mistake a user can make, and every damage a repository can suffer,
 * ends in one line saying what happened and exit code 2, with no stack
 * trace and no data lost.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { cairn, scratch, testEnv, type CliResult } from './helpers/cli.js'
import { Repository } from '../dist/lib/index.js'
import { RepositoryWriter } from '../dist/lib/repo/writer.js'
import { encodeLeaf } from '../dist/lib/archive/tree.js'
import { encodeArchive } from '../dist/lib/archive/archive-object.js'
import { parseCompressionSpec } from '../dist/lib/compress/codec.js'

const run = promisify(execFile)

function assertOneLineError(t: Tap.Test, r: CliResult, pattern: RegExp): void {
  t.equal(r.code, 2, 'exit code 2')
  const lines = r.stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line on stderr: ${r.stderr}`)
  t.match(lines[0], pattern)
  t.notMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace')
}

async function repoWithArchive(): Promise<{ repo: string; env: Record<string, string | undefined>; src: string }> {
  const src = scratch()
  await fs.writeFile(path.join(src, 'file.txt'), 'hello '.repeat(10000))
  await fs.writeFile(path.join(src, 'random.bin'), randomBytes(3_000_000))
  const repo = path.join(scratch(), 'repo')
  const env = testEnv()
  await cairn(['init', repo], { env })
  const r = await cairn(['create', `${repo}::one`, src], { env })
  if (r.code !== 0) throw new Error(r.stderr)
  return { repo, env, src }
}

t.test('wrong passphrase', async (t) => {
  const { repo, env } = await repoWithArchive()
  assertOneLineError(t, await cairn(['list', repo], { env: { ...env, CAIRN_PASSPHRASE: 'wrong' } }), /wrong passphrase/)
})

t.test('passphrase from CAIRN_PASSCOMMAND, and none at all without a terminal', async (t) => {
  const { repo, env } = await repoWithArchive()
  const viaCommand = await cairn(['list', repo], { env: { ...env, CAIRN_PASSPHRASE: undefined, CAIRN_PASSCOMMAND: `echo '${env.CAIRN_PASSPHRASE}'` } })
  t.equal(viaCommand.code, 0, viaCommand.stderr)
  const started = Date.now()
  assertOneLineError(t, await cairn(['list', repo], { env: { ...env, CAIRN_PASSPHRASE: undefined } }), /no passphrase.*CAIRN_PASSPHRASE/)
  t.ok(Date.now() - started < 10_000, 'fails at once instead of waiting for input')
})

t.test('not a repository, and a repository of an unknown version', async (t) => {
  const dir = scratch()
  assertOneLineError(t, await cairn(['list', dir]), /is not a cairn repository/)
  const { repo, env } = await repoWithArchive()
  const configPath = path.join(repo, 'config')
  const config = JSON.parse(await fs.readFile(configPath, 'utf8'))
  config.version = 99
  await fs.writeFile(configPath, JSON.stringify(config))
  assertOneLineError(t, await cairn(['list', repo], { env }), /version 99/)
})

t.test('a damaged pack is detected, never returned as data', async (t) => {
  const { repo, env } = await repoWithArchive()
  const packs: string[] = []
  for (const sub of await fs.readdir(path.join(repo, 'data'))) for (const f of await fs.readdir(path.join(repo, 'data', sub))) packs.push(path.join(repo, 'data', sub, f))
  for (const pack of packs) {
    const bytes = await fs.readFile(pack)
    bytes[Math.floor(bytes.length / 3)] ^= 0x01
    await fs.writeFile(pack, bytes)
  }
  const dest = scratch()
  assertOneLineError(t, await cairn(['extract', `${repo}::one`], { env, cwd: dest }), /damaged|tampered|authentication/)
})

t.test('a damaged manifest is detected', async (t) => {
  const { repo, env } = await repoWithArchive()
  const manifest = path.join(repo, 'manifest')
  const bytes = await fs.readFile(manifest)
  bytes[bytes.length - 5] ^= 0xff
  await fs.writeFile(manifest, bytes)
  assertOneLineError(t, await cairn(['list', repo], { env }), /damaged|tampered|authentication/)
})

t.test('an archive name that exists, and a path that does not', async (t) => {
  const { repo, env, src } = await repoWithArchive()
  assertOneLineError(t, await cairn(['create', `${repo}::one`, src], { env }), /already exists/)
  assertOneLineError(t, await cairn(['create', `${repo}::two`, path.join(src, 'no-such-file')], { env }), /does not exist/)
  const list = await cairn(['list', '--short', repo], { env })
  t.equal(list.stdout.toString(), 'one\n', 'the repository is unchanged')
})

t.test('extract refuses unsafe names from a hostile repository', async (t) => {
  const repoDir = path.join(scratch(), 'repo')
  const env = testEnv()
  await cairn(['init', repoDir], { env })
  const repo = await Repository.open({ location: repoDir, passphrase: env.CAIRN_PASSPHRASE!, configDir: env.CAIRN_CONFIG_DIR!, cacheDir: null })
  const writer = await RepositoryWriter.start(repo)
  const none = parseCompressionSpec('none')
  for (const [label, name] of [['dotdot', '..'], ['slash', 'a/../../escape'], ['dot', '.']] as const) {
    const item = { name: Buffer.from(name), kind: 'file' as const, mode: 0o100644, uid: 0, gid: 0, mtimeNs: 0n, atimeNs: 0n, ctimeNs: 0n, size: 0, chunks: [] }
    const root = await writer.storeBlob(1, encodeLeaf([item]), none)
    const meta = { name: label, hostname: 'h', username: 'u', commandLine: [], startNs: 1n, endNs: 2n, root, stats: { files: 1, dirs: 0, others: 0, originalSize: 0, compressedSize: 0, deduplicatedSize: 0 }, chunker: repo.config.chunker, comment: '' }
    const id = await writer.storeBlob(2, encodeArchive(meta), none)
    await writer.flush()
    await repo.addArchive({ name: label, id, time: BigInt(Date.now()) * 1_000_000n })
  }
  await writer.commit({ name: 'last', id: (await repo.archives())[0]!.id, time: 3n })
  const outer = scratch()
  const dest = path.join(outer, 'dest')
  await fs.mkdir(dest)
  for (const label of ['dotdot', 'slash', 'dot']) {
    assertOneLineError(t, await cairn(['extract', `${repoDir}::${label}`], { env, cwd: dest }), /unsafe name/)
  }
  t.same(await fs.readdir(outer), ['dest'], 'nothing was written outside the target')
  t.same(await fs.readdir(dest), [], 'nothing was written at all')
})

t.test('a full disk during create leaves the repository at its last commit', { skip: process.getuid?.() !== 0 && 'needs root to mount a small tmpfs' }, async (t) => {
  const mnt = scratch('cairn-tmpfs-')
  await run('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt])
  t.teardown(() => run('umount', ['-l', mnt]).then(() => undefined, () => undefined))
  const repo = path.join(mnt, 'repo')
  const env = testEnv()
  const src = scratch()
  await fs.writeFile(path.join(src, 'small'), 'small file')
  await cairn(['init', repo], { env })
  t.equal((await cairn(['create', `${repo}::fits`, src], { env })).code, 0)
  await fs.writeFile(path.join(src, 'huge'), randomBytes(40 * 1024 * 1024))
  assertOneLineError(t, await cairn(['create', `${repo}::too-big`, src], { env }), /no space left/)
  const list = await cairn(['list', '--short', repo], { env })
  t.equal(list.stdout.toString(), 'fits\n', 'the earlier archive is still listed, the failed one is not')
  const dest = scratch()
  t.equal((await cairn(['extract', `${repo}::fits`], { env, cwd: dest })).code, 0, 'and it still extracts')
  t.equal(await fs.readFile(path.join(dest, src.slice(1), 'small'), 'utf8'), 'small file')
})

t.test('a mount without fusermount says how to install FUSE, and mounts nothing', async (t) => {
  const { repo, env } = await repoWithArchive()
  const mountpoint = scratch()
  const r = await cairn(['mount', repo, mountpoint], { env: { ...env, PATH: scratch() } }) // a PATH with no fusermount
  assertOneLineError(t, r, /fusermount is not installed.*apt-get install -y fuse libfuse2/)
  t.notMatch(await fs.readFile('/proc/self/mountinfo', 'utf8'), new RegExp(` ${mountpoint} `), 'nothing mounted')
})
