/**
 * mount/fuse-dispatch.ts without a kernel: requests go in as lowlevel.c numbers them, replies are recorded by a
 * fake native module. The inode table follows the kernel's lookup counts; every request gets exactly one reply.
 */
import t from 'tap'
import { readdirSync } from 'node:fs'
import { unpackListing } from './helpers/listing.js'
import { FuseListing, Op, makeDispatch, packXattrs, type FuseAttr, type FuseHandlers, type NativeReplies } from '../dist/mount/fuse-dispatch.js'

interface Node { name: string; attr: FuseAttr; children?: Map<string, Node> }
const attr = (ino: bigint, mode = 0o100644): FuseAttr => ({ ino, mode, nlink: 1, uid: 0, gid: 0, size: 3, atimeNs: -1n, mtimeNs: 0n, ctimeNs: 1n })
const file: Node = { name: 'f', attr: attr(100n) }
const link: Node = { name: 'g', attr: attr(100n) } // a hard link: same inode number
const root: Node = { name: '', attr: attr(1n, 0o040755), children: new Map([['f', file], ['g', link]]) }

function setup() {
  const replies: [string, number, ...unknown[]][] = []
  const record = (kind: string) => (h: number, ...rest: unknown[]) => { replies.push([kind, h, ...rest]); return 0 }
  const native = {
    replyErr: record('err'), replyEntry: record('entry'), replyAttr: record('attr'), replyBuf: record('buf'), replyReadlink: record('readlink'),
    replyXattr: record('xattr'), replyDir: record('dir'), replyStatfs: record('statfs'),
  } as unknown as NativeReplies
  const errors: unknown[] = []
  const handlers: FuseHandlers<Node> = {
    root,
    async lookup(parent, name) {
      if (name.toString() === 'boom') throw new Error('bug')
      const n = parent.children?.get(name.toString())
      return n ? { node: n, attr: n.attr, xattrs: n === file ? [[Buffer.from('user.a'), Buffer.from('v')]] : undefined } : -2
    },
    async getattr(n) { return n.attr },
    async readdir(n, listing) { for (const [name, c] of n.children ?? []) listing.add(Buffer.from(name), c.attr.ino, c.attr.mode) },
    async read(n) { return Buffer.from(n.name) },
  }
  let gone = 0
  const dispatch = makeDispatch(native, handlers, (r) => errors.push(r), () => gone++)
  const settle = () => new Promise((r) => setTimeout(r, 5))
  return { replies, errors, dispatch, settle, gone: () => gone }
}

t.test('lookups count, forgets drop, unknown inodes are stale', async (t) => {
  const { replies, dispatch, settle } = setup()
  dispatch(Op.Lookup, 1, 1n, Buffer.from('f'))
  dispatch(Op.Lookup, 2, 1n, Buffer.from('g'))
  await settle()
  t.same(replies.map((r) => [r[0], r[1], r[4]]), [['entry', 1, 100n], ['entry', 2, 100n]], 'both names answer inode 100')
  t.same(replies[0]!.slice(2, 4), [-1, -1], 'the mount\'s validities, the handler giving none')
  t.same(replies[0]!.slice(4, 16), [100n, 0o100644, 1, 0, 0, 0, 3, 1, 0, -1n, 0n, 1n], 'attr fields in order, blocks from the size')
  t.ok(Buffer.isBuffer(replies[0]![16]), 'xattrs handed over with the entry')
  dispatch(Op.Read, 3, 100n, 10, 0)
  await settle()
  t.same(replies[2], ['buf', 3, Buffer.from('f')], 'the first node seen for a number is kept')
  dispatch(Op.Forget, 0, 100n, 1)
  dispatch(Op.Getattr, 4, 100n)
  await settle()
  t.equal(replies[3]![0], 'attr', 'one lookup still counted')
  dispatch(Op.Forget, 0, 100n, 1)
  dispatch(Op.Getattr, 5, 100n)
  await settle()
  t.same(replies[4], ['err', 5, 116], 'forgotten: ESTALE')
  dispatch(Op.Forget, 0, 1n, 99)
  dispatch(Op.Getattr, 6, 1n)
  await settle()
  t.equal(replies[5]![0], 'attr', 'the root is never forgotten')
})

