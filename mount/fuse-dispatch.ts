/**
 * Serving FUSE requests from mount/native/lowlevel.c: the table of inodes the kernel knows, and turning
 * each request into one handler call and exactly one reply.
 *
 * The kernel names files by the inode numbers we gave it in lookups (the root is 1). The table maps each
 * to its node and counts the kernel's lookups; a forget lowers the count and an entry at zero is dropped,
 * so memory follows what the kernel caches, not what was ever visited. Two names with one inode number
 * (hard links) share an entry. The node first seen for a number is kept: later lookups of the same number
 * reuse it, with whatever it has cached.
 *
 * Entries a listing gives by position (FuseListing.addPositional: the files of a directory that never
 * changes) are the exception: the kernel knows them by a number that says where they are, POSITIONAL |
 * xattrs bit | directory's listing number << 32 | position, and nothing is kept for them, so a walk that
 * lists a million files holds nothing per file. A request for such a number finds the directory by its
 * listing number (kept as long as the kernel knows the directory, which it does while it knows any of
 * its entries: a dentry holds its parent) and asks the handler for the entry at that position; the last
 * few entries found are kept, so that the reads of one file find its node again.
 *
 * Such entries go with a listing only while programs look files up, or with the listing of a directory a
 * program named (DispatchOptions.statWindowSeconds): each costs the kernel an inode when it reads the
 * listing, which pays for itself when the program then stats the file (ls -l, du, cp -a, rsync, a file
 * manager: no LOOKUP each) and is pure cost when it only wants the names (find): walking the million-file
 * archive took 7.9 s with them, 2.1 s without.
 *
 * Everything runs on the main thread. dispatch() is called synchronously from the native loop and must
 * never throw: every failure becomes an errno reply and, if unexpected, an onError report.
 */
import { LRUCache } from 'lru-cache'
import { constants as osConstants } from 'node:os'
import { writeInt64LE } from '../lib/encoding/int64.js'
import { sameProgram } from './thread-group.js'

const E = osConstants.errno

/** Request kinds as lowlevel.c numbers them. */
export const Op = {
  Lookup: 1,
  Forget: 2,
  Getattr: 3,
  Readlink: 4,
  List: 5,
  Read: 6,
  Statfs: 7,
  Getxattr: 8,
  Listxattr: 9,
  Gone: 10,
} as const
export type Op = (typeof Op)[keyof typeof Op]

const OP_NAMES: Record<number, string | undefined> = {
  [Op.Lookup]: 'lookup', [Op.Getattr]: 'getattr', [Op.Readlink]: 'readlink', [Op.List]: 'readdir', [Op.Read]: 'read',
  [Op.Statfs]: 'statfs', [Op.Getxattr]: 'getxattr', [Op.Listxattr]: 'listxattr',
}

/** The native module's reply functions (see lowlevel.c). Each returns 0, -ENOENT (interrupted) or -EBADF (no such request). */
export interface NativeReplies {
  replyErr(h: number, errno: number): number
  /** Validities in seconds the kernel may keep the name and the attributes; negative: the mount's. */
  replyEntry(h: number, entryValid: number, attrValid: number, ...attr: AttrArgs | [...AttrArgs, xattrs: Buffer]): number
  replyAttr(h: number, attrValid: number, ...attr: AttrArgs): number
  replyBuf(h: number, data: Uint8Array): number
  replyReadlink(h: number, target: Uint8Array): number
  replyXattr(h: number, value: Uint8Array): number
  /** `records` and `xattrs` as FuseListing.entries gives them; returns how many records, from the first, reached the kernel as looked up. */
  replyDir(h: number, packed: Buffer, count: number, records: Buffer, xattrs: Buffer): number
  replyStatfs(h: number, ...fields: number[]): number
}
type AttrArgs = [ino: bigint, mode: number, nlink: number, uid: number, gid: number, rdev: number, size: number, blocks: number, blksize: number, atimeNs: bigint, mtimeNs: bigint, ctimeNs: bigint]

