/**
 * `cairn mount` of a repository holding the small corpus (plus xattrs, an ACL, a fifo and awkward names),
 * checked from outside as a client: the mounted archive equals the source byte for byte (names, content,
 * modes, ns times, symlinks, hardlinks, xattrs), cp -a copies odd names exactly, du/stat/find/df work,
 * writes are EROFS, and archives created or deleted while mounted appear and vanish live.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { cairn, scratch, testEnv } from '../helpers/cli.js'
import { smallCorpus } from '../helpers/corpus.js'
import { compareTrees } from '../helpers/tree-compare.js'
import { setXattr, setTimes } from '../../dist/lib/native/posix.js'
import { findMount } from '../../mount/fuse-binding.js'
import { cleanUpMounts, client, eventually, mountDetached, mountpointIn, sh } from './fixtures-mount/mounting.js'

const run = promisify(execFile)
const env = testEnv()
const { track } = cleanUpMounts(t, env)
const work = scratch('cairn-mount-corpus-')
const repo = path.join(work, 'repo')
const source = path.join(work, 'src')
const mp = mountpointIn(work)
const at = (...parts: (string | Buffer)[]): Buffer => Buffer.concat([Buffer.from(mp), ...parts.flatMap((p) => [Buffer.from('/'), Buffer.isBuffer(p) ? p : Buffer.from(p)])])

// Names that must survive as bytes.
const ODD = {
  latin1: Buffer.from('caf\xe9', 'latin1'),
  nfc: Buffer.from('caf\u00e9', 'utf8'),
  nfd: Buffer.from('cafe\u0301', 'utf8'),
  newline: Buffer.from('new\nline'),
  long: Buffer.concat([Buffer.alloc(200, 0x4c), Buffer.from(Array.from({ length: 55 }, (_, i) => 0x80 + i))]),
}

t.before(async () => {
  await run('cp', ['-a', await smallCorpus(), source])
  await fs.rm(path.join(source, '.complete'), { force: true })
  const odd = Buffer.from(path.join(source, 'odd-names'))
  await fs.mkdir(odd)
  for (const [what, name] of Object.entries(ODD)) await fs.writeFile(Buffer.concat([odd, Buffer.from('/'), name]), `${what}\n`)
  const attrs = Buffer.concat([odd, Buffer.from('/attrs')])
  await fs.writeFile(attrs, 'has xattrs')
  await setXattr(attrs, Buffer.from('user.binary'), Buffer.from([0, 1, 2, 255, 0]))
  await setXattr(attrs, Buffer.from('user.caf\xe9', 'latin1'), Buffer.from('latin1 name'))
  await run('setfacl', ['-m', 'u:nobody:r', attrs.toString()]).catch(() => undefined)
  await run('mkfifo', [path.join(odd.toString(), 'pipe')])
  await fs.writeFile(path.join(odd.toString(), 'one'), 'linked')
  await fs.link(path.join(odd.toString(), 'one'), path.join(odd.toString(), 'two'))
  await setTimes(Buffer.from(path.join(odd.toString(), 'one')), -315619200123456789n, 1_600_000_000_987_654_321n)
  t.equal((await cairn(['init', '--encryption', 'repokey', repo], { env })).code, 0, 'init')
  const created = await cairn(['create', `${repo}::first`, '.'], { env, cwd: source, timeoutMs: 240_000 })
  t.equal(created.code, 0, `create: ${created.stderr}`)
  const mounted = await mountDetached([repo], mp, env, track)
  t.equal(mounted.code, 0, `mount detaches and exits 0: ${mounted.stderr}`)
})

t.test('the mounted archive equals the source', async (t) => {
  t.ok(await findMount(mp), 'mounted once the command returned')
  const diffs = await client('compare trees', compareTrees(source, path.join(mp, 'first'), { owners: true }), 180_000)
  t.same(diffs.slice(0, 20), [], 'names, content, modes, mtimes, symlinks, hardlinks and xattrs')

  const src = await fs.lstat(path.join(source, 'odd-names/one'), { bigint: true })
  const one = await client('stat', fs.lstat(at('first', 'odd-names', 'one'), { bigint: true }))
  const two = await client('stat', fs.lstat(at('first', 'odd-names', 'two'), { bigint: true }))
  t.equal(one.ino, two.ino, 'hardlinks share the inode number')
  t.equal(one.nlink, 2n)
  t.equal(one.atimeNs, -315619200123456789n, 'atime to the nanosecond, before 1970 too (as archived; reading the source since moved its atime)')
  t.equal(one.ctimeNs, src.ctimeNs, 'ctime to the nanosecond')
  t.equal(one.blocks, 1n, 'st_blocks')
  const fifo = await client('stat', fs.lstat(at('first', 'odd-names', 'pipe')))
  t.ok(fifo.isFIFO(), 'a fifo is shown as a fifo')
  const acl = await sh('getfacl', ['-n', at('first', 'odd-names', 'attrs').toString()])
  t.match(acl.stdout.toString(), /user:65534:r--/, 'the POSIX ACL reads back through getxattr')

  const listed = await client('readdir', fs.readdir(at('first', 'odd-names'), { encoding: 'buffer' }))
  for (const [what, name] of Object.entries(ODD)) t.ok(listed.some((n) => n.equals(name)), `${what} name listed as its bytes`)
})

t.test('cp -a copies odd names out under their exact bytes', async (t) => {
  const dest = path.join(scratch('cairn-cp-'), 'out')
  const cp = await sh('cp', ['-a', path.join(mp, 'first', 'odd-names'), dest])
  t.equal(cp.code, 0, `cp -a: ${cp.stderr}`)
  t.same(await compareTrees(path.join(source, 'odd-names'), dest, { owners: true }), [], 'the copy equals the source')
})

t.test('cp -a of the whole archive stays exact while the kernel drops its dentries and inodes again and again', async (t) => {
  // cp names the directory it copies, so the files of each listing come by position (mount/fuse-dispatch.ts);
  // dropped by the kernel and found again through their directories, they must still be the same files.
  const dest = path.join(scratch('cairn-cp-'), 'out')
  let dropping = true
  const drops = (async () => {
    let n = 0
    for (; dropping; n++) {
      await fs.writeFile('/proc/sys/vm/drop_caches', '2')
      await new Promise((r) => setTimeout(r, 50))
    }
    return n
  })()
  const cp = await sh('cp', ['-a', path.join(mp, 'first'), dest], { ms: 180_000 })
  dropping = false
  const n = await drops
  t.equal(cp.code, 0, `cp -a: ${cp.stderr}`)
  t.ok(n >= 3, `the kernel dropped its caches ${n} times during the copy`)
  t.same((await compareTrees(source, dest, { owners: true })).slice(0, 20), [], 'the copy equals the source')
})

t.test('du, find, stat, df and read-only', async (t) => {
  const find = await sh('find', [path.join(mp, 'first'), '-print0'], { ms: 60_000 })
  const srcFind = await sh('find', [source, '-print0'])
  t.equal(find.stdout.toString('latin1').split('\0').length, srcFind.stdout.toString('latin1').split('\0').length, 'find sees every entry')
  const du = await sh('du', ['-s', '--block-size=1', path.join(mp, 'first', 'media')])
  t.equal(du.code, 0)
  t.ok(Number(du.stdout.toString().split('\t')[0]) > 1_000_000, `du counts blocks: ${du.stdout}`)
  const df = await sh('df', [mp])
  t.equal(df.code, 0, `df answers: ${df.stderr}`)
  t.match(df.stdout.toString(), /^cairn /m)
  for (const [cmd, args] of [['touch', [path.join(mp, 'first', 'new')]], ['mkdir', [path.join(mp, 'x')]], ['rm', ['-f', path.join(mp, 'first', 'odd-names', 'one')]], ['sh', ['-c', `echo x >> '${path.join(mp, 'first', 'odd-names', 'one')}'`]]] as const) {
    const r = await sh(cmd, [...args])
    t.not(r.code, 0, `${cmd} fails`)
    t.match(r.stderr, /Read-only file system/, `${cmd}: EROFS`)
  }
})

t.test('archives appear and vanish live; create and delete run while mounted', async (t) => {
  t.same((await client('readdir', fs.readdir(mp))).sort(), ['first'])
  const small = scratch('cairn-live-')
  await fs.writeFile(path.join(small, 'hello.txt'), 'hello\n')
  const created = await cairn(['create', `${repo}::second`, '.'], { env, cwd: small })
  t.equal(created.code, 0, `create while mounted: ${created.stderr}`)
  t.ok(await eventually(async () => (await client('readdir', fs.readdir(mp))).includes('second')), 'the new archive appears')
  t.equal(await client('read', fs.readFile(path.join(mp, 'second', 'hello.txt'), 'utf8')), 'hello\n')
  const deleted = await cairn(['delete', `${repo}::second`], { env })
  t.equal(deleted.code, 0, `delete while mounted: ${deleted.stderr}`)
  t.ok(await eventually(async () => !(await client('readdir', fs.readdir(mp))).includes('second')), 'the deleted archive vanishes')
  const regs = await fs.readdir(path.join(repo, 'locks', 'mounts'))
  t.equal(regs.length, 1, 'the mount is registered in the repository')
})

t.test('cairn umount', async (t) => {
  const r = await cairn(['umount', mp], { env })
  t.equal(r.code, 0, `umount: ${r.stderr}`)
  t.equal(await findMount(mp), undefined, 'no mount left')
  t.ok(await eventually(async () => (await fs.readdir(path.join(repo, 'locks', 'mounts'))).length === 0, 10_000), 'the registration is removed')
  const again = await cairn(['umount', mp], { env })
  t.equal(again.code, 2, 'unmounting what is not mounted is an error')
  t.match(again.stderr, /is not mounted/)
})
