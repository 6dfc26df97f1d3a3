/**
 * cairn's FUSE binding: mount a file system served by async, byte-exact handlers, through libfuse 2's
 * low-level API driven from Node's event loop (mount/native/lowlevel.c; native-notes/fuse.md says why).
 * Handlers speak nodes and bytes: names, link targets and xattr names are Buffers; times are BigInt
 * nanoseconds since the epoch (negative before 1970); inode numbers are BigInt (see fuse-dispatch.ts).
 *
 * - The native module is loaded only when something mounts, so cairn works where FUSE is absent.
 * - The file system is read-only: lowlevel.c answers every modifying request EROFS, and opens, releases
 *   and directory reads without a trip to JavaScript.
 * - A handler answers an error by returning a negative errno (ENOENT, ...) or throwing one (a number,
 *   `FuseErrno`, or a Node error with an errno `code`). Anything else it throws is answered EIO and
 *   reported to `onError`; the mount lives on.
 * - Handlers run on the main thread, several at once. Never block the event loop in them (every request
 *   waits for it), and never touch the mount synchronously from the process that serves it.
 */
import { constants as fsConstants } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { createRequire } from 'node:module'
import { constants as osConstants, release } from 'node:os'
import { fileURLToPath } from 'node:url'
import { CairnError } from '../lib/index.js'
import { makeDispatch, type FuseHandlerError, type FuseHandlers, type NativeReplies } from './fuse-dispatch.js'
import { exists, findMount, forceUnmount, poll, resolveMountpoint, run } from './mount-table.js'

export { abortFuseConnection, findMount, forceUnmount, readMountInfo, type ForceUnmountResult, type MountInfo } from './mount-table.js'
export { FuseErrno, FuseListing, type FuseAttr, type FuseEntry, type FuseHandlerError, type FuseHandlers, type FuseResult, type FuseStatfs } from './fuse-dispatch.js'

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

export interface FuseMountOptions {
  /** Mount with `ro` (default true). Modifying requests are EROFS either way. */
  readOnly?: boolean
  allowOther?: boolean
  defaultPermissions?: boolean
  /** Override the owner of every file. */
  uid?: number
  gid?: number
  /** Replaces the permission bits of every file with 0o777 & ~umask, e.g. 0o022. */
  umask?: number
  /** Shown as the source in /proc/mounts. */
  fsname?: string
  /** The type shows as fuse.<subtype>. */
  subtype?: string
  /** Seconds the kernel caches attributes / name lookups (default 1). */
  attrTimeout?: number
  entryTimeout?: number
  /** Keep file contents in the page cache between opens. */
  kernelCache?: boolean
  /** When entries named by position go with listings (see DispatchOptions in fuse-dispatch.ts; default 10 s). */
  statWindowSeconds?: number
  /** Unexpected handler failures (answered EIO). Default: process.emitWarning. */
  onError?: (report: FuseHandlerError) => void
}

export interface FuseMount {
  readonly mountpoint: string
  /** The connection number: /sys/fs/fuse/connections/<minor>. */
  readonly minor: number
  /** Resolves when the kernel has dropped the connection (unmounted, also from outside). */
  readonly gone: Promise<void>
  /**
   * Makes the kernel forget what it caches of inode `ino` (1: the root): attributes, file pages, a
   * directory's listing. Directories are listed once and then served from the kernel's readdir cache
   * (mount/native/lowlevel.c), so a directory whose content changes must be invalidated.
   */
  invalidate(ino: bigint): void
  /** Detaches the mount (lazily) and closes the connection; resolves when the kernel mount is gone. Idempotent. */
  unmount(): Promise<void>
}

interface NativeFuse extends NativeReplies {
  mount(mountpoint: string, options: string, attrTimeout: number, entryTimeout: number, keepCache: number,
    uid: number, gid: number, umask: number, dispatch: (...args: never[]) => void): NativeSession
  close(session: NativeSession): void
  invalidate(session: NativeSession, ino: bigint): number
  stage(session: NativeSession, nodeid: bigint, content: Uint8Array): boolean
}
declare const sessionBrand: unique symbol
type NativeSession = { readonly [sessionBrand]: true }

const FUSE_HINT = 'install it with: apt-get install -y fuse libfuse2'
/** mount/fuse-binding.ts (tests run the sources) and dist/mount/fuse-binding.js (the build). */
const ADDON_CANDIDATES = ['./native/build/Release/cairn_fuse.node', '../../mount/native/build/Release/cairn_fuse.node']