t.test('errors: errno results, thrown bugs become EIO and are reported, gone is passed on', async (t) => {
  const { replies, errors, dispatch, settle, gone } = setup()
  dispatch(Op.Lookup, 1, 1n, Buffer.from('nope'))
  dispatch(Op.Lookup, 2, 1n, Buffer.from('boom'))
  dispatch(Op.Lookup, 3, 100n, Buffer.from('f'))
  dispatch(Op.Readlink, 4, 1n)
  await settle()
  t.same([...replies].sort((a, b) => a[1] - b[1]), [['err', 1, 2], ['err', 2, 5], ['err', 3, 116], ['err', 4, 22]], 'ENOENT, EIO, ESTALE (unknown parent), EINVAL (no readlink)')
  t.equal(errors.length, 1, 'only the bug is reported')
  dispatch(Op.Gone, 0, 0n)
  t.equal(gone(), 1)
})

t.test('listings and xattrs pack as lowlevel.c reads them', async (t) => {
  const listing = new FuseListing(7n)
  listing.add(Buffer.from('a\xe9', 'latin1'), (1n << 63n) + 1n, 0o100644)
  const { packed, count } = listing
  t.equal(count, 3, '. and .. first')
  t.equal(packed.readBigUInt64LE(29), (1n << 63n) + 1n, 'after . (14 bytes) and .. (15 bytes)')
  t.equal(packed.readUInt32LE(37), 0o100644)
  t.same(packed.subarray(41), Buffer.from([0x61, 0xe9, 0]))
  t.throws(() => listing.add(Buffer.from('a/b'), 9n, 0), TypeError, 'a name with / is refused')
  t.equal(listing.count, 3, 'and not added')
  const long = new FuseListing(7n)
  const names = Array.from({ length: 3000 }, (_, i) => Buffer.from(`entry-${i}`))
  for (const [i, name] of names.entries()) long.add(name, BigInt(i + 2), 0o100644)
  t.same(unpackListing(long.packed).slice(2).map((e) => e.name.toString()), names.map(String), 'a listing grows past its first buffer')
  t.same(packXattrs([[Buffer.from('user.x'), Buffer.from([0, 1])]]), Buffer.from([...Buffer.from('user.x'), 0, 2, 0, 0, 0, 0, 1]))
  t.equal(packXattrs([]).length, 0)
})

t.test('entries a listing hands over count as lookups once the binding says they went', async (t) => {
  const sub: Node = { name: 'd', attr: { ...attr(200n, 0o040755), validSeconds: 60 } }
  const top: Node = { name: '', attr: attr(1n, 0o040755), children: new Map([['d', sub], ['f', file]]) }
  for (const given of [0, 1]) {
    const replies: unknown[][] = []
    const native = {
      replyDir: (h: number, ...rest: unknown[]) => { replies.push(['dir', h, ...rest]); return given },
      replyAttr: (h: number, ...rest: unknown[]) => { replies.push(['attr', h, ...rest]); return 0 },
      replyErr: (h: number, errno: number) => { replies.push(['err', h, errno]); return 0 },
    } as unknown as NativeReplies
    const handlers = {
      root: top,
      async readdir(n: Node, listing: FuseListing<Node>) {
        for (const [name, c] of n.children ?? []) {
          if (c.attr.mode & 0o040000) listing.addEntry(Buffer.from(name), c, c.attr, [[Buffer.from('user.x'), Buffer.from('1')]], 30)
          else listing.add(Buffer.from(name), c.attr.ino, c.attr.mode)
        }
      },
      async getattr(n: Node) { return n.attr },
    } as unknown as FuseHandlers<Node>
    const dispatch = makeDispatch(native, handlers, () => undefined, () => undefined)
    dispatch(Op.List, 1, 1n)
    await new Promise((r) => setTimeout(r, 5))
    const [, , , count, records, xattrs] = replies[0] as [string, number, Buffer, number, Buffer, Buffer]
    t.equal(count, 4, '., .., d and f')
    t.equal(records.length, 96, 'one record: the subdirectory')
    t.equal(records.readBigUInt64LE(88), 0n, 'known by its inode number')
    t.same([records.readUInt32LE(0), records.readDoubleLE(72), records.readDoubleLE(80)], [2, 30, 60], 'its index and validities')
    t.equal(xattrs.subarray(records.readUInt32LE(64), records.readUInt32LE(64) + records.readUInt32LE(68)).includes('user.x'), true, 'its xattrs')
    dispatch(Op.Getattr, 2, 200n)
    await new Promise((r) => setTimeout(r, 5))
    if (given) t.same(replies[1]!.slice(0, 4), ['attr', 2, 60, 200n], 'given: the node is known, with its own validity')
    else t.same(replies[1], ['err', 2, 116], 'not given: the kernel never learnt it, so neither did the dispatcher (ESTALE)')
  }
})