export interface FuseAttr {
  ino: bigint
  mode: number
  nlink: number
  uid: number
  gid: number
  rdev?: number
  size: number
  /** 512-byte blocks; defaults to ceil(size / 512) so that du is right. */
  blocks?: number
  blksize?: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  /** Seconds the kernel may keep these attributes before asking again (default: the mount's attrTimeout). */
  validSeconds?: number
}

export interface FuseEntry<N> {
  node: N
  attr: FuseAttr
  /** Seconds the kernel may keep the name before looking it up again (default: the mount's entryTimeout). */
  entryValidSeconds?: number
  /**
   * The node's extended attributes, if the handler knows them now: getxattr and listxattr of it are then
   * answered by the binding, without asking the handler, for as long as the kernel knows the inode.
   */
  xattrs?: readonly (readonly [Buffer, Buffer])[]
}

export interface FuseStatfs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  fsid: number
  flag: number
  namemax: number
}

/** A value, or a negative errno. */
export type FuseResult<T> = T | number

/**
 * What a mount serves, node by node. `N` is whatever stands for a file (the VFS's nodes, say); the binding
 * keeps the nodes the kernel knows. A handler answers an errno by returning or throwing a negative number
 * (or a `FuseErrno`, or a Node error with an errno `code`).
 */
export interface FuseHandlers<N> {
  /** The mount's root directory (inode 1 for the kernel, whatever its attr.ino). */
  readonly root: N
  /** The child `name` of directory `parent`; its attr.ino becomes the kernel's name for it. */
  lookup(parent: N, name: Buffer): Promise<FuseResult<FuseEntry<N>>>
  /** The entry a listing of `dir` added at `position` (FuseListing.addPositional), or null if there is none. */
  entryAt?(dir: N, position: number): Promise<N | null>
  getattr(node: N): Promise<FuseResult<FuseAttr>>
  /**
   * Adds the whole listing to `listing`, without `.` and `..`: read when a program opens the directory, served
   * from memory after. An errno answered after some entries were added discards them.
   */
  readdir(node: N, listing: FuseListing<N>): Promise<FuseResult<void>>
  /**
   * Up to `length` bytes at `position`; fewer at the end of the file. `siblings`, given when the file was
   * named by position, takes the whole content of other entries of the same listing (see SiblingContent).
   */
  read(node: N, length: number, position: number, siblings?: SiblingContent): Promise<FuseResult<Uint8Array>>
  readlink?(node: N): Promise<FuseResult<Buffer>>
  /** ENODATA when the attribute does not exist. */
  getxattr?(node: N, name: Buffer): Promise<FuseResult<Buffer>>
  listxattr?(node: N): Promise<FuseResult<Buffer[]>>
  statfs?(): Promise<FuseResult<FuseStatfs>>
}

/**
 * The binding answers reads of what this takes from C, without asking the handler (mount/native/
 * content-table.h): for the small files of a directory loaded ahead while a program copies it, cp -a then
 * makes no request per file that reaches JavaScript. `content` is the whole content of the entry at
 * `position` in the listing the read file came from (FuseListing.addPositional); false when not taken
 * (the binding's table is full, or the directory is no longer known), and that entry is read as before.
 */
export interface SiblingContent {
  offer(position: number, content: Uint8Array): boolean
}

export interface FuseHandlerError {
  op: string
  /** The inode the request was about (the parent, for a lookup). */
  ino: bigint
  /** The name looked up, or the xattr name. */
  name?: Buffer
  error: unknown
}

/** Throw this (or just the number) from a handler to answer an errno. */
export class FuseErrno extends Error {
  readonly errno: number
  constructor(errno: number, message?: string) {
    super(message ?? `FUSE errno ${errno}`)
    this.name = 'FuseErrno'
    this.errno = -Math.abs(errno)
  }
}

const ROOT = 1n
const NAME_MAX = 255
const PATH_MAX = 4096
const XATTR_SIZE_MAX = 65536
const U32 = 0xffffffff
const DOT = Buffer.from('.')
const DOTDOT = Buffer.from('..')

interface Known<N> {
  node: N
  lookups: number
  /** The number its listings give their entries named by position (see FuseListing). */
  listingNumber?: number
  /**
   * The thread whose listing of it gave subdirectories without their attributes: a walk looks those up to
   * enter them.
   */
  bareListingBy?: number
}

