/**
 * A directory's entries as a backup sees them, from one request to the
 * addon (scan.c, which documents the byte layout parsed here): names in
 * bytewise order, lstat fields with nanosecond times, extended attributes
 * sorted by name, and symlink targets. Failures of single entries come back
 * per entry, as Node-style SystemErrors; failing to read the directory
 * rejects.
 */
import { posixError, scanDirectoryRaw, type PosixError } from './posix.js'

/** What lstat says about an entry. Sizes and ids as numbers (exact below 2^53); the inode as a bigint, as the files cache compares it. */
export interface EntryStat {
  mode: number
  uid: number
  gid: number
  ino: bigint
  dev: number
  nlink: number
  size: number
  rdev: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
}

export interface ScannedEntry {
  /** Its position in the scan. */
  index: number
  name: Buffer
  /** lstat's answer, or why it failed (ENOENT: the entry vanished). */
  stat: EntryStat | PosixError
  /** [name, value] pairs sorted by name, or why they could not be listed. */
  xattrs: [Buffer, Buffer][] | PosixError
  /** Symlinks only: the target's bytes, or why readlink failed. */
  target?: Buffer | PosixError
}

const S_IFMT = 0o170000
const S_IFLNK = 0o120000
/** mode, uid, gid (u32), ino, dev, nlink, size, rdev (u64), atime, mtime, ctime (i64). */
const STAT_BYTES = 3 * 4 + 8 * 8

export interface DirectoryScan {
  entries: ScanEntries
  /** The addon's answer as it came: equal bytes mean nothing a backup records has changed. */
  raw: Buffer
}

/** The entries of `dir` (all of them, or only `names`, in the order given). */
export async function scanDirectory(dir: Buffer, names?: Buffer[]): Promise<DirectoryScan> {
  const raw = await scanDirectoryRaw(dir, names)
  return { entries: new ScanEntries(raw, dir), raw }
}

/**
 * A scan's entries, each parsed from the raw answer when it is asked for
 * (a new object each time): a backup holds a directory's scan while it
 * works through the directory, and the answer is about 100 bytes an entry
 * where the parsed entry, its stat and four bigints are about 400 more
 * (a directory of 25,000 files held 10 MB of them in a backup of the
 * medium corpus; a directory of a million would hold 400 MB).
 */
export class ScanEntries implements Iterable<ScannedEntry> {
  readonly length: number
  /** Where each entry's record starts in the raw answer. */
  readonly #starts: Uint32Array

  constructor(private readonly raw: Buffer, private readonly dir: Buffer) {
    this.length = raw.length >= 4 ? raw.readUInt32LE(0) : 0
    this.#starts = new Uint32Array(this.length)
    let at = 4
    for (let i = 0; i < this.length; i++) {
      this.#starts[i] = at
      at = recordEnd(raw, at)
    }
  }

  at(index: number): ScannedEntry {
    if (!(index >= 0 && index < this.length)) throw new RangeError(`no entry ${index} in a scan of ${this.length}`)
    return parseRecord(this.raw, this.#starts[index]!, this.dir, index)
  }

  /** The entry's mode, or null when lstat failed: enough to pick out directories without parsing the rest. */
  modeAt(index: number): number | null {
    const at = this.#starts[index]!
    const statAt = at + 2 + this.raw.readUInt16LE(at)
    return this.raw.readInt32LE(statAt) === 0 ? this.raw.readUInt32LE(statAt + 4) : null
  }

  *[Symbol.iterator](): Iterator<ScannedEntry> {
    for (let i = 0; i < this.length; i++) yield this.at(i)
  }
}

/** Where the record starting at `at` ends (the layout parseRecord reads). */
function recordEnd(buf: Buffer, at: number): number {
  at += 2 + buf.readUInt16LE(at)
  const statErrno = buf.readInt32LE(at)
  at += 4
  if (statErrno !== 0) return at
  const mode = buf.readUInt32LE(at)
  at += STAT_BYTES + 4 // the stat, then llistxattr's errno
  for (let n = buf.readUInt16LE((at += 2) - 2); n > 0; n--) {
    at += 2 + buf.readUInt16LE(at)
    at += 4 + buf.readUInt32LE(at)
  }
  if ((mode & S_IFMT) === S_IFLNK) at += 8 + buf.readUInt32LE(at + 4)
  return at
}

function parseRecord(buf: Buffer, at: number, dir: Buffer, index: number): ScannedEntry {
  const u16 = (): number => ((at += 2), buf.readUInt16LE(at - 2))
  const u32 = (): number => ((at += 4), buf.readUInt32LE(at - 4))
  const i32 = (): number => ((at += 4), buf.readInt32LE(at - 4))
  // Two 32-bit halves: no bigint allocated for values that are numbers anyway.
  const u64 = (): number => ((at += 8), buf.readUInt32LE(at - 8) + buf.readUInt32LE(at - 4) * 2 ** 32)
  const big = (): bigint => ((at += 8), buf.readBigUInt64LE(at - 8))
  const ns = (): bigint => ((at += 8), buf.readBigInt64LE(at - 8))
  const bytes = (n: number): Buffer => ((at += n), buf.subarray(at - n, at))
  const failure = (errno: number, syscall: string, name: Buffer): PosixError => posixError(-errno, syscall, Buffer.concat([dir, SLASH, name]))

  const name = bytes(u16())
  const statErrno = i32()
  if (statErrno !== 0) {
    const error = failure(statErrno, 'lstat', name)
    return { index, name, stat: error, xattrs: error }
  }
  const stat: EntryStat = {
    mode: u32(),
    uid: u32(),
    gid: u32(),
    ino: big(),
    dev: u64(),
    nlink: u64(),
    size: u64(),
    rdev: u64(),
    atimeNs: ns(),
    mtimeNs: ns(),
    ctimeNs: ns(),
  }
  const xattrErrno = i32()
  const xattrs: [Buffer, Buffer][] = []
  for (let n = u16(); n > 0; n--) {
    const key = bytes(u16())
    xattrs.push([key, bytes(u32())])
  }
  const entry: ScannedEntry = { index, name, stat, xattrs: xattrErrno === 0 ? xattrs : failure(xattrErrno, 'llistxattr', name) }
  if ((stat.mode & S_IFMT) === S_IFLNK) {
    const linkErrno = i32()
    const target = bytes(u32())
    entry.target = linkErrno === 0 ? target : failure(linkErrno, 'readlink', name)
  }
  return entry
}

const SLASH = Buffer.from('/')
