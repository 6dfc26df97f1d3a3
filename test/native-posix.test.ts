// cairn's POSIX addon: exact ns times, xattrs as bytes, mknod, SystemError-shaped errors.
// Runs in a temp dir under os.tmpdir() (/tmp here: ext4, with user xattrs).
// Needs the addon built: node lib/native/build-native.mjs
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { isCairnError } from '../lib/errors.js'
import { evictFromPageCache } from './helpers/page-cache.js'
import {
  displayPath,
  getXattr,
  getXattrSync,
  listXattrs,
  listXattrsSync,
  major,
  makedev,
  minor,
  mknod,
  mknodSync,
  type PosixError,
  readCachedSync,
  adviseDontNeed,
  adviseWillNeedIfCold,
  misalignment,
  dropCleanFilePages,
  discardPages,
  fixMallocMmapThreshold,
  hugePageBuffer,
  ownsItsMemory,
  setTimes,
  setTimesSync,
  setXattr,
  setXattrSync,
} from '../lib/native/posix.js'

const { S_IFIFO, S_IFCHR, S_IFBLK } = fs.constants
const isRoot = process.getuid?.() === 0

const root = fs.mkdtempSync(join(tmpdir(), 'cairn-posix-'))
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }))

let serial = 0
/** A fresh path in the temp dir, as bytes; `suffix` may be any bytes. */
function fresh(suffix: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from(join(root, `n${serial++}-`)), suffix])
}
function touch(path: Buffer): Buffer {
  fs.writeFileSync(path, 'data')
  return path
}
function times(path: Buffer): [bigint, bigint] {
  const st = fs.lstatSync(path, { bigint: true })
  return [st.atimeNs, st.mtimeNs]
}

/** Does this filesystem take user.* xattrs on regular files? */
function userXattrs(): boolean {
  try {
    setXattrSync(touch(fresh()), Buffer.from('user.cairn.probe'), Buffer.from('1'))
    return true
  } catch (err) {
    if ((err as PosixError).code === 'ENOTSUP') return false
    throw err
  }
}

// Chosen to break floating point and truncating division:
const TIMES: [string, bigint][] = [
  ['one ns before the epoch', -1n],
  ['1930, .999999999 s', -(1234567890n * 1_000_000_000n) - 1n],
  ['2009 with 999999999 ns', 1234567890_999999999n],
  ['the epoch', 0n],
  ['2033 with 1 ns', 2_000_000_000_000000001n],
]

t.test('setTimes keeps every nanosecond', async (t) => {
  for (const [label, ns] of TIMES) {
    const file = touch(fresh())
    await setTimes(file, ns, ns + 7n)
    t.same(times(file), [ns, ns + 7n], `file: ${label}`)

    const dir = fresh()
    fs.mkdirSync(dir)
    await setTimes(dir, ns - 3n, ns)
    t.same(times(dir), [ns - 3n, ns], `dir: ${label}`)
  }
})

t.test('setTimes on a symlink sets the link, not its target, unless told to follow', async (t) => {
  const target = touch(fresh())
  setTimesSync(target, 5n, 6n)
  const link = fresh()
  fs.symlinkSync(target, link)

  await setTimes(link, -1n, 1234567890_999999999n)
  t.same(times(link), [-1n, 1234567890_999999999n], 'link has the times')
  t.same(times(target), [5n, 6n], 'target untouched')

  await setTimes(link, 11n, 12n, { followSymlinks: true })
  t.same(times(target), [11n, 12n], 'followSymlinks sets the target')
  // Resolving the link reads it, which may update its atime (relatime): only mtime is kept.
  t.equal(times(link)[1], 1234567890_999999999n, 'and leaves the link')
})

t.test('setTimesSync matches setTimes', async (t) => {
  const file = touch(fresh())
  setTimesSync(file, -999_999_999n, 999_999_999n)
  t.same(times(file), [-999_999_999n, 999_999_999n])
})

t.test('Node fs.utimes loses nanoseconds (why the addon exists)', async (t) => {
  const file = touch(fresh())
  const ns = 1234567890_999999999n
  fs.utimesSync(file, Number(ns) / 1e9, Number(ns) / 1e9)
  t.not(times(file)[1], ns, `fs.utimes stored ${times(file)[1]} for ${ns}`)
})