/**
 * Numbers of entries named by position (hash inode numbers, lib/vfs/inode.ts, are below 2^63): bit 63, bit
 * 62 when it has xattrs, the listing number in bits 32-61, the position in bits 0-31. Written as two 32-bit
 * halves, without a BigInt per entry.
 */
const POSITIONAL = 1n << 63n
const POSITIONAL_HIGH = 0x8000_0000
const POSITIONAL_XATTRS_HIGH = 0x4000_0000
const LISTING_SHIFT = 32n
const LISTING_LIMIT = 2 ** 30
const POSITION_LIMIT = 2 ** 32
/** Entries named by position whose nodes are kept after a request found them. */
const POSITIONAL_NODES_KEPT = 1024

export interface DispatchOptions {
  /**
   * Entries named by position go with a listing for this long after the last lookup of a non-directory
   * (default 10 s; Infinity: always; 0: never), and with the listing of a directory a program has just
   * looked up by name (cp -a DIR, ls -l DIR, du DIR, a file manager opening a folder name it was given)
   * unless it is 0. The window spans the directories of one running program and a user opening folders
   * one after another; a program that stats the files of the first directory it lists, reached without
   * naming it, makes a LOOKUP of each there.
   */
  statWindowSeconds?: number
  /** Hands the binding the whole content of the file it knows as `nodeid`; true if taken (see SiblingContent). */
  stage?: (nodeid: bigint, content: Uint8Array) => boolean
}

const DEFAULT_STAT_WINDOW_SECONDS = 10
/**
 * A directory listed this soon after a lookup gave it counts as named by the program that lists it, unless
 * the same program's listing of its parent gave subdirectories without their attributes: a walk going down
 * looks those up (find entering the subdirectories past a listing's first page). Another program's lookup
 * names it (cp -a of a directory after a find of the mount: the parent, the root of a mounted archive,
 * is never forgotten, and with it marked as walked every later copy of one of its directories looked each
 * file up).
 */
const NAMED_DIRECTORY_MS = 1000

/**
 * Returns the function lowlevel.c calls for every request, and `gone` is called once the kernel has
 * dropped the connection (unmounted from outside).
 */
