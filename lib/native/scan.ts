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

export interface DirectoryScan {
  entries: ScannedEntry[]
  /** The addon's answer as it came: equal bytes mean nothing a backup records has changed. */
  raw: Buffer
}

/** The entries of `dir` (all of them, or only `names`, in the order given). */
export async function scanDirectory(dir: Buffer, names?: Buffer[]): Promise<DirectoryScan> {
  const raw = await scanDirectoryRaw(dir, names)
  return { entries: parse(raw, dir), raw }
}

function parse(buf: Buffer, dir: Buffer): ScannedEntry[] {
  let at = 0
  const u16 = (): number => ((at += 2), buf.readUInt16LE(at - 2))
  const u32 = (): number => ((at += 4), buf.readUInt32LE(at - 4))
  const i32 = (): number => ((at += 4), buf.readInt32LE(at - 4))
  // Two 32-bit halves: no bigint allocated for values that are numbers anyway.
  const u64 = (): number => ((at += 8), buf.readUInt32LE(at - 8) + buf.readUInt32LE(at - 4) * 2 ** 32)
  const big = (): bigint => ((at += 8), buf.readBigUInt64LE(at - 8))
  const ns = (): bigint => ((at += 8), buf.readBigInt64LE(at - 8))
  const bytes = (n: number): Buffer => ((at += n), buf.subarray(at - n, at))
  const failure = (errno: number, syscall: string, name: Buffer): PosixError => posixError(-errno, syscall, Buffer.concat([dir, SLASH, name]))

  const entries: ScannedEntry[] = []
  for (let count = u32(); count > 0; count--) {
    const name = bytes(u16())
    const statErrno = i32()
    if (statErrno !== 0) {
      const error = failure(statErrno, 'lstat', name)
      entries.push({ name, stat: error, xattrs: error })
      continue
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
    const entry: ScannedEntry = { name, stat, xattrs: xattrErrno === 0 ? xattrs : failure(xattrErrno, 'llistxattr', name) }
    if ((stat.mode & S_IFMT) === S_IFLNK) {
      const linkErrno = i32()
      const target = bytes(u32())
      entry.target = linkErrno === 0 ? target : failure(linkErrno, 'readlink', name)
    }
    entries.push(entry)
  }
  return entries
}

const SLASH = Buffer.from('/')
