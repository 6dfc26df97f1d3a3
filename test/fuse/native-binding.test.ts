/**
 * cairn's FUSE binding (mount/native/lowlevel.c under mount/fuse-binding.ts), end to end: a child process
 * (fixtures/memfs-server.ts) mounts a tiny in-memory tree and this process checks it from outside, as a client, with Node's fs
 * and with cp, diff, find, stat, getfattr, setfattr. Every client call runs under a timeout; the mount is
 * removed in teardown whatever happened. Needs root (or fusermount rights) and /dev/fuse.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import * as fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { checkFuseAvailable, findMount, forceUnmount } from '../../mount/fuse-binding.js'
import { BIG, BYTE_NAMES, FIXED_FILES, INOS, LINK_TARGET, LONG_LINK_TARGET, NAMES, STAGED_DIR_AT, STAGED_ENTRIES, TIMES, WIDE_DIRS, WIDE_ENTRIES, XATTRS, buildTree, contentOf, fixedName, stagedContent, stagedName, wideName, type MemNode } from './fixtures/memfs-tree.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/memfs-server.ts', import.meta.url))
const CLIENT_TIMEOUT = 20_000

const base = await mkdtemp(path.join(tmpdir(), 'cairn-fuse-test-'))
const mp = path.join(base, 'mnt')
await mkdir(mp)
const at = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat([Buffer.from(mp), ...parts.flatMap((p) => [Buffer.from('/'), Buffer.isBuffer(p) ? p : Buffer.from(p)])])

/** Any client call, bounded: a hung mount fails the test instead of hanging it. */
function client<T>(what: string, p: Promise<T>, ms = CLIENT_TIMEOUT): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms) })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

interface Ran { code: number; stdout: Buffer; stderr: string }
/** A command as a client. Node passes argv as UTF-8, so commands get ASCII paths; their output is kept as bytes. */
function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return client(`${cmd} ${args.join(' ')}`, new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'buffer', timeout: CLIENT_TIMEOUT, killSignal: 'SIGKILL', env, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, stdout, stderr: stderr.toString() }))
  }))
}

// ---- the server ------------------------------------------------------------------------------------------

interface Server { child: ChildProcessWithoutNullStreams; events: Record<string, unknown>[]; exited: Promise<number | null> }

async function startServer(...args: string[]): Promise<Server> {
  const child = spawn(process.execPath, [...process.execArgv, FIXTURE, mp, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  const events: Record<string, unknown>[] = []
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  child.stderr.on('data', (d: Buffer) => process.stderr.write(d))
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const ev = JSON.parse(line) as Record<string, unknown>
      events.push(ev)
      if (ev.ready) resolve()
    })
    void exited.then((code) => reject(new Error(`server exited with ${code} before mounting`)))
  })
  await client('mount', ready, 30_000)
  return { child, events, exited }
}

/** Whatever state it is in: ask the server to unmount, then force it. */
async function stopServer(s: Server | undefined): Promise<void> {
  if (s && s.child.exitCode === null && s.child.signalCode === null) {
    s.child.stdin.write('unmount\n')
    const code = await Promise.race([s.exited, new Promise((r) => setTimeout(r, 10_000, 'timeout'))])
    if (code === 'timeout') {
      await forceUnmount(mp, { abort: true }).catch(() => undefined)
      s.child.kill('SIGKILL')
      await Promise.race([s.exited, new Promise((r) => setTimeout(r, 5_000))])
    }
  }
  if (await findMount(mp)) await forceUnmount(mp, { abort: true })
}

let server: Server | undefined
t.teardown(async () => {
  await stopServer(server)
  await rm(base, { recursive: true, force: true })
})

server = await startServer()

// ---- the checks ------------------------------------------------------------------------------------------

const hex = (names: Buffer[]) => names.map((n) => n.toString('hex')).sort()

t.test('the binding loads here', async (t) => {
  await t.resolves(checkFuseAvailable())
})