export function makeDispatch<N>(native: NativeReplies, h: FuseHandlers<N>, onError: (r: FuseHandlerError) => void, gone: () => void,
  options: DispatchOptions = {}) {
  const statWindowMs = 1000 * (options.statWindowSeconds ?? DEFAULT_STAT_WINDOW_SECONDS)
  /** performance.now() of the last lookup of a non-directory; the directory the last lookup of one gave, and when. */
  let lastFileLookup = -Infinity
  let namedDirectory: bigint | null = null
  let namedAt = -Infinity
  /** Whether a listing of `ino` gives entries by position (see DispatchOptions.statWindowSeconds). */
  const byPosition = (ino: bigint): boolean => {
    if (statWindowMs <= 0) return false
    const now = performance.now()
    return now - lastFileLookup <= statWindowMs || (ino === namedDirectory && now - namedAt <= NAMED_DIRECTORY_MS)
  }
  const inodes = new Map<bigint, Known<N>>([[ROOT, { node: h.root, lookups: Infinity }]])
  /** Directories by listing number, while the kernel knows them. */
  const listed = new Map<number, N>()
  let nextListing = 1
  const positional = new LRUCache<bigint, Promise<N | null>>({ max: POSITIONAL_NODES_KEPT })
  const stage = options.stage

  /** The listing number of directory `ino`, given on its first listing; undefined when none is left. */
  const listingNumber = (ino: bigint): number | undefined => {
    const known = inodes.get(ino)
    if (known && known.listingNumber === undefined && nextListing < LISTING_LIMIT) {
      known.listingNumber = nextListing++
      listed.set(known.listingNumber, known.node)
    }
    return known?.listingNumber
  }

  /** The node of an entry named by position, or null if its directory or the entry is gone. */
  const entryNamed = (ino: bigint): Promise<N | null> => {
    let found = positional.get(ino)
    if (found) return found
    const dir = listed.get(Number((ino >> LISTING_SHIFT) & BigInt(LISTING_LIMIT - 1)))
    found = dir !== undefined && h.entryAt ? h.entryAt(dir, Number(ino & BigInt(POSITION_LIMIT - 1))) : Promise.resolve(null)
    positional.set(ino, found)
    found.catch(() => positional.delete(ino))
    return found
  }

  /** For a read of `ino`: where its siblings' content goes, if it was named by position (offers stop once the directory is forgotten). */
  const siblingsOf = (ino: bigint): SiblingContent | undefined => {
    if (!stage || !(ino & POSITIONAL)) return undefined
    const listing = Number((ino >> LISTING_SHIFT) & BigInt(LISTING_LIMIT - 1))
    const high = POSITIONAL | (BigInt(listing) << LISTING_SHIFT)
    return {
      offer: (position, content) => listed.has(listing) && Number.isInteger(position) && position >= 0 && position < POSITION_LIMIT
        && stage(high | BigInt(position), content),
    }
  }

  /** Runs `work` on the node of `ino` and answers exactly once, whatever it does. */
  const serve = (op: Op, req: number, ino: bigint, name: Buffer | undefined, work: (node: N) => Promise<number | undefined>): void => {
    const known = inodes.get(ino)
    if (!known && !(ino & POSITIONAL)) {
      native.replyErr(req, E.ESTALE)
      return
    }
    const fail = (error: unknown): void => {
      const errno = errnoOf(error)
      if (errno === undefined) onError({ op: OP_NAMES[op] ?? String(op), ino, name, error })
      native.replyErr(req, -(errno ?? -E.EIO))
    }
    let p: Promise<number | undefined>
    try {
      p = known ? work(known.node) : entryNamed(ino).then((node) => (node === null ? -E.ESTALE : work(node)))
    } catch (error) {
      fail(error)
      return
    }
    p.then((errno) => {
      if (errno !== undefined) native.replyErr(req, -errno)
    }).catch(fail)
  }

  /** A negative errno returned by a handler (undefined when it returned a value). */
  const errnoResult = (op: Op, r: unknown): number | undefined => {
    if (typeof r !== 'number') return undefined
    if (Number.isInteger(r) && r < 0) return r
    throw new TypeError(`${OP_NAMES[op]} returned ${r}: a negative errno was expected`)
  }

  /** A lookup by thread `pid` in `parent` is a walk going down: the same program listed it, giving subdirectories without attributes. */
  const goingDown = (parent: Known<N> | undefined, pid: number): boolean => parent?.bareListingBy !== undefined && sameProgram(parent.bareListingBy, pid)

  const lookup = (req: number, parent: bigint, name: Buffer, pid: number): void => serve(Op.Lookup, req, parent, name, async (node) => {
    const r = await h.lookup(node, name)
    if (typeof r === 'number') return errnoResult(Op.Lookup, r)
    const attr = attrArgs(r.attr)
    const ino = attr[0]
    if (ino === 0n || (ino === ROOT && r.node !== h.root) || ino & POSITIONAL) throw new TypeError(`lookup: inode number ${ino} is reserved`)
    const entryValid = validity(r.entryValidSeconds)
    const attrValid = validity(r.attr.validSeconds)
    const replied = r.xattrs ? native.replyEntry(req, entryValid, attrValid, ...attr, packXattrs(r.xattrs)) : native.replyEntry(req, entryValid, attrValid, ...attr)
    if (replied !== 0) return undefined // interrupted: the kernel did not take it
    looked(ino, r.node)
    if ((attr[1] & 0o170000) !== 0o040000) lastFileLookup = performance.now()
    else if (!goingDown(inodes.get(parent), pid)) {
      namedDirectory = ino
      namedAt = performance.now()
    }
    return undefined
  })

  /** The kernel took one more lookup of `node` (a lookup answered, or an entry of a listing given with its attributes). */
  const looked = (ino: bigint, node: N): void => {
    const known = inodes.get(ino)
    if (known) known.lookups++
    else inodes.set(ino, { node, lookups: 1 })
  }

  const forget = (ino: bigint, n: number): void => {
    const known = inodes.get(ino)
    if (!known || ino === ROOT) return
    known.lookups -= n
    if (known.lookups > 0) return
    inodes.delete(ino)
    if (known.listingNumber !== undefined) listed.delete(known.listingNumber)
  }

  /**
   * `a` and `b` as lowlevel.c passes them (call_js_for): lookup the name and the asking thread's id, list
   * that id, read the size and offset, getxattr the name, forget the count.
   */
  return function dispatch(op: Op, req: number, ino: bigint, a?: unknown, b?: unknown): void {
    switch (op) {
      case Op.Lookup: return lookup(req, ino, a as Buffer, (b as number | undefined) ?? 0)
      case Op.Forget: return forget(ino, a as number)
      case Op.Getattr: return serve(op, req, ino, undefined, async (node) => {
        const r = await h.getattr(node)
        if (typeof r === 'number') return errnoResult(op, r)
        native.replyAttr(req, validity(r.validSeconds), ...attrArgs(r))
        return undefined
      })
      case Op.List: return serve(op, req, ino, undefined, async (node) => {
        const listing = new FuseListing<N>(ino, byPosition(ino) ? listingNumber(ino) : undefined)
        const r = await h.readdir(node, listing)
        if (typeof r === 'number') return errnoResult(op, r)
        const { records, xattrs, nodes } = listing.entries
        const given = native.replyDir(req, listing.packed, listing.count, records, xattrs)
        for (let i = 0; i < given; i++) looked(nodes[i]!.ino, nodes[i]!.node)
        const known = inodes.get(ino)
        if (known && (listing.bareSubdirectories || given < nodes.length)) known.bareListingBy = (a as number | undefined) ?? 0 // past the kernel's first page
        return undefined
      })
      case Op.Read: return serve(op, req, ino, undefined, async (node) => {
        const r = await h.read(node, a as number, b as number, siblingsOf(ino))
        if (typeof r === 'number') return errnoResult(op, r)
        native.replyBuf(req, r)
        return undefined
      })
      case Op.Readlink: return serve(op, req, ino, undefined, async (node) => {
        const r = h.readlink ? await h.readlink(node) : -E.EINVAL
        if (typeof r === 'number') return errnoResult(op, r)
        if (!Buffer.isBuffer(r) || r.length === 0 || r.length >= PATH_MAX || r.includes(0)) throw new TypeError('readlink: a target is 1 to 4095 bytes without NUL')
        native.replyReadlink(req, r)
        return undefined
      })
      case Op.Getxattr: return serve(op, req, ino, a as Buffer, async (node) => {
        const r = h.getxattr ? await h.getxattr(node, a as Buffer) : -E.ENODATA
        if (typeof r === 'number') return errnoResult(op, r)
        if (!Buffer.isBuffer(r) || r.length > XATTR_SIZE_MAX) throw new TypeError('getxattr: a value is a Buffer of at most 64 KiB')
        native.replyXattr(req, r)
        return undefined
      })
      case Op.Listxattr: return serve(op, req, ino, undefined, async (node) => {
        const r = h.listxattr ? await h.listxattr(node) : []
        if (typeof r === 'number') return errnoResult(op, r)
        native.replyXattr(req, Buffer.concat(r.flatMap((n) => [xattrName(n), Buffer.alloc(1)])))
        return undefined
      })
      case Op.Statfs: return serve(op, req, ROOT, undefined, async () => {
        const r = h.statfs ? await h.statfs() : { bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: 0, namemax: NAME_MAX }
        if (typeof r === 'number') return errnoResult(op, r)
        const s = r
        native.replyStatfs(req, ...[s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.fsid, s.flag, s.namemax].map((v, i) => int(v, `statfs field ${i}`)))
        return undefined
      })
      case Op.Gone: return gone()
      default:
        if (req) native.replyErr(req, E.ENOSYS)
    }
  }
}

