/**
 * What Node's fs cannot do, through cairn's own small addon (posix.c):
 * timestamps to the exact nanosecond, extended attributes, and mknod; and
 * the one thing node:crypto cannot: AES-GCM into the caller's memory (seal.c),
 * and whole batches of stored blobs opened off the main thread (blob-batch.c).
 *
 * Paths, xattr names and values are Buffers: raw bytes, never decoded.
 * Symlinks are never followed by the xattr calls, nor by setTimes unless
 * asked. The Promise-returning functions run on libuv's thread pool, so a
 * process that must not block (the FUSE mount) can use them; the `*Sync`
 * twins run on the calling thread.
 *
 * A failed syscall rejects (or throws) with a {@link PosixError}, shaped
 * like Node's SystemError: `code` ('ENOENT', 'ENOTSUP', ...), `errno`
 * (negative), `syscall`, `path` (display form) and `pathBuffer` (the bytes).
 * ENOTSUP from the xattr calls means the filesystem keeps no xattrs (or none
 * in that namespace). Linux refuses user.* xattrs on symlinks with EPERM.
 *
 * The addon is loaded on first use, not at import: when it was not built
 * (no compiler at install), that first use throws CairnError 'io'.
 */
import { isUtf8 } from 'node:buffer'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getSystemErrorMap, getSystemErrorName } from 'node:util'
import { CairnError } from '../errors.js'

/** A failed syscall, as Node's fs reports one. */
export interface PosixError extends Error {
  code: string
  errno: number
  syscall: string
  /** Display form of the path: UTF-8 when it is valid UTF-8, else with \xNN escapes. */
  path: string
  pathBuffer: Buffer
}

export interface SetTimesOptions {
  /** Set the times of a symlink's target instead of the link. Default false. */
  followSymlinks?: boolean
}

type Dev = bigint | number

interface Binding {
  setTimes(path: Buffer, atimeNs: bigint, mtimeNs: bigint, followSymlinks: boolean): Promise<void>
  setTimesSync(path: Buffer, atimeNs: bigint, mtimeNs: bigint, followSymlinks: boolean): void
  getXattr(path: Buffer, name: Buffer): Promise<Buffer | null>
  getXattrSync(path: Buffer, name: Buffer): Buffer | null
  listXattrs(path: Buffer): Promise<Buffer[]>
  listXattrsSync(path: Buffer): Buffer[]
  setXattr(path: Buffer, name: Buffer, value: Buffer): Promise<void>
  setXattrSync(path: Buffer, name: Buffer, value: Buffer): void
  mknod(path: Buffer, mode: number, dev: Dev): Promise<void>
  mknodSync(path: Buffer, mode: number, dev: Dev): void
  makedev(major: number, minor: number): bigint
  major(dev: Dev): number
  minor(dev: Dev): number
  scanDirectory(dir: Buffer, names?: Buffer[]): Promise<Buffer>
  coldStart(fd: number, willNeed: boolean): boolean
  misalignment(bytes: Uint8Array, alignment: number): number
  adviseDontNeed(fd: number, offset: number, length: number): void
  readCachedSync(fd: number, buf: Buffer, position: number): number
  dropCleanFilePages(): number
  discardPages(bytes: Uint8Array): number
  fixMallocMmapThreshold(bytes: number, trimBytes?: number): boolean
  adviseHugePages(bytes: Uint8Array): number
  adviseNoHugePages(bytes: Uint8Array): number
  sealAesGcmInPlace(encKey: Uint8Array, buf: Uint8Array, payloadLength: number, aad: Uint8Array): void
  openAesGcmInPlace(encKey: Uint8Array, buf: Uint8Array, aad: Uint8Array): boolean
  openBlobBatch(scheme: number, encKey: Uint8Array, paths: Uint8Array, plan: Uint8Array, out: Uint8Array, lengths: Int32Array): Promise<void>
  scryptRoMix(lane: Buffer, N: number, r: number): Promise<void>
}

const ADDON = join('lib', 'native', 'build', 'Release', 'cairn_posix.node')
const HINT = 'run: npm rebuild cairn-backup --foreground-scripts (needs g++, make and python3)'

let binding: Binding | undefined

/**
 * The package root: the nearest directory above this module whose
 * package.json names cairn-backup (this file runs from lib/native as
 * TypeScript and from dist/lib/native once compiled).
 */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const manifest = join(dir, 'package.json')
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'cairn-backup') return dir
      } catch {
        // unreadable or not JSON: not ours, keep walking up
      }
    }
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