t.test('the mount is read-only and carries a comma in fsname', async (t) => {
  const info = await findMount(mp)
  t.ok(info, 'listed in /proc/self/mountinfo')
  t.equal(info?.fstype, 'fuse.cairn-test')
  t.equal(info?.source, 'cairn,test')
  t.match(info?.options, /(^|,)ro(,|$)/)
})

t.test('names are listed and opened byte-exact', async (t) => {
  t.equal(NAMES.long.length, 255)
  const listed = await client('readdir names', fs.readdir(at('names'), { encoding: 'buffer' }))
  t.same(hex(listed), hex(Object.values(NAMES)), 'non-UTF-8, NFC, NFD, newline and 255-byte names')
  for (const name of Object.values(NAMES)) {
    t.same(await client('read', fs.readFile(at('names', name))), contentOf(name), `content of ${name.toString('hex')}`)
  }
})

t.test('every byte 0x01-0xFF but / round-trips in a name', async (t) => {
  const listed = await client('readdir bytes', fs.readdir(at('bytes'), { encoding: 'buffer' }))
  t.same(hex(listed), hex(BYTE_NAMES), `${BYTE_NAMES.length} names`)
  const found = await sh('find', [path.join(mp, 'bytes'), '-mindepth', '1', '-print0'])
  const prefix = Buffer.from(path.join(mp, 'bytes') + '/')
  const byFind = found.stdout.toString('latin1').split('\0').filter(Boolean).map((p) => Buffer.from(p, 'latin1').subarray(prefix.length))
  t.same(hex(byFind), hex(BYTE_NAMES), 'find -print0 agrees')
  let wrong = 0
  for (const name of BYTE_NAMES) {
    const data = await client('read', fs.readFile(at('bytes', name)))
    if (!data.equals(contentOf(name))) wrong++
  }
  t.equal(wrong, 0, 'every file opens and reads its own content')
})

t.test('cp -a and diff -r keep names, bytes, times and hard links', async (t) => {
  const copy = path.join(base, 'copy')
  await mkdir(copy)
  const cp = await sh('cp', ['-a', path.join(mp, 'names'), path.join(mp, 'links'), path.join(mp, 'times'), copy])
  t.equal(cp.code, 0, cp.stderr)
  const diff = await sh('diff', ['-r', path.join(mp, 'names'), path.join(copy, 'names')])
  t.equal(diff.code, 0, `diff -r: ${diff.stdout.toString('latin1')}${diff.stderr}`)
  const copied = await fs.readdir(path.join(copy, 'names'), { encoding: 'buffer' })
  t.same(hex(copied), hex(Object.values(NAMES)))
  for (const name of Object.values(NAMES)) {
    const p = Buffer.concat([Buffer.from(path.join(copy, 'names') + '/'), name])
    t.same(await fs.readFile(p), contentOf(name))
  }
  const a = await fs.stat(path.join(copy, 'links', 'a'))
  const b = await fs.stat(path.join(copy, 'links', 'b'))
  t.equal(a.ino, b.ino, 'the copy has one file with two names')
  t.equal(a.nlink, 2)
  const ancient = await fs.stat(path.join(copy, 'times', 'ancient'), { bigint: true })
  t.equal(ancient.mtimeNs, TIMES.ancient.mtimeNs, 'cp -a kept the pre-1970 nanosecond mtime')
})

t.test('times keep nanoseconds, also before 1970', async (t) => {
  for (const [name, times] of Object.entries(TIMES)) {
    const st = await client('stat', fs.stat(at('times', name), { bigint: true }))
    t.equal(st.mtimeNs, times.mtimeNs, `${name} mtime`)
    t.equal(st.atimeNs, times.atimeNs, `${name} atime`)
    t.equal(st.ctimeNs, times.ctimeNs, `${name} ctime`)
    const out = await sh('stat', ['-c', '%y|%x|%z', path.join(mp, 'times', name)], { ...process.env, TZ: 'UTC' })
    t.equal(out.stdout.toString().trim(), [times.mtimeNs, times.atimeNs, times.ctimeNs].map(statTime).join('|'), `stat -c %y ${name}`)
  }
})