/** The error a handler threw as a negative errno, or undefined if it is not one. */
export function errnoOf(err: unknown): number | undefined {
  if (typeof err === 'number') return Number.isInteger(err) && err !== 0 ? -Math.abs(err) : undefined
  if (err instanceof FuseErrno) return err.errno
  if (err !== null && typeof err === 'object') {
    const { code, errno } = err as { code?: unknown; errno?: unknown }
    if (typeof code === 'string' && Object.hasOwn(E, code)) return -E[code as keyof typeof E]
    if (typeof errno === 'number' && Number.isInteger(errno) && errno !== 0 && typeof code === 'string') return -Math.abs(errno)
  }
  return undefined
}

function int(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new TypeError(`${what} = ${String(v)} is not an integer in [0, ${max}]`)
  return v
}

const I64_END = 1n << 63n
const I64_MIN = -I64_END

function ns(v: unknown, what: string): bigint {
  if (typeof v !== 'bigint' || v < I64_MIN || v >= I64_END) throw new TypeError(`attr.${what} must be a bigint (nanoseconds, 64-bit)`)
  return v
}

const U64_END = 1n << 64n

function inoOf(v: unknown): bigint {
  if (typeof v !== 'bigint' || v < 0n || v >= U64_END) throw new TypeError(`attr.ino = ${String(v)} is not a 64-bit bigint`)
  return v
}