/** Handlers that list subdirectories plainly and the other entries by position ('y' with an xattr); entryAt notes each position found. */
function positionalHandlers(top: Node, found: number[]): FuseHandlers<Node> {
  return {
    root: top,
    async lookup(parent: Node, name: Buffer) {
      const n = parent.children?.get(name.toString())
      return n ? { node: n, attr: n.attr } : -2
    },
    async readdir(n: Node, listing: FuseListing<Node>) {
      let i = 0
      for (const [name, c] of n.children ?? []) {
        if (c.children) listing.add(Buffer.from(name), c.attr.ino, c.attr.mode)
        else listing.addPositional(Buffer.from(name), i, c.attr, name === 'y' ? [[Buffer.from('user.y'), Buffer.from('1')]] : [], 30)
        i++
      }
    },
    async entryAt(dir: Node, position: number) {
      found.push(position)
      return [...dir.children!.values()][position] ?? null
    },
    async getattr(n: Node) { return n.attr },
    async read(n: Node) { return Buffer.from(n.name) },
  }
}

t.test('entries named by position: nothing kept, found again through their directory while the kernel knows it', async (t) => {
  const sub: Node = { name: 'd', attr: { ...attr(200n, 0o040755) }, children: new Map([['x', { name: 'x', attr: attr(300n) }], ['y', { name: 'y', attr: attr(301n) }]]) }
  const top: Node = { name: '', attr: attr(1n, 0o040755), children: new Map([['d', sub]]) }
  const replies: unknown[][] = []
  const native = {
    replyDir: (h: number, ...rest: unknown[]) => { replies.push(['dir', h, ...rest]); return 0 },
    replyEntry: (h: number, ...rest: unknown[]) => { replies.push(['entry', h, ...rest]); return 0 },
    replyBuf: (h: number, ...rest: unknown[]) => { replies.push(['buf', h, ...rest]); return 0 },
    replyErr: (h: number, errno: number) => { replies.push(['err', h, errno]); return 0 },
  } as unknown as NativeReplies
  const found: number[] = []
  const handlers = positionalHandlers(top, found)
  const errors: unknown[] = []
  const dispatch = makeDispatch(native, handlers, (r) => errors.push(r), () => undefined, { statWindowSeconds: Infinity })
  const settle = () => new Promise((r) => setTimeout(r, 5))
  dispatch(Op.Lookup, 1, 1n, Buffer.from('d'))
  await settle()
  dispatch(Op.List, 2, 200n)
  await settle()
  const records = replies[1]![4] as Buffer
  t.equal(records.length, 2 * 96, 'a record for each file')
  const x = records.readBigUInt64LE(88)
  const y = records.readBigUInt64LE(96 + 88)
  t.equal(x >> 63n, 1n, 'known by a number with bit 63 set')
  t.same([(x >> 62n) & 1n, (y >> 62n) & 1n], [0n, 1n], 'bit 62: whether it has xattrs')
  t.equal((x >> 32n) & 0x3fffffffn, (y >> 32n) & 0x3fffffffn, 'the directory\'s listing number, shared')
  t.same([x & 0xffffffffn, y & 0xffffffffn], [0n, 1n], 'and the position')
  t.same([records.readUInt32LE(0), records.readUInt32LE(96)], [2, 3], 'records of entries 2 and 3, after . and ..')

  dispatch(Op.Read, 3, y, 4096, 0)
  dispatch(Op.Read, 4, y, 4096, 0)
  await settle()
  t.same(replies.slice(2).map((r) => [r[0], r[1], String(r[2])]), [['buf', 3, 'y'], ['buf', 4, 'y']], 'requests for it find the entry')
  t.same(found, [1], 'once: the node found is kept')

  dispatch(Op.List, 5, 200n)
  await settle()
  t.equal((replies[4]![4] as Buffer).readBigUInt64LE(88), x, 'a second listing gives the same numbers')

  dispatch(Op.Forget, 0, 200n, 1)
  dispatch(Op.Read, 6, x, 4096, 0)
  await settle()
  t.same(replies[5], ['err', 6, 116], 'once the kernel forgot the directory, its entries are stale (ESTALE)')
  t.same(errors, [])

  const listing = new FuseListing(1n, 7)
  t.throws(() => listing.addPositional(Buffer.from('d'), 0, attr(5n, 0o040755), []), /not named by position/, 'a directory is never named by position')
  const plain = new FuseListing(1n)
  plain.addPositional(Buffer.from('f'), 0, attr(5n), [])
  t.equal(plain.entries.records.length, 0, 'without a listing number the entry goes without attributes')
})