t.test('errors are shaped like Node SystemError', async (t) => {
  const missing = fresh(Buffer.from([0xff, 0x2f, 0x78])) // invalid UTF-8, then "/x"
  const err = (await setTimes(missing, 0n, 0n).catch((e: unknown) => e)) as PosixError
  t.ok(err instanceof Error)
  t.equal(err.code, 'ENOENT')
  t.equal(err.errno, -2)
  t.equal(err.syscall, 'utimensat')
  t.ok(err.pathBuffer.equals(missing), 'pathBuffer has the exact bytes')
  t.equal(err.path, displayPath(missing))
  t.match(err.path, /\\xff\/x$/, 'display form escapes the invalid byte')
  t.match(err.message, /^ENOENT: no such file or directory, utimensat '.*\\xff\/x'$/)

  t.throws(() => getXattrSync(missing, Buffer.from('user.x')), { code: 'ENOENT', syscall: 'lgetxattr' })
  await t.rejects(listXattrs(missing), { code: 'ENOENT', syscall: 'llistxattr' })
  await t.rejects(setXattr(missing, Buffer.from('user.x'), Buffer.from('')), { code: 'ENOENT', syscall: 'lsetxattr' })
  const fifo = fresh()
  await mknod(fifo, S_IFIFO | 0o600)
  await t.rejects(mknod(fifo, S_IFIFO | 0o600), { code: 'EEXIST', errno: -17, syscall: 'mknod' })
})