/** A validity as the native reply functions take it: seconds, or -1 for the mount's own. */
function validity(seconds: number | undefined): number {
  if (seconds === undefined) return -1
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) throw new TypeError(`a validity of ${String(seconds)} s is not a finite number >= 0`)
  return seconds
}

/** An attr, validated, as the native reply functions take it. */
function attrArgs(a: FuseAttr): AttrArgs {
  const size = int(a.size, 'attr.size')
  return [
    inoOf(a.ino), int(a.mode, 'attr.mode', U32), int(a.nlink, 'attr.nlink', U32), int(a.uid, 'attr.uid', U32), int(a.gid, 'attr.gid', U32),
    int(a.rdev ?? 0, 'attr.rdev', U32), size, int(a.blocks ?? Math.ceil(size / 512), 'attr.blocks'), int(a.blksize ?? 0, 'attr.blksize', U32),
    ns(a.atimeNs, 'atimeNs'), ns(a.mtimeNs, 'mtimeNs'), ns(a.ctimeNs, 'ctimeNs'),
  ]
}

/**
 * A listing in lowlevel.c's packed form, built as a handler adds its entries, so that no array of them is
 * held: per entry ino (u64 LE), mode (u32 LE), name, NUL. It starts with `.` and `..`, `..` carrying the
 * directory's own number: the kernel does not use it (FUSE fills no parent links).
 *
 * Entries added with their attributes and xattrs also get a record: index, nlink, uid, gid, rdev, blksize
 * (u32 LE), size, blocks, atime, mtime, ctime (64-bit LE, times in nanoseconds), the offset and length (u32
 * LE) of their xattrs in a blob in packXattrs' form, how long the kernel may keep the name and the
 * attributes (f64 LE seconds, -1: the mount's), and the number the kernel is to know the entry by (u64 LE,
 * 0: its inode number). The binding gives those entries to the kernel as looked up in READDIRPLUS pages,
 * so that entering or stat'ing them needs no LOOKUP (and their xattrs are answered without JavaScript, as
 * a lookup's are). Two kinds:
 * - with their node (addEntry; the first ENTRIES_LIMIT entries at most): on the first page only, and the
 *   dispatcher counts a lookup of each node that went;
 * - by position (addPositional, at most POSITIONAL_LIMIT of them): on any page, known by a number that
 *   names the directory and the position, with nothing kept (see the top of this file).
 */
export class FuseListing<N = unknown> {
  private buf = Buffer.allocUnsafe(4096)
  private end = 0
  private entryCount = 0
  private recordBuf: Buffer | null = null
  private recordCount = 0
  private positionalCount = 0
  private bareDirectories = false
  private readonly entryNodes: { ino: bigint; node: N }[] = []
  private readonly xattrBlobs: Buffer[] = []
  private xattrBytes = 0

  /** `listingNumber`: the directory's, for entries named by position (none without it). */
  constructor(dirIno: bigint, private readonly listingNumber?: number) {
    this.put(DOT, dirIno, 0o040000)
    this.put(DOTDOT, dirIno, 0o040000)
  }

