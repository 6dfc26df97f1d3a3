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
  readonly #view: DataView

  constructor(private readonly raw: Buffer, private readonly dir: Buffer) {
    this.#view = new DataView(raw.buffer, raw.byteOffset, raw.length)
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
    return parseRecord(this.raw, this.#view, this.#starts[index]!, this.dir, index)
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

/**
 * Reads with offsets and a DataView rather than helper closures and Buffer's readBig*64LE (which build
 * each bigint from smaller ones): a backup parses every entry it backs up, on its main thread, and the
 * garbage of that is what its collector works through.
 */
function parseRecord(buf: Buffer, view: DataView, at: number, dir: Buffer, index: number): ScannedEntry {
  const nameLength = view.getUint16(at, true)
  const name = buf.subarray(at + 2, at + 2 + nameLength)
  at += 2 + nameLength
  const statErrno = view.getInt32(at, true)
  at += 4
  if (statErrno !== 0) {
    const error = failure(statErrno, 'lstat', dir, name)
    return { index, name, stat: error, xattrs: error }
  }
  const stat: EntryStat = {
    mode: view.getUint32(at, true),
    uid: view.getUint32(at + 4, true),
    gid: view.getUint32(at + 8, true),
    ino: view.getBigUint64(at + 12, true),
    dev: u64(view, at + 20),
    nlink: u64(view, at + 28),
    size: u64(view, at + 36),
    rdev: u64(view, at + 44),
    atimeNs: view.getBigInt64(at + 52, true),
    mtimeNs: view.getBigInt64(at + 60, true),
    ctimeNs: view.getBigInt64(at + 68, true),
  }
  at += STAT_BYTES
  const xattrErrno = view.getInt32(at, true)
  let count = view.getUint16(at + 4, true)
  at += 6
  const xattrs: [Buffer, Buffer][] = []
  for (; count > 0; count--) {
    const keyLength = view.getUint16(at, true)
    const key = buf.subarray(at + 2, at + 2 + keyLength)
    at += 2 + keyLength
    const valueLength = view.getUint32(at, true)
    xattrs.push([key, buf.subarray(at + 4, at + 4 + valueLength)])
    at += 4 + valueLength
  }
  const entry: ScannedEntry = { index, name, stat, xattrs: xattrErrno === 0 ? xattrs : failure(xattrErrno, 'llistxattr', dir, name) }
  if ((stat.mode & S_IFMT) === S_IFLNK) {
    const linkErrno = view.getInt32(at, true)
    const targetLength = view.getUint32(at + 4, true)
    const target = buf.subarray(at + 8, at + 8 + targetLength)
    entry.target = linkErrno === 0 ? target : failure(linkErrno, 'readlink', dir, name)
  }
  return entry
}

function failure(errno: number, syscall: string, dir: Buffer, name: Buffer): PosixError {
  return posixError(-errno, syscall, Buffer.concat([dir, SLASH, name]))
}

/** A u64 field as a number, from its two 32-bit halves (exact below 2^53; no bigint made). */
function u64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32
}

const SLASH = Buffer.from('/')