t.test('bad arguments are refused before any syscall', async (t) => {
  const file = touch(fresh())
  const anyArg = (v: unknown) => v as never
  await t.rejects(setTimes(anyArg(file.toString()), 0n, 0n), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  await t.rejects(setTimes(file, anyArg(0), 0n), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  await t.rejects(setTimes(file, 2n ** 64n, 0n), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  await t.rejects(getXattr(Buffer.from('a\0b'), Buffer.from('user.x')), { code: 'ERR_INVALID_ARG_VALUE' })
  await t.rejects(getXattr(file, Buffer.from('user.\0x')), { code: 'ERR_INVALID_ARG_VALUE' })
  await t.rejects(mknod(fresh(), 1.5), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  await t.rejects(mknod(fresh(), S_IFIFO, -1), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
})

t.test('xattrs round-trip as bytes', { skip: !userXattrs() && 'no user xattrs on this filesystem' }, async (t) => {
  const file = touch(fresh(Buffer.from([0xc3, 0x28]))) // the path itself is not UTF-8
  const name = Buffer.concat([Buffer.from('user.cairn.'), Buffer.from([0xff, 0xfe, 0x80])])
  const value = Buffer.from([0, 1, 0, 0xff, 0, 0x80, 0])
  const big = Buffer.alloc(3000, 0xa5)
  const empty = Buffer.from('user.cairn.empty')

  await setXattr(file, name, value)
  await setXattr(file, Buffer.from('user.cairn.big'), big)
  setXattrSync(file, empty, Buffer.alloc(0))

  t.same(await getXattr(file, name), value, 'binary value with NUL bytes, non-UTF-8 name')
  t.same(getXattrSync(file, name), value, 'sync twin')
  t.same(await getXattr(file, Buffer.from('user.cairn.big')), big, 'a 3000-byte value')
  t.same(await getXattr(file, empty), Buffer.alloc(0), 'empty value is an empty Buffer, not null')
  t.equal(await getXattr(file, Buffer.from('user.cairn.missing')), null, 'missing attribute is null')
  t.equal(getXattrSync(file, Buffer.from('user.cairn.missing')), null)

  const names = await listXattrs(file)
  for (const want of [name, Buffer.from('user.cairn.big'), empty]) {
    t.ok(names.some((n) => n.equals(want)), `listed: ${displayPath(want)}`)
  }
  t.same(listXattrsSync(file), names, 'sync twin lists the same')

  await setXattr(file, name, Buffer.from('replaced'))
  t.same(await getXattr(file, name), Buffer.from('replaced'), 'set replaces')

  const bare = touch(fresh())
  t.same(
    (await listXattrs(bare)).filter((n) => n.subarray(0, 5).equals(Buffer.from('user.'))),
    [],
    'a new file has no user xattrs',
  )
})

t.test('xattrs on symlinks: never followed', { skip: !userXattrs() && 'no user xattrs on this filesystem' }, async (t) => {
  const target = touch(fresh())
  const link = fresh()
  fs.symlinkSync(target, link)
  await setXattr(target, Buffer.from('user.cairn.t'), Buffer.from('target'))

  t.equal(await getXattr(link, Buffer.from('user.cairn.t')), null, "the target's xattr is not read through the link")
  t.notOk((await listXattrs(link)).some((n) => n.equals(Buffer.from('user.cairn.t'))), 'nor listed')

  // Linux: user.* is only for regular files and directories; on a symlink it is EPERM.
  await t.rejects(setXattr(link, Buffer.from('user.cairn.l'), Buffer.from('x')), { code: 'EPERM', syscall: 'lsetxattr' })

  // trusted.* (root only) may sit on the link itself.
  if (!isRoot) return
  const name = Buffer.from('trusted.cairn.link')
  await setXattr(link, name, Buffer.from([0, 0xff]))
  t.same(await getXattr(link, name), Buffer.from([0, 0xff]), 'trusted.* round-trips on the link')
  t.equal(await getXattr(target, name), null, 'and is not on the target')
})

t.test('ENOTSUP tells a filesystem without xattrs from a missing attribute', async (t) => {
  const procFile = Buffer.from('/proc/self/status') // procfs has no xattr handlers
  if (!fs.existsSync(procFile)) return t.skip('no /proc')
  await t.rejects(getXattr(procFile, Buffer.from('user.x')), { code: 'ENOTSUP', syscall: 'lgetxattr' })
  await t.rejects(setXattr(procFile, Buffer.from('user.x'), Buffer.from('1')), { code: 'ENOTSUP' })
})

t.test('many concurrent calls all settle correctly', { skip: !userXattrs() && 'no user xattrs' }, async (t) => {
  const file = touch(fresh())
  const names = Array.from({ length: 64 }, (_, i) => Buffer.from(`user.cairn.c${i}`))
  await Promise.all(names.map((n, i) => setXattr(file, n, Buffer.from([i, 0, i]))))
  const values = await Promise.all(names.map((n) => getXattr(file, n)))
  t.same(values, names.map((_, i) => Buffer.from([i, 0, i])))

  // A value that changes size while it is read: each read sees one whole value.
  const name = Buffer.from('user.cairn.grows')
  const small = Buffer.alloc(8, 1)
  const large = Buffer.alloc(2000, 2)
  await setXattr(file, name, small)
  const ops: Promise<Buffer | null | void>[] = []
  for (let i = 0; i < 200; i++) {
    ops.push(i % 2 === 0 ? setXattr(file, name, i % 4 === 0 ? large : small) : getXattr(file, name))
  }
  const seen = (await Promise.all(ops)).filter((v): v is Buffer => Buffer.isBuffer(v))
  t.ok(seen.every((v) => v.equals(small) || v.equals(large)), `${seen.length} reads, none torn`)
})

t.test('mknod makes fifos and devices', async (t) => {
  const fifo = fresh(Buffer.from([0xfe]))
  await mknod(fifo, S_IFIFO | 0o640)
  t.ok(fs.lstatSync(fifo).isFIFO(), 'fifo')
  const syncFifo = fresh()
  mknodSync(syncFifo, S_IFIFO | 0o600, 0n)
  t.ok(fs.lstatSync(syncFifo).isFIFO(), 'fifo (sync)')

  const nullDev = fs.statSync('/dev/null').rdev
  t.equal(major(nullDev), 1, 'major of /dev/null')
  t.equal(minor(nullDev), 3, 'minor of /dev/null')
  t.equal(makedev(1, 3), BigInt(nullDev), 'makedev is stat.rdev')
  t.equal(major(makedev(259, 1048575)), 259, 'large major and minor survive')
  t.equal(minor(makedev(259, 1048575)), 1048575)

  if (!isRoot) {
    await t.rejects(mknod(fresh(), S_IFCHR | 0o600, nullDev), { code: 'EPERM', syscall: 'mknod' })
    return
  }
  const chr = fresh()
  await mknod(chr, S_IFCHR | 0o600, nullDev)
  t.ok(fs.lstatSync(chr).isCharacterDevice(), 'char device')
  t.equal(fs.lstatSync(chr).rdev, nullDev, 'with the same rdev')

  const blk = fresh()
  await mknod(blk, S_IFBLK | 0o600, makedev(7, 0))
  t.ok(fs.lstatSync(blk).isBlockDevice(), 'block device')
  t.equal(BigInt(fs.lstatSync(blk).rdev), makedev(7, 0))
})

t.test('readCachedSync reads what is in the page cache, and never waits for a disk', async (t) => {
  const file = join(root, 'cached')
  const data = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 7) & 0xff))
  fs.writeFileSync(file, data)
  fs.readFileSync(file)
  const fd = fs.openSync(file, 'r')
  t.teardown(() => fs.closeSync(fd))
  const got = Buffer.alloc(1500)
  t.equal(readCachedSync(fd, got, 30_000), 1500, 'cached: read on the spot')
  t.ok(got.equals(data.subarray(30_000, 31_500)), 'the bytes at that position')
  t.equal(readCachedSync(fd, Buffer.alloc(10), data.length), 0, 'at the end: nothing')
  evictFromPageCache(file)
  t.equal(readCachedSync(fd, Buffer.alloc(1500), 30_000), -1, 'dropped from the cache: -1, so the caller reads the usual way')
  const closed = fs.openSync(file, 'r')
  fs.closeSync(closed)
  t.equal(readCachedSync(closed, Buffer.alloc(10), 0), -1, 'a failure is -1 too: the usual read reports it')
  t.throws(() => readCachedSync(-1, Buffer.alloc(1), 0), { code: 'ERR_INVALID_ARG_TYPE' })
})

t.test('adviseWillNeedIfCold tells a file the backup brings in from one already cached; adviseDontNeed drops it again; misalignment', async (t) => {
  const file = join(root, 'advised')
  fs.writeFileSync(file, Buffer.alloc(256 * 1024, 0x61))
  const fd = fs.openSync(file, 'r')
  t.teardown(() => fs.closeSync(fd))
  evictFromPageCache(file) // written pages stay dirty until synced, and only clean ones can be dropped
  fs.readFileSync(file)
  t.equal(adviseWillNeedIfCold(fd), false, 'cached: left alone')
  adviseDontNeed(fd, 0, 0)
  t.equal(readCachedSync(fd, Buffer.alloc(1), 100_000), -1, 'adviseDontNeed dropped it')
  t.equal(adviseWillNeedIfCold(fd), true, 'not cached: cold, and its reading is started')
  const empty = join(root, 'advised-empty')
  fs.writeFileSync(empty, '')
  const emptyFd = fs.openSync(empty, 'r')
  t.teardown(() => fs.closeSync(emptyFd))
  t.equal(adviseWillNeedIfCold(emptyFd), false, 'an empty file has nothing to bring in')
  t.throws(() => adviseWillNeedIfCold(-1), { code: 'ERR_INVALID_ARG_TYPE' })
  const bytes = Buffer.alloc(64)
  t.equal(misalignment(bytes.subarray(5), 4096), (misalignment(bytes, 4096)! + 5) % 4096, 'misalignment: a view 5 bytes in is 5 bytes further')
  t.equal(misalignment(bytes, 1), 0)
  t.throws(() => adviseDontNeed(fd, -1, 0), { code: 'ERR_OUT_OF_RANGE' })
})

t.test('dropCleanFilePages lowers the resident set, and the process goes on as before', async (t) => {
  const status = (field: string): number => Number(fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`${field}:\\s+(\\d+) kB`))![1]) * 1024
  const kept = Buffer.alloc(8 * 1024 * 1024, 0x5a) // anonymous memory: never dropped
  const fileBefore = status('RssFile')
  const dropped = dropCleanFilePages()
  const fileAfter = status('RssFile')
  t.ok(dropped > 10 * 1024 * 1024, `${(dropped / 2 ** 20).toFixed(1)} MiB of file pages were resident in read-only mappings`)
  t.ok(fileAfter < fileBefore - 10 * 1024 * 1024, `file-backed resident memory ${(fileBefore / 2 ** 20).toFixed(1)} → ${(fileAfter / 2 ** 20).toFixed(1)} MiB`)
  t.ok(kept.every((b) => b === 0x5a), 'anonymous memory is untouched')
  // Code, relocated data and the addon itself all still work.
  const file = join(root, 'after-drop')
  await setXattr(touch(Buffer.from(file)), Buffer.from('user.cairn.x'), Buffer.from('y')).catch(() => undefined)
  t.same(JSON.parse(JSON.stringify({ a: [1, 'é'] })), { a: [1, 'é'] }, 'JSON, strings, the runtime')
  t.equal(major(makedev(8, 1)), 8, 'the addon')
})