  /** Adds an entry; a name is 1 to 255 bytes without NUL or '/'. Only the type bits of `mode` are shown (d_type). */
  add(name: Buffer, ino: bigint, mode: number): void {
    checkName(name)
    this.put(name, ino, mode)
    if ((mode & 0o170000) === 0o040000) this.bareDirectories = true
  }

  /** Whether a subdirectory went without its attributes (add, or addEntry past ENTRIES_LIMIT). */
  get bareSubdirectories(): boolean {
    return this.bareDirectories
  }

  /** Whether addEntry still keeps attributes: a first page holds no more than ENTRIES_LIMIT entries. */
  get takesEntries(): boolean {
    return this.entryCount < ENTRIES_LIMIT
  }

  /** Whether addPositional still keeps attributes. */
  get takesPositional(): boolean {
    return this.listingNumber !== undefined && this.positionalCount < POSITIONAL_LIMIT
  }

  /**
   * Adds an entry with the node it stands for, its attributes and xattrs, and how long the kernel may keep
   * the name (default: the mount's entryTimeout). Past ENTRIES_LIMIT, as add() does.
   */
  addEntry(name: Buffer, node: N, attr: FuseAttr, xattrs: readonly (readonly [Buffer, Buffer])[], entryValidSeconds?: number): void {
    if (typeof attr.ino === 'bigint' && attr.ino & POSITIONAL) throw new TypeError(`readdir: inode number ${attr.ino} is reserved`)
    const index = this.entryCount
    if (this.addRecorded(name, attr, xattrs, entryValidSeconds, index < ENTRIES_LIMIT ? BY_INODE : null)) {
      this.entryNodes.push({ ino: attr.ino, node })
    } else if ((attr.mode & 0o170000) === 0o040000) {
      this.bareDirectories = true
    }
  }

  /**
   * Adds an entry the kernel is to know by its position: `position` is what the handler's entryAt takes
   * to find it again (its place in the directory, say), below 2^32. For the entries of a directory that
   * never changes, and never for a directory (programs look names up in it). Past POSITIONAL_LIMIT, or
   * without a listing number, as add() does.
   */
  addPositional(name: Buffer, position: number, attr: FuseAttr, xattrs: readonly (readonly [Buffer, Buffer])[], entryValidSeconds?: number): void {
    if ((attr.mode & 0o170000) === 0o040000) throw new TypeError('readdir: a directory is not named by position')
    int(position, 'position', POSITION_LIMIT - 1)
    if (this.addRecorded(name, attr, xattrs, entryValidSeconds, this.takesPositional ? { listing: this.listingNumber!, position } : null)) {
      this.positionalCount++
    }
  }

  /** Adds an entry, with a record when `known` says how the kernel is to know it; returns whether it got one. */
  private addRecorded(name: Buffer, attr: FuseAttr, xattrs: readonly (readonly [Buffer, Buffer])[], entryValidSeconds: number | undefined,
    known: typeof BY_INODE | { listing: number; position: number } | null): boolean {
    checkName(name)
    const a = attrArgs(attr)
    const blob = packXattrs(xattrs)
    if (a[0] === ROOT || a[0] === 0n) throw new TypeError(`readdir: inode number ${a[0]} is reserved`)
    const index = this.entryCount
    this.put(name, a[0], a[1])
    if (!known) return false
    const at = this.recordCount * RECORD_BYTES
    if (!this.recordBuf || at + RECORD_BYTES > this.recordBuf.length) {
      const grown = Buffer.allocUnsafe(Math.max(16, 2 * this.recordCount + 2) * RECORD_BYTES)
      this.recordBuf?.copy(grown)
      this.recordBuf = grown
    }
    const r = this.recordBuf
    let p = r.writeUInt32LE(index, at)
    for (const v of [a[2], a[3], a[4], a[5], a[8]]) p = r.writeUInt32LE(v, p)
    p = writeUint64(r, a[6], p)
    p = writeUint64(r, a[7], p)
    for (const t of [a[9], a[10], a[11]]) p = writeInt64LE(r, t, p)
    p = r.writeUInt32LE(this.xattrBytes, p)
    p = r.writeUInt32LE(blob.length, p)
    p = r.writeDoubleLE(validity(entryValidSeconds), p)
    p = r.writeDoubleLE(validity(attr.validSeconds), p)
    if (known === BY_INODE) writeUint64(r, 0, p)
    else r.writeUInt32LE((POSITIONAL_HIGH | (blob.length > 0 ? POSITIONAL_XATTRS_HIGH : 0) | known.listing) >>> 0, r.writeUInt32LE(known.position, p))
    if (blob.length > 0) this.xattrBlobs.push(blob)
    this.xattrBytes += blob.length
    this.recordCount++
    return true
  }

