/**
 * A typed, byte-exact layer over cairn's patched fuse-native (see mount/native/patch-fuse-native.mjs and
 * native-notes/fuse.md). Handlers are async and speak bytes: paths, names, link targets and xattr names are
 * Buffers; times are BigInt nanoseconds since the epoch (negative before 1970); inode numbers are BigInt.
 *
 * - fuse-native is loaded only when `mount()` is called, so cairn works where FUSE is absent.
 * - The file system is read-only: every modifying request is answered EROFS here, whatever the handlers.
 * - A handler answers an error by returning a negative errno (ENOENT, ...) or throwing one (a number,
 *   `FuseErrno`, or a Node error with an errno `code`). Anything else it throws is answered EIO and
 *   reported to `onError`: an exception must never reach fuse-native, where it kills the process and
 *   leaves a dead mount.
 * - Handlers run on the main thread, several at once. Never block the event loop in them, and never
 *   touch the mount from the process that serves it (its FUSE threads wait for this event loop).
 */
import { stat, constants as fsConstants } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { constants as osConstants } from 'node:os'
import { fileURLToPath } from 'node:url'
import { CairnError } from '../lib/index.js'
import { exists, findMount, forceUnmount, poll, resolveMountpoint, run, withTimeout } from './mount-table.js'

export { abortFuseConnection, findMount, forceUnmount, readMountInfo, type ForceUnmountResult, type MountInfo } from './mount-table.js'

/** Must equal PATCH_LEVEL in mount/native/patch-fuse-native.mjs. */
export const CAIRN_PATCH_LEVEL = 1

const E = osConstants.errno
/** FUSE wants negative errno values. */
export const EPERM = -E.EPERM
export const ENOENT = -E.ENOENT
export const EINTR = -E.EINTR
export const EIO = -E.EIO
export const EBADF = -E.EBADF
export const EACCES = -E.EACCES
export const EEXIST = -E.EEXIST
export const ENOTDIR = -E.ENOTDIR
export const EISDIR = -E.EISDIR
export const EINVAL = -E.EINVAL
export const EROFS = -E.EROFS
export const ERANGE = -E.ERANGE
export const ENAMETOOLONG = -E.ENAMETOOLONG
export const ENOSYS = -E.ENOSYS
export const ENOTEMPTY = -E.ENOTEMPTY
export const ELOOP = -E.ELOOP
export const ENODATA = -E.ENODATA
/** Linux has no ENOATTR; "no such attribute" is ENODATA. */
export const ENOATTR = ENODATA
export const EOPNOTSUPP = -E.EOPNOTSUPP
export const ENOTCONN = -E.ENOTCONN
export const ETIMEDOUT = -E.ETIMEDOUT
export const ECANCELED = -E.ECANCELED

/** Throw this (or just the number) from a handler to answer an errno. */
export class FuseErrno extends Error {
  readonly errno: number
  constructor(errno: number, message?: string) {
    super(message ?? `FUSE errno ${errno}`)
    this.name = 'FuseErrno'
    this.errno = -Math.abs(errno)
  }
}

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
}

/**
 * A directory listing. The kernel does not add `.` and `..`: include them. `attrs[i]` belongs to `names[i]`;
 * of them only the inode number and the type bits reach the kernel (d_ino, d_type: FUSE 2 has no
 * readdirplus), so a listing saves no getattr calls.
 */