t.test('discardPages gives a buffer\'s whole pages back: they leave the resident set and read as zeros', async (t) => {
  const anon = (): number => Number(/RssAnon:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024
  const shared = Buffer.from(new SharedArrayBuffer(16 * 1024 * 1024)).fill(0x5a)
  const before = anon()
  // A view starting 100 bytes in: the partial pages at either end are kept.
  const view = shared.subarray(100, shared.length - 100)
  const given = discardPages(view)
  t.ok(given % 4096 === 0 && given > view.length - 2 * 4096 && given <= view.length, `every whole page inside the view (${given} of ${view.length} bytes)`)
  t.ok(anon() < before - 15 * 1024 * 1024, `resident anonymous memory ${(before / 2 ** 20).toFixed(1)} → ${(anon() / 2 ** 20).toFixed(1)} MiB`)
  const zeros = shared.reduce((n, b) => n + (b === 0 ? 1 : 0), 0)
  t.equal(zeros, given, 'the bytes given back read as zeros, and no others')
  t.ok(shared.subarray(8192, shared.length - 8192).every((b) => b === 0), 'all inside the view but its ends')
  t.ok(shared.subarray(0, 100).every((b) => b === 0x5a) && shared.subarray(shared.length - 100).every((b) => b === 0x5a), 'bytes outside the view keep theirs')
  t.throws(() => discardPages(new Uint32Array(4) as unknown as Uint8Array), TypeError)
})

const thp = (() => {
  try {
    return !fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').includes('[never]')
  } catch {
    return false
  }
})()

t.test('hugePageBuffer: its partly used last block stays out of huge pages where glibc advises whole blocks', { skip: !thp && 'transparent huge pages are off here' }, (t) => {
  // The mount daemon runs with glibc.malloc.hugetlb=1: glibc then advises every block it maps for huge pages,
  // and a buffer's last block, a quarter used, would take a whole 2 MiB page (a cached chunk held twice its size).
  const child = `
    import { readFileSync } from 'node:fs'
    const { hugePageBuffer } = await import(${JSON.stringify(new URL('../dist/lib/native/posix.js', import.meta.url).href)})
    const inHugePages = () => Number(/AnonHugePages:\\s+(\\d+)/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))[1]) * 1024
    const before = inHugePages()
    const kept = []
    for (let i = 0; i < 8; i++) kept.push(hugePageBuffer(2 * 2 ** 20 + 256 * 2 ** 10).fill(1))
    console.log(inHugePages() - before)`
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', child], { env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' }, encoding: 'utf8' })
  t.equal(run.status, 0, run.stderr)
  const grown = Number(run.stdout.trim())
  // One 2 MiB page each (16 MiB), two without the advice (32 MiB); the margin is for the heap's own growth.
  t.ok(grown < 8 * 3 * 2 ** 20, `8 buffers of 2.25 MiB took ${grown / 2 ** 20} MiB of huge pages: one each, not two`)
  t.end()
})