  /** The entries so far, `.` and `..` included, and their number. */
  get packed(): Buffer {
    return this.buf.subarray(0, this.end)
  }

  get count(): number {
    return this.entryCount
  }

  /** The records of the entries added with attributes, the blob of their xattrs, and the nodes of addEntry's, in the records' order. */
  get entries(): { records: Buffer; xattrs: Buffer; nodes: readonly { ino: bigint; node: N }[] } {
    const records = (this.recordBuf ?? NO_RECORDS).subarray(0, this.recordCount * RECORD_BYTES)
    return { records, xattrs: Buffer.concat(this.xattrBlobs, this.xattrBytes), nodes: this.entryNodes }
  }

  private put(name: Buffer, ino: bigint, mode: number): void {
    const end = this.end + 13 + name.length
    if (end > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(end, 2 * this.buf.length))
      this.buf.copy(grown, 0, 0, this.end)
      this.buf = grown
    }
    let p = writeInt64LE(this.buf, inoOf(ino), this.end)
    p = this.buf.writeUInt32LE(int(mode, 'mode', U32), p)
    p += name.copy(this.buf, p)
    this.buf[p] = 0
    this.end = end
    this.entryCount++
  }
}

/**
 * READDIRPLUS entries are 152 bytes and the name: the kernel's pages (at most 128 KiB here) hold fewer than
 * 900, so attributes past that would never be used.
 */
const ENTRIES_LIMIT = 1024
/** Entries named by position a listing gives with attributes: their records stay with the listing while it is read (96 bytes each). */
const POSITIONAL_LIMIT = 65_536
const RECORD_BYTES = 96
/** A record of an entry the kernel knows by its inode number (nodeid 0 in the record). */
const BY_INODE = 'by inode'

/** A safe integer >= 0 as u64 LE, as two halves. */
function writeUint64(buf: Buffer, v: number, at: number): number {
  return buf.writeUInt32LE(Math.floor(v / 2 ** 32), buf.writeUInt32LE(v >>> 0, at))
}

const NO_RECORDS = Buffer.alloc(0)

function checkName(name: Buffer): void {
  if (!Buffer.isBuffer(name) || name.length === 0 || name.length > NAME_MAX || name.includes(0) || name.includes(0x2f)) {
    throw new TypeError('readdir: a name must be 1 to 255 bytes without NUL or \'/\'')
  }
}

const NO_XATTRS = Buffer.alloc(0)

/** xattrs in lowlevel.c's blob form (see xattr-table.h): per attribute, name, NUL, value length (u32 LE), value. */
export function packXattrs(xattrs: readonly (readonly [Buffer, Buffer])[]): Buffer {
  if (xattrs.length === 0) return NO_XATTRS
  const parts: Buffer[] = []
  for (const [name, value] of xattrs) {
    if (!Buffer.isBuffer(value) || value.length > XATTR_SIZE_MAX) throw new TypeError('an xattr value is a Buffer of at most 64 KiB')
    const head = Buffer.allocUnsafe(5)
    head[0] = 0
    head.writeUInt32LE(value.length, 1)
    parts.push(xattrName(name), head, value)
  }
  return Buffer.concat(parts)
}

function xattrName(name: Buffer): Buffer {
  if (!Buffer.isBuffer(name) || name.length === 0 || name.length > NAME_MAX || name.includes(0)) {
    throw new TypeError('an xattr name must be 1 to 255 bytes without NUL')
  }
  return name
}