export interface FuseDirListing {
  names: Buffer[]
  attrs?: Pick<FuseAttr, 'ino' | 'mode'>[]
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

export interface FuseHandlers {
  getattr(path: Buffer): Promise<FuseResult<FuseAttr>>
  readdir(path: Buffer): Promise<FuseResult<FuseDirListing>>
  /** Up to `length` bytes at `position`; fewer at the end of the file. */
  read(path: Buffer, fh: number, length: number, position: number): Promise<FuseResult<Uint8Array>>
  /**
   * Called for read-only opens only (writes are EROFS). Returns a file handle, 0 to 2^31 - 1. Without it, a
   * read-only mount leaves opens to libfuse (answered in its own thread, without a trip to the event loop;
   * the kernel refuses opens for writing on a read-only mount) and reads get file handle 0.
   */
  open?(path: Buffer, flags: number): Promise<FuseResult<number>>
  release?(path: Buffer, fh: number): Promise<FuseResult<void>>
  readlink?(path: Buffer): Promise<FuseResult<Buffer>>
  /** ENODATA when the attribute does not exist. */
  getxattr?(path: Buffer, name: Buffer): Promise<FuseResult<Buffer>>
  listxattr?(path: Buffer): Promise<FuseResult<Buffer[]>>
  statfs?(path: Buffer): Promise<FuseResult<FuseStatfs>>
}

export interface FuseHandlerError {
  op: string
  path: Buffer
  error: unknown
}

export interface FuseMountOptions {
  /** Mount with `ro` (default true). Modifying requests are EROFS either way. */
  readOnly?: boolean
  /** Mount with `use_ino` (default true): the kernel uses FuseAttr.ino, so hard links share it. */
  useIno?: boolean
  allowOther?: boolean
  defaultPermissions?: boolean
  /** Override the owner of every file. */
  uid?: number
  gid?: number
  /** Replaces the permission bits of every file with 0o777 & ~umask (libfuse's `umask=`), e.g. 0o022. */
  umask?: number
  /** Shown as the source in /proc/mounts. */
  fsname?: string
  /** The type shows as fuse.<subtype>. */
  subtype?: string
  /** Seconds the kernel caches attributes / name lookups (libfuse default 1). */
  attrTimeout?: number
  entryTimeout?: number
  /** Keep file contents in the page cache between opens. */
  kernelCache?: boolean
  /** Milliseconds a handler may take before the request is answered ETIMEDOUT (default 15000), or false. */
  timeout?: number | false
  /** Milliseconds to wait for the kernel to mount (default 10000). */
  mountTimeout?: number
  /** Unexpected handler failures (answered EIO). Default: process.emitWarning. */
  onError?: (report: FuseHandlerError) => void
}

export interface FuseMount {
  readonly mountpoint: string
  /** The connection number: /sys/fs/fuse/connections/<minor>. */
  readonly minor: number
  /** Resolves when the kernel mount is gone. Idempotent. */
  unmount(): Promise<void>
}

type NativeCb = (code: number, ...values: unknown[]) => void
type NativeOp = (...args: never[]) => void
interface NativeFuse {
  mount(cb: (err: Error | null) => void): void
  unmount(cb: (err: Error | null) => void): void
}
interface NativeFuseClass {
  new (mnt: string, ops: Record<string, NativeOp>, opts: Record<string, unknown>): NativeFuse
  cairnPatchLevel?: number
}

const FUSE_HINT = 'install it with: apt-get install -y fuse libfuse2'
const NAME_MAX = 255
const PATH_MAX = 4096
const XATTR_SIZE_MAX = 65536
const O_ACCMODE = 3 // Linux; not in fs.constants

let loading: Promise<NativeFuseClass> | undefined

/** Resolves if mounting can work here; otherwise throws CairnError('fuse-missing') saying what is missing and how to fix it. */
export async function checkFuseAvailable(): Promise<void> {
  await loadFuseNative()
}

/** Load the patched fuse-native once (lazily: cairn works without it until something mounts). */
function loadFuseNative(): Promise<NativeFuseClass> {
  loading ??= load()
  loading.catch(() => { loading = undefined }) // retry after the user fixed it
  return loading
}

async function load(): Promise<NativeFuseClass> {
  if (process.platform !== 'linux') throw new CairnError('fuse-missing', `FUSE is not available: cairn mounts need Linux, this is ${process.platform}`)
  if (!(await exists('/dev/fuse'))) {
    throw new CairnError('fuse-missing', 'FUSE is not available: /dev/fuse does not exist', {
      hint: 'load the module with: modprobe fuse (in a container: run it with --device /dev/fuse)',
    })
  }
  if ((await run('fusermount', ['-V'], 10_000)).error?.code === 'ENOENT') {
    throw new CairnError('fuse-missing', 'FUSE is not available: fusermount is not installed', { hint: FUSE_HINT })
  }
  let Fuse: NativeFuseClass
  try {
    Fuse = createRequire(import.meta.url)('fuse-native') as NativeFuseClass
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    if (/libfuse\.so/.test(message)) {
      throw new CairnError('fuse-missing', 'FUSE is not available: libfuse.so.2 is not installed', { hint: FUSE_HINT, cause: err })
    }
    if (/patched by cairn/.test(message)) throw await notPatched(`its addon is not the patched build (${message.split('\n')[0]})`, err)
    throw new CairnError('fuse-missing', `FUSE is not available: fuse-native does not load: ${message.split('\n')[0]}`, { cause: err })
  }
  if (Fuse.cairnPatchLevel !== CAIRN_PATCH_LEVEL) {
    throw await notPatched(`fuse-native is not patched for cairn (found level ${Fuse.cairnPatchLevel ?? 'none'}, need ${CAIRN_PATCH_LEVEL})`)
  }
  return Fuse
}

async function notPatched(what: string, cause?: unknown): Promise<CairnError> {
  // mount/fuse-binding.ts in a checkout, dist/mount/fuse-binding.js in a package
  const candidates = ['./native/patch-fuse-native.mjs', '../../mount/native/patch-fuse-native.mjs']
    .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  let script = candidates[0]!
  for (const c of candidates) if (await exists(c)) { script = c; break }
  return new CairnError('fuse-missing', `FUSE is not available: ${what}; cairn refuses to mount, names and times would be corrupted`, {
    hint: `build the patched addon with: node ${script} --force (needs g++, make, python3)`,
    cause,
  })
}

/** Mount `handlers` at `mountpoint`; resolves once the kernel has the mount. */
export async function mount(mountpoint: string, handlers: FuseHandlers, options: FuseMountOptions = {}): Promise<FuseMount> {
  const mp = await resolveMountpoint(mountpoint)
  if (Buffer.byteLength(mp) >= 1024 || mp.includes('\0')) throw new CairnError('bad-argument', `mount point path too long: ${mp}`, { path: mp })
  const nativeOptions = toNativeOptions(options)
  const Fuse = await loadFuseNative()
  const existing = await findMount(mp)
  if (existing) {
    throw new CairnError('mount-failed', `${mp} is already a mount point (${existing.fstype})`, { hint: `unmount it first: fusermount -uz ${mp}`, path: mp })
  }
  const st = await stat(mp).catch((err: unknown) => {
    throw new CairnError('mount-failed', `mount point ${mp} cannot be used: ${(err as Error).message}`, { path: mp, cause: err })
  })
  if (!st.isDirectory()) throw new CairnError('mount-failed', `mount point ${mp} is not a directory`, { path: mp })

  let minor = -1
  const onError = options.onError ?? ((r: FuseHandlerError) => {
    process.emitWarning(`FUSE ${r.op} ${JSON.stringify(r.path.toString('latin1'))} failed: ${r.error instanceof Error ? r.error.stack : String(r.error)}`, 'CairnFuseWarning')
  })
  // Our unmount step for index.js: no shell, and a mount that is already gone counts as unmounted
  // (fuse-native then still releases its handle, so the process can exit).
  nativeOptions.unmount = (mnt: string, cb: (err: Error | null) => void) => {
    void (async () => {
      const ours = async () => (await findMount(mnt))?.minor === minor
      if (!(await ours())) return null
      const res = await run('fusermount', ['-uz', mnt], 10_000)
      if (!(await ours())) return null
      return new Error(`fusermount -uz ${mnt} failed: ${res.stderr.trim() || res.error?.message}`)
    })().then(cb, cb)
  }
  const fuse = new Fuse(mp, makeOps(handlers, onError, options.readOnly ?? true), nativeOptions)
  let started = false
  try {
    await withTimeout(new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve()))),
      options.mountTimeout ?? 10_000, 'the kernel did not start the mount')
    started = true
    const info = await poll(() => findMount(mp), 2_000)
    if (!info) throw new Error(`${mp} is not in /proc/self/mountinfo after mounting`)
    minor = info.minor
  } catch (err) {
    await forceUnmount(mp).catch(() => undefined)
    // release fuse-native's handle (our unmount step sees the mount gone), or this process could never exit
    if (started) await new Promise<void>((resolve) => fuse.unmount(() => resolve()))
    throw new CairnError('mount-failed', `could not mount FUSE at ${mp}: ${(err as Error).message}`, {
      hint: 'fusermount prints the reason on stderr; the mount point must be an empty directory you may mount on',
      path: mp,
      cause: err,
    })
  }

  let unmounting: Promise<void> | undefined
  return {
    mountpoint: mp,
    minor,
    unmount() {
      unmounting ??= (async () => {
        try {
          await new Promise<void>((resolve, reject) => fuse.unmount((err) => (err ? reject(err) : resolve())))
        } catch (err) {
          unmounting = undefined
          throw new CairnError('mount-failed', `could not unmount ${mp}: ${(err as Error).message}`, {
            hint: `a process may still use it; force it with: fusermount -uz ${mp}`, path: mp, cause: err, retryable: true,
          })
        }
        await poll(async () => (await findMount(mp))?.minor !== minor || undefined, 5_000)
      })()
      return unmounting
    },
  }
}