t.test('hard links share a 63-bit inode number', async (t) => {
  const a = await client('stat', fs.stat(at('links', 'a'), { bigint: true }))
  const b = await client('stat', fs.stat(at('links', 'b'), { bigint: true }))
  t.equal(a.ino, INOS.hardlink)
  t.equal(b.ino, INOS.hardlink)
  t.equal(a.nlink, 2n)
  t.equal((await client('stat', fs.stat(at('links', 'above32'), { bigint: true }))).ino, INOS.above32)
  const top = await client('stat', fs.stat(at('links', 'top'), { bigint: true }))
  t.equal(top.ino, INOS.top, 'bit 62 survives (fs.stat)')
  const byStat = await sh('stat', ['-c', '%i', path.join(mp, 'links', 'top')])
  t.equal(byStat.stdout.toString().trim(), INOS.top.toString(), 'bit 62 survives (stat -c %i)')
  const entries = await client('readdir', fs.readdir(at('links'), { withFileTypes: true }))
  t.same(entries.map((e) => [e.name, e.isFile()]).sort(), [['a', true], ['above32', true], ['b', true], ['top', true]], 'readdir carries d_type')
})

// 'xattr' hands its xattrs over with the lookup (the binding answers, as in cairn's mount); 'xattr-asked' does not.
for (const file of ['xattr', 'xattr-asked']) {
  t.test(`xattrs: names and values are bytes (${file})`, async (t) => {
    const out = await sh('getfattr', ['--absolute-names', '-d', '-m', '-', '-e', 'hex', path.join(mp, file)])
    t.equal(out.code, 0, out.stderr)
    const got = new Map(out.stdout.toString('latin1').split('\n').filter((l) => l.includes('=0x')).map((l) => {
      const i = l.lastIndexOf('=0x')
      return [l.slice(0, i), l.slice(i + 3)] as [string, string]
    }))
    t.same(got, new Map([...XATTRS].map(([k, v]) => [k, v.toString('hex')])), 'getfattr -d lists every name and value byte-exact')
    const missing = await sh('getfattr', ['--absolute-names', '-n', 'user.missing', path.join(mp, file)])
    t.match(missing.stderr, /No such attribute/)
  })

  t.test(`xattr buffers that are too small answer ERANGE (${file})`, async (t) => {
    const py = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
p = sys.argv[1].encode()
buf = ctypes.create_string_buffer(64)
def call(f, *a):
    r = f(*a)
    return r if r >= 0 else -ctypes.get_errno()
print(call(libc.getxattr, p, b'user.binary', None, ctypes.c_size_t(0)),
      call(libc.getxattr, p, b'user.binary', buf, ctypes.c_size_t(2)),
      call(libc.listxattr, p, None, ctypes.c_size_t(0)),
      call(libc.listxattr, p, buf, ctypes.c_size_t(5)))
`
    const out = await sh('python3', ['-c', py, path.join(mp, file)])
    const listSize = [...XATTRS.keys()].reduce((n, k) => n + k.length + 1, 0)
    t.equal(out.stdout.toString().trim(), `5 -34 ${listSize} -34`, out.stderr)
  })
}

t.test('readlink gives the target bytes', async (t) => {
  t.same(await client('readlink', fs.readlink(at('symlink'), { encoding: 'buffer' })), LINK_TARGET, 'non-UTF-8 target')
  t.same(await client('readlink', fs.readlink(at('longlink'), { encoding: 'buffer' })), LONG_LINK_TARGET, '4003-byte target')
})

t.test('large reads land at the right offsets', async (t) => {
  t.ok((await client('read big', fs.readFile(at('big')))).equals(BIG), '3 MiB read whole')
  const fh = await client('open', fs.open(at('big'), 'r'))
  try {
    const buf = Buffer.alloc(300_001)
    const { bytesRead } = await client('pread', fh.read(buf, 0, buf.length, 1_000_003))
    t.equal(bytesRead, buf.length)
    t.ok(buf.equals(BIG.subarray(1_000_003, 1_300_004)), 'pread at an odd offset')
  } finally {
    await fh.close()
  }
})

t.test('listings many pages long, read in turns, come out whole', async (t) => {
  // 80 directories of 300 entries, open at once and read a few entries at a time in turn: more listings
  // than the binding keeps (64), so most pages are asked for after their listing was pushed out, and
  // JavaScript is asked for it again.
  const expected = JSON.stringify(Array.from({ length: WIDE_ENTRIES }, (_, i) => wideName(i)).sort())
  const listedBefore = server!.events.filter((e) => e.listed !== undefined).length
  const dirs = await client('opendir', Promise.all(Array.from({ length: WIDE_DIRS }, (_, d) =>
    fs.opendir(path.join(mp, 'wide', `d${String(d).padStart(2, '0')}`), { bufferSize: 4 }))))
  const names: string[][] = dirs.map(() => [])
  await client('read in turns', (async () => {
    for (let open = dirs.length; open > 0;) {
      open = 0
      for (let d = 0; d < dirs.length; d++) {
        const entry = await dirs[d]!.read()
        if (entry) { names[d]!.push(entry.name); open++ }
      }
    }
  })())
  await Promise.all(dirs.map((d) => d.close().catch(() => undefined)))
  const wrong = names.filter((n) => JSON.stringify([...n].sort()) !== expected)
  t.equal(wrong.length, 0, `${WIDE_DIRS} directories of ${WIDE_ENTRIES} entries listed whole`)
  const asked = server!.events.filter((e) => e.listed !== undefined).length - listedBefore
  t.ok(asked > WIDE_DIRS, `listings were pushed out and asked for again (${asked} listings for ${WIDE_DIRS} directories)`)
})

/**
 * Runs a line of the server's stdin commands and waits for its answer. Events come in order on the
 * server's stdout, so once it answers, every event of a request answered before is in.
 */
async function command(line: string): Promise<void> {
  const before = server!.events.length
  server!.child.stdin.write(line + '\n')
  await client(line, (async () => {
    while (!server!.events.slice(before).some((e) => e.done === line)) await new Promise((r) => setTimeout(r, 10))
  })())
}

t.test('xattrs handed over with the lookup are answered without JavaScript, an empty list too', async (t) => {
  const askedOf = (ino: bigint) => server!.events.filter((e) => e.xattrAsked === String(ino)).length
  for (const file of ['xattr', 'no-xattrs', 'xattr-asked']) {
    const { ino } = await client('stat', fs.stat(path.join(mp, file), { bigint: true }))
    const before = askedOf(ino)
    const out = await sh('getfattr', ['--absolute-names', '-d', '-m', '-', path.join(mp, file)])
    t.equal(out.code, 0, out.stderr)
    t.equal(out.stdout.toString().includes('user.'), file !== 'no-xattrs', `${file}: listed as it is`)
    await command('sync')
    const asked = askedOf(ino) - before
    if (file === 'xattr-asked') t.ok(asked > 0, `${file}: JavaScript was asked (${asked})`)
    else t.equal(asked, 0, `${file}: answered by the binding`)
  }
})

t.test('what the server says never changes is kept by the kernel, the rest is asked for again', async (t) => {
  const from = server!.events.length
  for (let i = 0; i < 2; i++) {
    await client('stat', fs.stat(at('links', 'a')))
    await client('stat', fs.stat(at('times', 'modern')))
  }
  await command('sync')
  const looked = (name: string) => server!.events.slice(from).filter((e) => e.looked === name).length
  t.ok(looked('a') <= 1, `links/a, in a fixed directory: kept for a minute (${looked('a')} lookups)`)
  t.equal(looked('modern'), 2, 'times/modern: looked up every time (the mount\'s timeouts are 0 here)')
  t.equal(looked('links'), 2, 'links itself, named in the root, which is not fixed: every time')
})

t.test('a listing stays in the kernel until the server invalidates it', async (t) => {
  t.notOk((await client('readdir', fs.readdir(mp))).includes('added'), 'not there yet')
  await command('add added')
  t.notOk((await client('readdir', fs.readdir(mp))).includes('added'), 'listed from the kernel\'s readdir cache: the server was not asked')
  await command('invalidate')
  t.ok((await client('readdir', fs.readdir(mp))).includes('added'), 'after invalidate(1n) the kernel asks again')
})

t.test('writes answer EROFS', async (t) => {
  await t.rejects(client('write', fs.writeFile(at('names', NAMES.nfc), 'x')), { code: 'EROFS' }, 'overwrite')
  await t.rejects(client('create', fs.writeFile(at('new-file'), 'x')), { code: 'EROFS' }, 'create')
  await t.rejects(client('mkdir', fs.mkdir(at('new-dir'))), { code: 'EROFS' }, 'mkdir')
  await t.rejects(client('unlink', fs.unlink(at('big'))), { code: 'EROFS' }, 'unlink')
  const set = await sh('setfattr', ['-n', 'user.new', '-v', '1', path.join(mp, 'xattr')])
  t.match(set.stderr, /Read-only file system/, 'setfattr')
})

t.test('a handler that throws answers EIO and the mount lives on', async (t) => {
  await t.rejects(client('stat boom', fs.stat(at('boom'))), { code: 'EIO' })
  await command('sync') // the server's earlier lines have been read once it answers this
  t.ok(server?.events.some((e) => e.handlerError === 'lookup' && e.ino === '1' && e.name === 'boom'), 'reported to onError')
  t.ok((await client('stat root', fs.stat(mp))).isDirectory(), 'still serving')
})

t.test('unmount removes the mount and the server exits by itself', async (t) => {
  const s = server!
  s.child.stdin.write('unmount\n')
  t.equal(await client('server exit', s.exited), 0)
  t.ok(s.events.some((e) => e.unmounted), 'unmount() resolved')
  t.equal(await findMount(mp), undefined, 'gone from mountinfo')
})

t.test('unmount still resolves when the mount was removed from outside', async (t) => {
  server = await startServer()
  const out = await sh('fusermount', ['-uz', mp])
  t.equal(out.code, 0, out.stderr)
  server.child.stdin.write('unmount\n')
  t.equal(await client('server exit', server.exited), 0, 'the server exits: the binding closed its session')
  t.ok(server.events.some((e) => e.unmounted))
})

t.test('subdirectories come with their listing: entering them needs no lookup (READDIRPLUS)', async (t) => {
  await stopServer(server)
  server = await startServer('cached') // names and attributes kept by the kernel, as in cairn's mount
  const tree = buildTree()
  const lookedUp = (from: number) => server!.events.slice(from).filter((e) => typeof e.looked === 'string').map((e) => e.looked as string)
  const check = async (dir: string, sub: string, node: MemNode) => {
    const st = await client('stat', fs.stat(at(dir, sub), { bigint: true }))
    t.same([st.ino, st.mode, st.nlink, st.mtimeNs, st.ctimeNs], [node.attr.ino, BigInt(node.attr.mode), BigInt(node.attr.nlink), node.attr.mtimeNs, node.attr.ctimeNs], `${dir}/${sub}: attributes as served`)
    t.same((await client('readdir', fs.readdir(at(dir, sub)))).length, node.children!.size, `${dir}/${sub}: listed by the node the listing handed over`)
  }

  const before = server.events.length
  const rootNames = await client('readdir root', fs.readdir(mp))
  const subdirs = [...tree.children!].filter(([, n]) => n.children)
  for (const [name, node] of subdirs) await check('', name, node)
  t.same(lookedUp(before), [], `${subdirs.length} subdirectories of the root entered without a lookup`)
  t.ok(rootNames.includes('wide'))
  const xattrDir = tree.children!.get('xattr-dir')!
  const asked = server.events.length
  const out = await sh('getfattr', ['--absolute-names', '-d', '-m', '-', path.join(mp, 'xattr-dir')])
  t.ok(out.code === 0 && out.stdout.toString().includes('user.'), 'a directory\'s xattrs came with the listing')
  await command('sync')
  t.equal(server.events.slice(asked).filter((e) => e.xattrAsked === String(xattrDir.attr.ino)).length, 0, 'and are answered without JavaScript')

  const wideBefore = server.events.length
  await client('readdir wide', fs.readdir(at('wide')))
  const wide = [...tree.children!.get('wide')!.children!]
  for (const [name, node] of wide) await check('wide', name, node)
  const looked = lookedUp(wideBefore)
  // As many as the kernel's first page holds: all 80 here (Linux 6.18); about 25 where its pages are 4 KiB.
  t.ok(looked.length <= WIDE_DIRS - 20, `at least 20 of wide's ${WIDE_DIRS} subdirectories came with the first page (${looked.length} looked up)`)

  // The kernel forgets what it was handed as it forgets what it looked up: asked again, they are looked up again.
  await fs.writeFile('/proc/sys/vm/drop_caches', '2')
  const afterDrop = server.events.length
  await check('', 'times', tree.children!.get('times')!)
  t.ok(server.events.slice(afterDrop).some((e) => e.looked === 'times'), 'looked up again once the kernel dropped its caches')
})

t.test('while a program looks files up, the files of a fixed directory come with its listing, named by position: stat, read and xattrs ask no lookup', async (t) => {
  // The server from the test before: names and attributes kept by the kernel, as in cairn's mount. A program
  // looks a file up first (the kernel having forgotten it): entries named by position go with listings from then on.
  await fs.writeFile('/proc/sys/vm/drop_caches', '2')
  await client('stat', fs.stat(at('links', 'above32')))
  const tree = buildTree()
  const fixed = [...tree.children!.get('fixed')!.children!.values()]
  const before = server!.events.length
  const names = await client('readdir fixed', fs.readdir(at('fixed')))
  t.equal(names.length, FIXED_FILES)
  for (let i = 0; i < FIXED_FILES; i++) {
    const st = await client('lstat', fs.lstat(at('fixed', fixedName(i)), { bigint: true }))
    const want = fixed[i]!.attr
    // Node keeps bigint stats in a BigInt64Array, so an ino with bit 63 set comes out negative: read it unsigned
    if (BigInt.asUintN(64, st.ino) !== want.ino || st.mode !== BigInt(want.mode) || st.size !== BigInt(want.size) || st.mtimeNs !== want.mtimeNs) {
      t.fail(`${fixedName(i)}: attributes as served`)
      break
    }
  }
  const byStat = await sh('stat', ['-c', '%i', path.join(mp, 'fixed', fixedName(2))])
  t.equal(byStat.stdout.toString().trim(), INOS.positionalTop.toString(), 'an entry named by position may have bit 63 (stat -c %i)')
  const lookedInFixed = server!.events.slice(before).filter((e) => typeof e.looked === 'string' && e.looked.startsWith('file-named'))
  t.same(lookedInFixed, [], `${FIXED_FILES} entries over several pages stat'ed without a lookup`)

  const xattrsBefore = server!.events.length
  for (const i of [0, 3, 1003, 1499]) {
    const out = await sh('getfattr', ['--absolute-names', '-d', '-m', '-', path.join(mp, 'fixed', fixedName(i))])
    t.equal(out.code, 0, out.stderr)
    t.equal(out.stdout.toString().includes('user.plain="hello"'), i % 100 === 3, `${fixedName(i)}: its xattrs`)
  }
  await command('sync')
  t.same(server!.events.slice(xattrsBefore).filter((e) => e.xattrAsked !== undefined), [], 'answered by the binding, with or without xattrs')

  for (const i of [0, 2, 1200]) t.same(await client('read', fs.readFile(at('fixed', fixedName(i)))), contentOf(Buffer.from(fixedName(i))), `${fixedName(i)}: content`)
  t.same(await client('readlink', fs.readlink(at('fixed', fixedName(1)), { encoding: 'buffer' })), LINK_TARGET, 'a symlink')
  await command('sync')
  const found = server!.events.slice(before).filter((e) => e.found !== undefined).map((e) => e.found)
  t.same(found.sort((a, b) => Number(a) - Number(b)), [0, 1, 2, 1200], 'reads found their entries by position, once each')
})

t.test('content a read hands over is served by the binding: byte-exact, without JavaScript, until read whole', async (t) => {
  // As above: a lookup of a file first, so that the listing of staged/ names its files by position.
  await fs.writeFile('/proc/sys/vm/drop_caches', '2')
  await client('stat', fs.stat(at('links', 'above32')))
  t.equal((await client('readdir staged', fs.readdir(at('staged')))).length, STAGED_ENTRIES)
  const before = server!.events.length
  t.same(await client('read', fs.readFile(at('staged', stagedName(0)))), stagedContent(0), 'the first file, read through JavaScript')
  await command('sync')
  const files = STAGED_ENTRIES - 1
  t.same(server!.events.slice(before).filter((e) => e.staged !== undefined), [{ staged: files - 1 }],
    'the binding took every other file (not the subdirectory), and refused a position past 2^32 - 1')
  const readsBefore = server!.events.filter((e) => e.read !== undefined).length
  for (let i = 1; i < STAGED_ENTRIES; i++) {
    if (i === STAGED_DIR_AT) continue
    t.same(await client('read', fs.readFile(at('staged', stagedName(i)))), stagedContent(i), `${stagedName(i)}: content`)
  }
  await command('sync')
  t.equal(server!.events.filter((e) => e.read !== undefined).length, readsBefore, 'none of their reads reached JavaScript, not even those of the file of several READs')

  // Read whole, an entry is gone. This server's opens do not keep the page cache (cairn's mount's do), so
  // the kernel asks again, and JavaScript answers.
  t.same(await client('read', fs.readFile(at('staged', stagedName(5)))), stagedContent(5), 'read again')
  await command('sync')
  t.equal(server!.events.filter((e) => e.read !== undefined).length, readsBefore + 1, 'through JavaScript')
})

t.test('while the server\'s JavaScript is busy, what the binding holds is still answered, and the rest waits for it', async (t) => {
  // As above: fresh numbers by position, then a first read of a file of staged/ through JavaScript, which stages the others.
  await fs.writeFile('/proc/sys/vm/drop_caches', '2')
  await client('stat', fs.stat(at('links', 'above32')))
  t.equal((await client('readdir staged', fs.readdir(at('staged')))).length, STAGED_ENTRIES)
  t.same(await client('read', fs.readFile(at('staged', stagedName(1)))), stagedContent(1), 'the first file, read through JavaScript')
  await command('sync')
  const files = [2, 3, 4].map((i) => ({ i, open: client('open', fs.open(at('staged', stagedName(i)))) }))
  const handles = await Promise.all(files.map((f) => f.open))

  const before = server!.events.length
  server!.child.stdin.write('busy 3000\n')
  await client('busy', (async () => {
    while (!server!.events.slice(before).some((e) => e.busy !== undefined)) await new Promise((r) => setTimeout(r, 5))
  })())
  const busyDone = () => server!.events.slice(before).some((e) => e.done === 'busy 3000')
  // A lookup JavaScript must answer, asked now, is answered once it is free again.
  const looked = client('stat', fs.stat(at('times', 'modern'))).then(() => busyDone())
  for (const [k, { i }] of files.entries()) {
    const got = await client('read', handles[k]!.readFile())
    t.same(got, stagedContent(i), `${stagedName(i)}: content`)
    t.notOk(busyDone(), `${stagedName(i)}: answered while the server's JavaScript was still busy`)
  }
  t.ok(await looked, 'the lookup was answered after the server was free again')
  await Promise.all(handles.map((h) => h.close()))
  await command('sync')
})

/** `stat -c %y` form in UTC: 2020-09-13 12:26:40.987654321 +0000 */
function statTime(ns: bigint): string {
  let sec = ns / 1_000_000_000n
  let frac = ns % 1_000_000_000n
  if (frac < 0n) { sec -= 1n; frac += 1_000_000_000n }
  const iso = new Date(Number(sec) * 1000).toISOString() // 1930-11-18T00:28:29.000Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac.toString().padStart(9, '0')} +0000`
}