let loading: Promise<NativeFuse> | undefined

/** Resolves if mounting can work here; otherwise throws CairnError('fuse-missing') saying what is missing and how to fix it. */
export async function checkFuseAvailable(): Promise<void> {
  await loadNative()
}

/** Load the native module once (lazily: cairn works without it until something mounts). */
function loadNative(): Promise<NativeFuse> {
  loading ??= load()
  loading.catch(() => { loading = undefined }) // retry after the user fixed it
  return loading
}

/**
 * Why this kernel cannot serve cairn's mount, if it cannot: the binding answers the first OPENDIR with
 * ENOSYS (lowlevel.c), which Linux takes as "no opendir needed" only since 5.1; an older kernel would fail
 * every listing. `release` is uname -r (os.release()).
 */
export function kernelProblem(release: string): string | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release)
  if (!m) return undefined // an unknown format: let the mount try
  const [major, minor] = [Number(m[1]), Number(m[2])]
  return major > 5 || (major === 5 && minor >= 1) ? undefined : `cairn mounts need Linux 5.1 or later, this is ${release}`
}

async function load(): Promise<NativeFuse> {
  if (process.platform !== 'linux') throw new CairnError('fuse-missing', `FUSE is not available: cairn mounts need Linux, this is ${process.platform}`)
  const tooOld = kernelProblem(release())
  if (tooOld) throw new CairnError('fuse-missing', `FUSE is not usable: ${tooOld}`, { hint: 'upgrade the kernel, or restore with: cairn extract' })
  if (!(await exists('/dev/fuse'))) {
    throw new CairnError('fuse-missing', 'FUSE is not available: /dev/fuse does not exist', {
      hint: 'load the module with: modprobe fuse (in a container: run it with --device /dev/fuse)',
    })
  }
  if (!(await onPath('fusermount'))) {
    throw new CairnError('fuse-missing', 'FUSE is not available: fusermount is not installed', { hint: FUSE_HINT })
  }
  const files = ADDON_CANDIDATES.map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  let file: string | undefined
  for (const f of files) if (await exists(f)) { file = f; break }
  if (!file) {
    let script = fileURLToPath(new URL('../lib/native/build-native.mjs', import.meta.url))
    if (!(await exists(script))) script = fileURLToPath(new URL('../../lib/native/build-native.mjs', import.meta.url))
    throw new CairnError('fuse-missing', 'FUSE is not available: cairn\'s FUSE binding is not built (no cairn_fuse.node in mount/native/build/Release)', {
      hint: `build it with: node ${script} --addon fuse (needs g++, make, python3)`,
    })
  }
  try {
    return createRequire(import.meta.url)(file) as NativeFuse
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    if (/libfuse\.so/.test(message)) {
      throw new CairnError('fuse-missing', 'FUSE is not available: libfuse.so.2 is not installed', { hint: FUSE_HINT, cause: err })
    }
    throw new CairnError('fuse-missing', `FUSE is not available: ${file} does not load: ${message.split('\n')[0]}`, { cause: err })
  }
}

/** Mount `handlers` at `mountpoint`; resolves once the kernel has the mount. */
/** Whether an executable `name` is in a directory of PATH (looked up, not run: a spawn costs the first listing 5–10 ms). */
async function onPath(name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && (await exists(path.join(dir, name), fsConstants.X_OK))) return true
  }
  return false
}