t.test('hugePageBuffer: filled with one fault per 2 MiB, and its memory moves to a worker whole', { skip: !thp && 'transparent huge pages are off here' }, async (t) => {
  const faults = (): number => Number(fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[7])
  const length = 6 * 1024 * 1024 + 1536 * 1024 // three whole 2 MiB blocks and a last one three quarters used
  const buf = hugePageBuffer(length)
  t.equal(buf.length, length)
  t.equal(misalignment(buf, 2 * 1024 * 1024), 0, 'starts on a 2 MiB boundary')
  const before = faults()
  buf.fill(0x5a)
  const taken = faults() - before
  // Under half of what 4 KiB pages take: on a busy machine the kernel may find no free 2 MiB page for a block at
  // that moment and fill that one with 4 KiB pages (512 faults; seen once in the whole suite, 10-12 alone).
  t.ok(taken < length / 4096 / 2, `filling ${length / 2 ** 20} MiB took ${taken} page faults (in 4 KiB pages: ${length / 4096})`)

  t.ok(ownsItsMemory(buf), 'its view is the only user of its memory')
  t.notOk(ownsItsMemory(Buffer.allocUnsafeSlow(8192).subarray(100, 200)), 'a view of part of a plain buffer is not')
  t.ok(ownsItsMemory(Buffer.allocUnsafeSlow(8192)), 'a buffer covering its memory whole is')
  const { Worker } = await import('node:worker_threads')
  const w = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.once("message", (v) => parentPort.postMessage([v.length, v[0], v[v.length - 1]]))', { eval: true })
  const answer = new Promise((resolve) => w.once('message', resolve))
  w.postMessage(buf, [buf.buffer])
  t.equal(buf.length, 0, 'transferred, not copied: detached here')
  t.same(await answer, [length, 0x5a, 0x5a], 'the worker sees the same bytes')
  await w.terminate()
})