function native(): Binding {
  if (binding !== undefined) return binding
  const root = packageRoot()
  const file = root === undefined ? undefined : join(root, ADDON)
  if (file === undefined || !existsSync(file)) {
    const where = file ?? `${ADDON} (package root of cairn-backup not found)`
    throw new CairnError('io', `cairn's native helper is not built: ${where} is missing`, { hint: HINT })
  }
  try {
    binding = createRequire(import.meta.url)(file) as Binding
  } catch (cause) {
    throw new CairnError('io', `cairn's native helper could not be loaded from ${file}`, { hint: HINT, cause })
  }
  return binding
}

/** A path's bytes for messages: valid UTF-8 as is, otherwise printable ASCII and \xNN. */
export function displayPath(path: Buffer): string {
  if (isUtf8(path)) return path.toString('utf8')
  let out = ''
  for (const byte of path) {
    out += byte >= 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`
  }
  return out
}

/** The addon's bare error (errno, syscall) as Node's SystemError shape; others pass through. */
function systemError(err: unknown, path: Buffer): unknown {
  if (!(err instanceof Error) || typeof (err as { errno?: unknown }).errno !== 'number') return err
  const { errno, syscall } = err as Error & { errno: number; syscall: string }
  return posixError(errno, syscall, path)
}

/** A failed syscall as Node's SystemError shape; `errno` negative, as Node has it. */
export function posixError(errno: number, syscall: string, path: Buffer): PosixError {
  const name = getSystemErrorName(errno)
  const code = name.startsWith('E') ? name : 'UNKNOWN'
  const description = getSystemErrorMap().get(errno)?.[1] ?? `error ${-errno}`
  const display = displayPath(path)
  const error = new Error(`${code}: ${description}, ${syscall} '${display}'`) as PosixError
  Object.assign(error, { code, errno, syscall, path: display, pathBuffer: Buffer.from(path) })
  return error
}

function sync<T>(path: Buffer, call: (b: Binding) => T): T {
  const b = native()
  try {
    return call(b)
  } catch (err) {
    throw systemError(err, path)
  }
}

async function pooled<T>(path: Buffer, call: (b: Binding) => Promise<T>): Promise<T> {
  const b = native()
  try {
    return await call(b)
  } catch (err) {
    throw systemError(err, path)
  }
}

/**
 * Sets atime and mtime to the exact nanosecond (utimensat). Times are
 * nanoseconds since the epoch, negative before 1970, as in
 * `fs.lstat(p, { bigint: true }).mtimeNs`. The link itself unless
 * `followSymlinks`.
 */
export function setTimes(path: Buffer, atimeNs: bigint, mtimeNs: bigint, options: SetTimesOptions = {}): Promise<void> {
  const follow = options.followSymlinks ?? false
  return pooled(path, (b) => b.setTimes(path, atimeNs, mtimeNs, follow))
}

export function setTimesSync(path: Buffer, atimeNs: bigint, mtimeNs: bigint, options: SetTimesOptions = {}): void {
  const follow = options.followSymlinks ?? false
  sync(path, (b) => b.setTimesSync(path, atimeNs, mtimeNs, follow))
}

/** One xattr's value (lgetxattr), or null when the file has no such attribute. */
export function getXattr(path: Buffer, name: Buffer): Promise<Buffer | null> {
  return pooled(path, (b) => b.getXattr(path, name))
}

export function getXattrSync(path: Buffer, name: Buffer): Buffer | null {
  return sync(path, (b) => b.getXattrSync(path, name))
}

/** The names of all xattrs the caller may see (llistxattr), in the kernel's order. */
export function listXattrs(path: Buffer): Promise<Buffer[]> {
  return pooled(path, (b) => b.listXattrs(path))
}

export function listXattrsSync(path: Buffer): Buffer[] {
  return sync(path, (b) => b.listXattrsSync(path))
}

/** Creates or replaces one xattr (lsetxattr). */
export function setXattr(path: Buffer, name: Buffer, value: Buffer): Promise<void> {
  return pooled(path, (b) => b.setXattr(path, name, value))
}

export function setXattrSync(path: Buffer, name: Buffer, value: Buffer): void {
  sync(path, (b) => b.setXattrSync(path, name, value))
}

/**
 * Creates a fifo or a device node (mknod). `mode` holds the type bits
 * (fs.constants.S_IFIFO, S_IFCHR, S_IFBLK) and the permissions (the umask
 * applies); `dev` is the encoded device number as in `stat.rdev`, 0 for a fifo.
 */
export function mknod(path: Buffer, mode: number, dev: Dev = 0): Promise<void> {
  return pooled(path, (b) => b.mknod(path, mode, dev))
}

export function mknodSync(path: Buffer, mode: number, dev: Dev = 0): void {
  sync(path, (b) => b.mknodSync(path, mode, dev))
}

/** libc's makedev: a device number from its major and minor parts. */
export function makedev(major: number, minor: number): bigint {
  return native().makedev(major, minor)
}

/** libc's major() of an encoded device number such as `stat.rdev`. */
export function major(dev: Dev): number {
  return native().major(dev)
}

/** libc's minor() of an encoded device number such as `stat.rdev`. */
export function minor(dev: Dev): number {
  return native().minor(dev)
}

/**
 * The raw answer of scan.c's scanDirectory (lib/native/scan.ts parses it):
 * a directory's entries, or only `names` in it, with lstat, xattrs and
 * symlink targets, gathered on libuv's thread pool.
 */
export function scanDirectoryRaw(dir: Buffer, names?: Buffer[]): Promise<Buffer> {
  return pooled(dir, (b) => b.scanDirectory(dir, names))
}

/**
 * If the file's first page is not in the page cache, asks the kernel to start reading the whole file
 * (posix_fadvise WILLNEED) and returns true at once: the pages this process is about to read are then
 * its own doing, and it drops them once read (adviseDontNeed). A file already cached is left alone
 * (false): it belongs to someone's working set.
 */
export function adviseWillNeedIfCold(fd: number): boolean {
  return native().coldStart(fd, true)
}

/** Whether the file's first page is missing from the page cache (see adviseWillNeedIfCold), asking nothing of the kernel. */
export function isCold(fd: number): boolean {
  return native().coldStart(fd, false)
}

/** The address of the first byte of `bytes` modulo `alignment`, or null without the native helper. */
export function misalignment(bytes: Uint8Array, alignment: number): number | null {
  try {
    return native().misalignment(bytes, alignment)
  } catch (err) {
    if (!(err instanceof CairnError)) throw err
    return null
  }
}

/** Drops the clean cached pages wholly inside the range from the page cache (length 0: to the end). A hint: nothing without the native helper. */
export function adviseDontNeed(fd: number, offset: number, length: number): void {
  try {
    native().adviseDontNeed(fd, offset, length)
  } catch (err) {
    if (!(err instanceof CairnError)) throw err
  }
}

/** Set when readCachedSync found the addon missing, so that it does not look again at every call. */
let noCachedReads = false

/**
 * Fills `buf` from `position` of `fd` on the calling thread if the bytes are in the page cache, never
 * waiting for a disk (preadv2 RWF_NOWAIT): the bytes read, or -1 when that would wait, failed, or the
 * addon is not built (read the usual way then, which reports any error). About a microsecond against
 * 30-40 for a read through libuv's thread pool on the project VM.
 */
export function readCachedSync(fd: number, buf: Buffer, position: number): number {
  if (noCachedReads) return -1
  try {
    return native().readCachedSync(fd, buf, position)
  } catch (err) {
    if (!(err instanceof CairnError)) throw err
    noCachedReads = true
    return -1
  }
}

/**
 * Takes the pages of this process's read-only file mappings that it never wrote (the node binary's code
 * and data, libraries, addons) out of its resident set; they stay in the page cache and come back on
 * next use. For a long-lived process after its startup, whose code mostly served only that. Returns the
 * bytes that were resident in them.
 */
export function dropCleanFilePages(): number {
  return native().dropCleanFilePages()
}

/**
 * Gives the whole pages inside `bytes` back to the system: they read as zeros if used again. For big
 * buffers a command is done with but cannot free at once (shared memory is freed only once every thread
 * lets go of it). Returns the bytes given back; 0 without the native helper.
 */
export function discardPages(bytes: Uint8Array): number {
  try {
    return native().discardPages(bytes)
  } catch (err) {
    if (!(err instanceof CairnError)) throw err
    return 0
  }
}

/**
 * From now on glibc serves allocations of at least `bytes` with mmap, so that freeing one gives its memory
 * back, and trims the free top of its heaps above `trimBytes` (default 128 KiB), instead of raising both
 * thresholds after big blocks are freed (its default). Whether it took effect (false without the native helper).
 */
export function fixMallocMmapThreshold(bytes: number, trimBytes?: number): boolean {
  try {
    return trimBytes === undefined ? native().fixMallocMmapThreshold(bytes) : native().fixMallocMmapThreshold(bytes, trimBytes)
  } catch (err) {
    if (!(err instanceof CairnError)) throw err
    return false
  }
}

/**
 * Seals an object in place in the AES-256-GCM layout of lib/crypto/sealer.ts:
 * `buf` holds the scheme byte, the salt and the payload; the payload becomes
 * ciphertext and the tag is written after it. On the calling thread (see seal.c).
 */
export function sealAesGcmInPlace(encKey: Uint8Array, buf: Uint8Array, payloadLength: number, aad: Uint8Array): void {
  native().sealAesGcmInPlace(encKey, buf, payloadLength, aad)
}

const HUGE_PAGE = 2 * 1024 * 1024
/** The memory of hugePageBuffer's views: each is its only user, though it does not cover it whole. */
const privateMemory = new WeakSet<ArrayBufferLike>()

/**
 * `length` uninitialized bytes (1 MiB or more to gain anything) that start on a 2 MiB boundary, their whole
 * 2 MiB blocks, and a last block at least half used, advised to live in transparent huge pages: for a big
 * buffer about to be filled at once (a read of a pack range). Filling fresh memory costs a page fault per
 * page, and on a VM whose faults are slow (about 25 µs each on session 15's machine) a 300 MiB read through
 * the mount spent most of its time faulting in 4 KiB pages (bench/RESULTS.md, session 15). The view's
 * ArrayBuffer is 4 MiB longer than the view; of that, only the rest of a last huge page is ever resident.
 * A plain buffer without the native helper.
 */
export function hugePageBuffer(length: number): Buffer {
  if (!nativeHelperLoads()) return Buffer.allocUnsafeSlow(length)
  const whole = Buffer.allocUnsafeSlow(length + 2 * HUGE_PAGE)
  const off = native().misalignment(whole, HUGE_PAGE)
  const start = off === 0 ? 0 : HUGE_PAGE - off
  const view = whole.subarray(start, start + length)
  // A last block at least half used goes into a huge page too: half of it unused costs less than 256 faults.
  // One less used stays in 4 KiB pages, also where glibc advises its blocks whole (glibc.malloc.hugetlb=1, as
  // the mount daemon runs): a huge page there would be zeroed and held whole, for a cached chunk as long as
  // it is cached (a 2.25 MiB chunk would hold 4 MiB).
  const tail = length % HUGE_PAGE
  if (tail >= HUGE_PAGE / 2) native().adviseHugePages(whole.subarray(start, start + length - tail + HUGE_PAGE))
  else {
    native().adviseHugePages(view)
    native().adviseNoHugePages(whole.subarray(start + length - tail))
  }
  privateMemory.add(view.buffer)
  return view
}

/** Whether `bytes` is the only user of its memory (which may then move to another thread): it covers it whole, or hugePageBuffer made it. */
export function ownsItsMemory(bytes: Uint8Array): boolean {
  return (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) || privateMemory.has(bytes.buffer)
}

/** Whether the native helper is built and loads here (looked for once). */
export function nativeHelperLoads(): boolean {
  try {
    native()
    return true
  } catch (err) {
    if (!(err instanceof CairnError)) throw err
    return false
  }
}

/** Decrypts a sealed object (that layout) in place; whether its tag matched (if not, `buf` holds garbage). */
export function openAesGcmInPlace(encKey: Uint8Array, buf: Uint8Array, aad: Uint8Array): boolean {
  return native().openAesGcmInPlace(encKey, buf, aad)
}

/**
 * Reads, authenticates, decrypts and decodes the blobs `plan` lists into `out`, on libuv's thread pool;
 * `lengths` receives each one's plaintext length or a negative failure (layouts in blob-batch.c). `out` and
 * `lengths` must be left alone until the promise settles.
 */
export function openBlobBatch(scheme: number, encKey: Uint8Array, paths: Uint8Array, plan: Uint8Array, out: Uint8Array,
  lengths: Int32Array): Promise<void> {
  return native().openBlobBatch(scheme, encKey, paths, plan, out, lengths)
}

/** scrypt's memory-hard mix of one lane (128·r bytes), in place, on libuv's thread pool (see romix.c). */
export function scryptRoMix(lane: Buffer, N: number, r: number): Promise<void> {
  return native().scryptRoMix(lane, N, r)
}