function toNativeOptions(o: FuseMountOptions): Record<string, unknown> {
  // fuse-native drops falsy values (uid 0, attr_timeout 0) and writes numbers in decimal (umask is octal):
  // hand it strings. Option values are comma-separated; libfuse unescapes "\," and "\\".
  const escape = (s: string, what: string) => {
    if (s.length > 255 || /[\0\n]/.test(s)) throw new CairnError('bad-argument', `${what} is too long or has a NUL/newline`)
    return s.replace(/[\\,]/g, (c) => '\\' + c)
  }
  const uint = (n: number | undefined, what: string) => {
    if (n === undefined) return undefined
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new CairnError('bad-argument', `${what} must be an unsigned integer`)
    return n
  }
  const seconds = (n: number | undefined, what: string) => {
    if (n === undefined) return undefined
    if (!Number.isFinite(n) || n < 0) throw new CairnError('bad-argument', `${what} must be a number of seconds >= 0`)
    return String(n)
  }
  const timeout = o.timeout
  if (timeout !== undefined && timeout !== false && (!Number.isInteger(timeout) || timeout <= 0)) {
    throw new CairnError('bad-argument', 'timeout must be a positive number of milliseconds or false')
  }
  return {
    readOnly: o.readOnly ?? true,
    useIno: o.useIno ?? true,
    allowOther: o.allowOther ?? false,
    defaultPermissions: o.defaultPermissions ?? false,
    kernelCache: o.kernelCache ?? false,
    uid: uint(o.uid, 'uid')?.toString(),
    gid: uint(o.gid, 'gid')?.toString(),
    umask: o.umask === undefined ? undefined : (uint(o.umask, 'umask')! & 0o777).toString(8),
    fsname: o.fsname === undefined ? undefined : escape(o.fsname, 'fsname'),
    subtype: o.subtype === undefined ? undefined : escape(o.subtype, 'subtype'),
    attrTimeout: seconds(o.attrTimeout, 'attrTimeout'),
    entryTimeout: seconds(o.entryTimeout, 'entryTimeout'),
    timeout: timeout ?? 15_000,
  }
}