export async function mount<N>(mountpoint: string, handlers: FuseHandlers<N>, options: FuseMountOptions = {}): Promise<FuseMount> {
  const mp = await resolveMountpoint(mountpoint)
  if (Buffer.byteLength(mp) >= 4000 || mp.includes('\0')) throw new CairnError('bad-argument', `mount point path too long: ${mp}`, { path: mp })
  const settings = toNativeOptions(options)
  const native = await loadNative()
  const existing = await findMount(mp)
  if (existing) {
    throw new CairnError('mount-failed', `${mp} is already a mount point (${existing.fstype})`, { hint: `unmount it first: fusermount -uz ${mp}`, path: mp })
  }
  const st = await stat(mp).catch((err: unknown) => {
    throw new CairnError('mount-failed', `mount point ${mp} cannot be used: ${(err as Error).message}`, { path: mp, cause: err })
  })
  if (!st.isDirectory()) throw new CairnError('mount-failed', `mount point ${mp} is not a directory`, { path: mp })

  const onError = options.onError ?? ((r: FuseHandlerError) => {
    process.emitWarning(`FUSE ${r.op} of inode ${r.ino}${r.name ? ` ${JSON.stringify(r.name.toString('latin1'))}` : ''} failed: ${r.error instanceof Error ? r.error.stack : String(r.error)}`, 'CairnFuseWarning')
  })
  let session: NativeSession | undefined
  let resolveGone!: () => void
  const gone = new Promise<void>((resolve) => (resolveGone = resolve))
  const close = (): void => {
    if (session) native.close(session) // answers what is pending, closes /dev/fuse: the process may exit
    session = undefined
    resolveGone()
  }
  const stage = (nodeid: bigint, content: Uint8Array): boolean => session !== undefined && native.stage(session, nodeid, content)
  const dispatch = makeDispatch(native, handlers, onError, close, { statWindowSeconds: options.statWindowSeconds, stage })
  try {
    session = native.mount(mp, settings.mountOptions, settings.attrTimeout, settings.entryTimeout, settings.keepCache,
      settings.uid, settings.gid, settings.umask, dispatch)
  } catch (err) {
    throw new CairnError('mount-failed', `could not mount FUSE at ${mp}: ${(err as Error).message}`, {
      hint: 'the mount point must be an empty directory you may mount on; /dev/fuse must be usable',
      path: mp,
      cause: err,
    })
  }
  const info = await poll(() => findMount(mp), 2_000)
  if (!info) {
    close()
    await forceUnmount(mp).catch(() => undefined)
    throw new CairnError('mount-failed', `could not mount FUSE at ${mp}: it is not in /proc/self/mountinfo after mounting`, { path: mp })
  }
  const minor = info.minor

  let unmounting: Promise<void> | undefined
  return {
    mountpoint: mp,
    minor,
    gone,
    invalidate(ino) {
      if (session) native.invalidate(session, ino)
    },
    unmount() {
      unmounting ??= (async () => {
        const ours = async () => (await findMount(mp))?.minor === minor
        if (await ours()) {
          // Lazily: a busy mount detaches now; the connection ends when its last user leaves or we close.
          const res = await run('fusermount', ['-uz', mp], 10_000)
          if (await ours()) {
            unmounting = undefined
            throw new CairnError('mount-failed', `could not unmount ${mp}: ${res.stderr.trim() || res.error?.message}`, {
              hint: `a process may still use it; force it with: fusermount -uz ${mp}`, path: mp, retryable: true,
            })
          }
        }
        close()
      })()
      return unmounting
    },
  }
}

interface NativeSettings {
  mountOptions: string
  attrTimeout: number
  entryTimeout: number
  keepCache: number
  uid: number
  gid: number
  umask: number
}

function toNativeOptions(o: FuseMountOptions): NativeSettings {
  // Option values are comma-separated; libfuse unescapes "\\," and "\\\\".
  const escape = (v: string, what: string) => {
    if (v.length > 255 || /[\0\n]/.test(v)) throw new CairnError('bad-argument', `${what} is too long or has a NUL/newline`)
    return v.replace(/[\\,]/g, (c) => '\\' + c)
  }
  const uint = (n: number | undefined, what: string) => {
    if (n === undefined) return -1
    if (!Number.isInteger(n) || n < 0 || n > 0xfffffffe) throw new CairnError('bad-argument', `${what} must be an unsigned integer`)
    return n
  }
  const seconds = (n: number | undefined, what: string) => {
    if (n === undefined) return 1
    if (!Number.isFinite(n) || n < 0) throw new CairnError('bad-argument', `${what} must be a number of seconds >= 0`)
    return n
  }
  const mountOptions = [
    (o.readOnly ?? true) ? 'ro' : '',
    o.allowOther ? 'allow_other' : '',
    o.defaultPermissions ? 'default_permissions' : '',
    o.fsname === undefined ? '' : `fsname=${escape(o.fsname, 'fsname')}`,
    o.subtype === undefined ? '' : `subtype=${escape(o.subtype, 'subtype')}`,
  ].filter(Boolean).join(',')
  return {
    mountOptions,
    attrTimeout: seconds(o.attrTimeout, 'attrTimeout'),
    entryTimeout: seconds(o.entryTimeout, 'entryTimeout'),
    keepCache: o.kernelCache ? 1 : 0,
    uid: uint(o.uid, 'uid'),
    gid: uint(o.gid, 'gid'),
    umask: o.umask === undefined ? -1 : uint(o.umask, 'umask') & 0o777,
  }
}