t.test('a lookup may not give an inode number of 2^63 or above: those name entries by position', async (t) => {
  const { replies, errors, dispatch, settle } = setup()
  file.attr.ino = 1n << 63n
  try {
    dispatch(Op.Lookup, 1, 1n, Buffer.from('f'))
    await settle()
  } finally {
    file.attr.ino = 100n
  }
  t.same(replies, [['err', 1, 5]], 'EIO')
  t.equal(errors.length, 1, 'reported')
})

t.test('entries named by position go with listings only while programs look files up', async (t) => {
  const sub: Node = { name: 'd', attr: attr(200n, 0o040755), children: new Map([['x', { name: 'x', attr: attr(300n) }], ['y', { name: 'y', attr: attr(301n) }]]) }
  const top: Node = { name: '', attr: attr(1n, 0o040755), children: new Map([['d', sub], ['f', { name: 'f', attr: attr(302n) }]]) }
  const settle = (ms = 5) => new Promise((r) => setTimeout(r, ms))
  const start = (statWindowSeconds?: number) => {
    const dirs: Buffer[] = []
    const native = {
      replyDir: (_h: number, _packed: Buffer, _count: number, records: Buffer) => { dirs.push(records); return 0 },
      replyEntry: () => 0,
      replyErr: () => 0,
    } as unknown as NativeReplies
    const handlers = positionalHandlers(top, [])
    const dispatch = makeDispatch(native, handlers, () => undefined, () => undefined, statWindowSeconds === undefined ? {} : { statWindowSeconds })
    /** How many records the next listing of d gives. */
    const listed = async (req: number): Promise<number> => {
      dispatch(Op.List, req, 200n, process.pid)
      await settle()
      return dirs.at(-1)!.length / 96
    }
    /** Lookups of these names in the root, one after another, as a program makes them (by default this one, through its main thread). */
    let req = 100
    const lookUp = async (...names: string[]): Promise<void> => lookUpBy(process.pid, ...names)
    const lookUpBy = async (thread: number, ...names: string[]): Promise<void> => {
      for (const name of names) dispatch(Op.Lookup, req++, 1n, Buffer.from(name), thread)
      await settle()
    }
    return { dispatch, listed, lookUp, lookUpBy }
  }

  const byDefault = start()
  await byDefault.lookUp('d')
  t.equal(await byDefault.listed(2), 2, 'a directory a program just named by a lookup, before any file was looked up')
  await settle(1100)
  t.equal(await byDefault.listed(5), 0, 'none once that is past, while no program looked a file up')
  await byDefault.lookUp('f')
  t.equal(await byDefault.listed(4), 2, 'both files once one did')

  const walking = start()
  walking.dispatch(Op.List, 1, 1n, process.pid)
  await settle()
  await walking.lookUp('d')
  t.equal(await walking.listed(3), 0, 'not when a listing of its parent gave it without attributes: a walk going down (find)')
  const otherThread = readdirSync('/proc/self/task').map(Number).find((tid) => tid !== process.pid)
  if (otherThread === undefined) throw new Error('node runs without threads?')
  await walking.lookUpBy(otherThread, 'd')
  t.equal(await walking.listed(6), 0, 'nor when another thread of the program that listed the parent looks it up')
  await walking.lookUpBy(process.ppid, 'd')
  t.equal(await walking.listed(7), 2, 'but when another program does (cp -a of it after a find)')

  const short = start(0.05)
  await short.lookUp('d', 'f')
  t.equal(await short.listed(3), 2, 'within the window')
  await settle(1100)
  t.equal(await short.listed(4), 0, 'not once it has passed')

  const never = start(0)
  await never.lookUp('d', 'f')
  t.equal(await never.listed(3), 0, 'never with a window of 0, the directory named or not')
})