// ---- serving requests ------------------------------------------------------------------------------

function makeOps(h: FuseHandlers, onError: (r: FuseHandlerError) => void, readOnlyMount: boolean): Record<string, NativeOp> {
  /** Run `work` for one request and answer exactly once, whatever it does. */
  const serve = (op: string, rawPath: string, cb: NativeCb, work: (p: Buffer) => Promise<unknown[]>) => {
    const p = Buffer.from(rawPath, 'latin1')
    let answered = false
    const answer = (args: unknown[]) => {
      if (answered) return
      answered = true
      try {
        cb(...(args as [number, ...unknown[]]))
      } catch (error) { // fuse-native rejected what we passed: a bug here, still answer
        onError({ op, path: p, error })
        cb(EIO)
      }
    }
    Promise.resolve().then(() => work(p)).then(answer, (error: unknown) => {
      const errno = errnoOf(error)
      if (errno === undefined) onError({ op, path: p, error })
      answer([errno ?? EIO])
    })
  }
  /** A returned number is an errno; anything else goes through `ok`. */
  const result = <T>(op: string, r: FuseResult<T>, ok: (v: T) => unknown[]): unknown[] => {
    if (typeof r !== 'number') return ok(r)
    if (Number.isInteger(r) && r < 0) return [r]
    if (r === 0 && op === 'release') return [0]
    throw new TypeError(`${op} returned ${r}: a negative errno was expected`)
  }
  const readOnly = (...args: unknown[]) => (args[args.length - 1] as NativeCb)(EROFS)

  const ops: Record<string, NativeOp> = {
    getattr: (path: string, cb: NativeCb) => serve('getattr', path, cb, async (p) =>
      result('getattr', await h.getattr(p), (a) => [0, nativeStat(a)])),
    readdir: (path: string, cb: NativeCb) => serve('readdir', path, cb, async (p) =>
      result('readdir', await h.readdir(p), (l) => {
        const names = l.names.map((n) => nameString(n, 'readdir name'))
        if (l.attrs && l.attrs.length !== names.length) throw new TypeError(`readdir: ${names.length} names but ${l.attrs.length} attrs`)
        return l.attrs ? [0, names, l.attrs.map(direntStat)] : [0, names]
      })),
    read: (path: string, fh: number, buf: Buffer, len: number, pos: number, cb: NativeCb) => serve('read', path, cb, async (p) =>
      result('read', await h.read(p, fh, len, pos), (data) => {
        // buf is FUSE's own memory; after a timeout it is detached (length 0) and copying is a no-op
        const n = Math.min(len, data.length, buf.length)
        buf.set(data.subarray(0, n))
        return [n]
      })),
    write: readOnly, create: readOnly, truncate: readOnly, ftruncate: readOnly, utimens: readOnly, chown: readOnly,
    chmod: readOnly, mknod: readOnly, setxattr: readOnly, removexattr: readOnly, unlink: readOnly, rename: readOnly,
    link: readOnly, symlink: readOnly, mkdir: readOnly, rmdir: readOnly,
  }
  if (h.open || !readOnlyMount) {
    const open = h.open?.bind(h)
    ops.open = (path: string, flags: number, cb: NativeCb) => serve('open', path, cb, async (p) => {
      if ((flags & O_ACCMODE) !== fsConstants.O_RDONLY || (flags & fsConstants.O_TRUNC) !== 0) return [EROFS]
      if (!open) return [0, 0]
      const fh = await open(p, flags) // a file handle, or a negative errno
      if (!Number.isInteger(fh) || fh > 0x7fffffff) throw new TypeError(`open returned ${fh}: a file handle or a negative errno was expected`)
      return fh < 0 ? [fh] : [0, fh]
    })
  }
  if (h.release) {
    const release = h.release.bind(h)
    ops.release = (path: string, fh: number, cb: NativeCb) => serve('release', path, cb, async (p) =>
      result('release', await release(p, fh), () => [0]))
  }
  if (h.readlink) {
    const readlink = h.readlink.bind(h)
    ops.readlink = (path: string, cb: NativeCb) => serve('readlink', path, cb, async (p) =>
      result('readlink', await readlink(p), (target) => {
        if (!Buffer.isBuffer(target) || target.length === 0 || target.length >= PATH_MAX || target.includes(0)) {
          throw new TypeError('readlink: a target is 1 to 4095 bytes without NUL')
        }
        return [0, target.toString('latin1')]
      }))
  }
  if (h.getxattr) {
    const getxattr = h.getxattr.bind(h)
    ops.getxattr = (path: string, name: string, _position: number, cb: NativeCb) => serve('getxattr', path, cb, async (p) =>
      result('getxattr', await getxattr(p, Buffer.from(name, 'latin1')), (value) => {
        if (!Buffer.isBuffer(value) || value.length > XATTR_SIZE_MAX) throw new TypeError('getxattr: a value is a Buffer of at most 64 KiB')
        return [0, value]
      }))
  }
  if (h.listxattr) {
    const listxattr = h.listxattr.bind(h)
    ops.listxattr = (path: string, cb: NativeCb) => serve('listxattr', path, cb, async (p) =>
      result('listxattr', await listxattr(p), (names) => [0, names.map((n) => xattrNameString(n))]))
  }
  if (h.statfs) {
    const statfs = h.statfs.bind(h)
    ops.statfs = (path: string, cb: NativeCb) => serve('statfs', path, cb, async (p) =>
      result('statfs', await statfs(p), (s) => {
        // fuse-native carries statfs as 32-bit fields: clamp rather than wrap
        const clamped = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, Math.min(int(v, `statfs.${k}`), U32)]))
        return [0, clamped]
      }))
  }
  return ops
}