t.test('fixMallocMmapThreshold: a big block freed goes back to the system, also after a bigger one was freed', async (t) => {
  // In a child of its own: the thresholds are the process's. It frees a 16 MiB block (glibc then raises its
  // thresholds to 16 and 32 MiB), then writes and frees an 8 MiB one, and prints what that one left resident.
  const script = `
    import { readFileSync } from 'node:fs'
    import { fixMallocMmapThreshold } from ${JSON.stringify(new URL('../dist/lib/native/posix.js', import.meta.url).href)}
    if (process.argv[1] === 'fix' && !fixMallocMmapThreshold(256 * 1024, 1024 * 1024)) process.exit(3) // the mount's
    const anon = () => Number(/RssAnon:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
    const collect = async () => { for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setTimeout(r, 20)) } }
    let block = Buffer.allocUnsafeSlow(16 << 20).fill(1)
    block = null
    await collect()
    const before = anon()
    block = Buffer.allocUnsafeSlow(8 << 20).fill(2)
    block = null
    await collect()
    console.log(anon() - before)`
  const left = (mode: string): number => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--no-concurrent-array-buffer-sweeping', '--input-type=module', '-e', script, mode], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr}`)
    return Number(r.stdout.trim())
  }
  const adapting = left('default')
  const fixed = left('fix')
  t.ok(adapting > 6 * 1024 * 1024, `glibc adapting its thresholds kept ${(adapting / 2 ** 20).toFixed(1)} MiB of the freed block resident`)
  t.ok(fixed < 2 * 1024 * 1024, `with them fixed, ${(fixed / 2 ** 20).toFixed(1)} MiB`)
  t.throws(() => fixMallocMmapThreshold(0), RangeError)
  t.throws(() => fixMallocMmapThreshold(128 * 1024, 0), RangeError)
})

t.test('without the built addon: CairnError at first use, not at import', async (t) => {
  const posix = await t.mockImport<typeof import('../lib/native/posix.js')>('../lib/native/posix.js', {
    'node:fs': { ...fs, existsSync: (p: fs.PathLike) => !String(p).endsWith('.node') && fs.existsSync(p) },
  })
  const err = await posix.setTimes(fresh(), 0n, 0n).catch((e: unknown) => e)
  t.ok(isCairnError(err, 'io'), 'CairnError io')
  t.match(err, { message: /native helper is not built: .*cairn_posix\.node is missing/, hint: /npm rebuild cairn-backup/ })
  t.throws(() => posix.makedev(1, 3), { code: 'io' }, 'the sync helpers too')
})