/** The error a handler threw as a negative errno, or undefined if it is not one. */
function errnoOf(err: unknown): number | undefined {
  if (typeof err === 'number') return Number.isInteger(err) && err !== 0 ? -Math.abs(err) : undefined
  if (err instanceof FuseErrno) return err.errno
  if (err !== null && typeof err === 'object') {
    const { code, errno } = err as { code?: unknown; errno?: unknown }
    if (typeof code === 'string' && Object.hasOwn(E, code)) return -E[code as keyof typeof E]
    if (typeof errno === 'number' && Number.isInteger(errno) && errno !== 0 && typeof code === 'string') return -Math.abs(errno)
  }
  return undefined
}

const U32 = 0xffffffff
function int(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new TypeError(`attr.${what} = ${String(v)} is not an integer in [0, ${max}]`)
  return v
}
function ns(v: unknown, what: string): bigint {
  if (typeof v !== 'bigint') throw new TypeError(`attr.${what} must be a bigint (nanoseconds)`)
  return v
}

/** Validate an attr and shape it the way the patched index.js encodes it (see getStatArray there). */
function nativeStat(a: FuseAttr): Record<string, number | bigint> {
  if (typeof a.ino !== 'bigint' || a.ino < 0n || a.ino >= 1n << 64n) throw new TypeError(`attr.ino = ${String(a.ino)} is not a 64-bit bigint`)
  const size = int(a.size, 'size')
  return {
    ino: a.ino,
    mode: int(a.mode, 'mode', U32),
    nlink: int(a.nlink, 'nlink', U32),
    uid: int(a.uid, 'uid', U32),
    gid: int(a.gid, 'gid', U32),
    rdev: int(a.rdev ?? 0, 'rdev', U32),
    size,
    blocks: int(a.blocks ?? Math.ceil(size / 512), 'blocks'),
    blksize: int(a.blksize ?? 0, 'blksize', U32),
    atimeNs: ns(a.atimeNs, 'atimeNs'),
    mtimeNs: ns(a.mtimeNs, 'mtimeNs'),
    ctimeNs: ns(a.ctimeNs, 'ctimeNs'),
  }
}

/** What of a listing entry's attributes the kernel uses, shaped like a stat for the patched index.js. */
function direntStat(a: Pick<FuseAttr, 'ino' | 'mode'>): Record<string, number | bigint> {
  if (typeof a.ino !== 'bigint' || a.ino < 0n || a.ino >= 1n << 64n) throw new TypeError(`attr.ino = ${String(a.ino)} is not a 64-bit bigint`)
  return { ino: a.ino, mode: int(a.mode, 'mode', U32), atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n }
}

function nameString(name: Buffer, what: string): string {
  if (!Buffer.isBuffer(name) || name.length === 0 || name.length > NAME_MAX || name.includes(0) || name.includes(0x2f)) {
    throw new TypeError(`${what} must be 1 to 255 bytes without NUL or '/'`)
  }
  return name.toString('latin1')
}

function xattrNameString(name: Buffer): string {
  if (!Buffer.isBuffer(name) || name.length === 0 || name.length > NAME_MAX || name.includes(0)) {
    throw new TypeError('an xattr name must be 1 to 255 bytes without NUL')
  }
  return name.toString('latin1')
}
