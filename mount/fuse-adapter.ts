/**
 * FUSE requests answered from a VFS tree (lib/vfs): paths resolve through
 * a PathResolver, listings feed it, reads go through FileReads. Nothing here
 * knows about archives or repositories. Writes never get here: the binding
 * answers them EROFS. Open and release are left to libfuse (see
 * file-reads.ts): the mount is read-only, so the kernel refuses opens for
 * writing before they reach it.
 *
 * Errors: a missing name is ENOENT; anything else that fails (a tree or
 * chunk that cannot be loaded) is logged with the path and answered EIO for
 * that request only.
 */
import { LRUCache } from 'lru-cache'
import type { NodeAttr, PathResolver, VfsNode } from '../lib/index.js'
import { EINVAL, EIO, EISDIR, ENODATA, ENOENT, ENOTDIR, type FuseAttr, type FuseHandlers, type FuseStatfs } from './fuse-binding.js'
import { FileReads, readAroundDamage } from './file-reads.js'

export interface AdapterOptions {
  resolver: PathResolver
  /** Damaged chunks read as zeros (logged) instead of failing the read. */
  allowDamagedFiles: boolean
  /** Bytes loaded ahead of a sequential reader (0: none). */
  readAheadBytes: number
  log: (message: string) => void
}

const DOT = Buffer.from('.')
const DOTDOT = Buffer.from('..')
const NAME_MAX = 255
/** st_blksize: cp and friends size their reads by it; FUSE reads are at most 128 KiB. */
const BLKSIZE = 128 * 1024
const ST_RDONLY = 1

function fuseAttr(a: NodeAttr): FuseAttr {
  return { ino: a.ino, mode: a.mode, nlink: a.nlink, uid: a.uid, gid: a.gid, rdev: a.rdev, size: a.size, blocks: a.blocks, blksize: BLKSIZE, atimeNs: a.atimeNs, mtimeNs: a.mtimeNs, ctimeNs: a.ctimeNs }
}

function parentOf(p: Buffer): Buffer {
  const slash = p.lastIndexOf(0x2f)
  return slash <= 0 ? Buffer.from('/') : p.subarray(0, slash)
}

const show = (p: Buffer): string => JSON.stringify(p.toString('utf8'))

/** Drops a message already logged in the last few seconds (the kernel retries and reads ahead). */
function quieter(log: (message: string) => void): (message: string) => void {
  const recent = new LRUCache<string, true>({ max: 1000, ttl: 10_000 })
  return (message) => {
    if (recent.has(message)) return
    recent.set(message, true)
    log(message)
  }
}

export function makeHandlers(options: AdapterOptions): FuseHandlers {
  const { resolver } = options
  const log = quieter(options.log)
  const fileReads = new FileReads(options.readAheadBytes)

  const resolve = async (p: Buffer): Promise<VfsNode> => {
    const node = await resolver.resolve(p)
    if (!node) throw ENOENT
    return node
  }

  /** Runs one request; an unexpected failure is logged and answered EIO. */
  const guard = async <T>(op: string, p: Buffer, work: () => Promise<T>): Promise<T | number> => {
    try {
      return await work()
    } catch (err) {
      if (typeof err === 'number') return err
      log(`${op} ${show(p)} failed: ${(err as Error)?.message ?? String(err)}`)
      return EIO
    }
  }

  return {
    getattr: (p) => guard('getattr', p, async () => fuseAttr((await resolve(p)).attr)),

    readdir: (p) => guard('readdir', p, async () => {
      const dir = await resolve(p)
      if (dir.kind !== 'dir') return ENOTDIR
      const entries = await dir.list()
      resolver.remember(p, entries)
      const parent = p.length <= 1 ? dir : (await resolver.resolve(parentOf(p))) ?? dir
      const names: Buffer[] = [DOT, DOTDOT]
      const attrs: { ino: bigint; mode: number }[] = [dir.attr, parent.attr]
      for (const e of entries) {
        const name = e.name
        if (name.length === 0 || name.length > NAME_MAX || name.includes(0x2f) || name.includes(0)) {
          log(`readdir ${show(p)}: skipped an entry whose name cannot be shown (${name.length} bytes)`)
          continue
        }
        names.push(name)
        attrs.push(e) // its ino and mode: all a listing shows
      }
      return { names, attrs }
    }),

    read: (p, _fh, length, position) => guard('read', p, async () => {
      const node = await resolve(p)
      if (node.kind !== 'file') return node.kind === 'dir' ? EISDIR : EINVAL
      try {
        return await fileReads.read(node, p.toString('latin1'), position, length)
      } catch (err) {
        if (!options.allowDamagedFiles) throw err
        const { data, zeroed } = await readAroundDamage(node, position, length)
        log(`read ${show(p)}: ${zeroed} damaged bytes at ${position}..${position + length} read as zeros (allow_damaged_files)`)
        return data
      }
    }),

    readlink: (p) => guard('readlink', p, async () => {
      const node = await resolve(p)
      return node.kind === 'symlink' ? node.target : EINVAL
    }),

    getxattr: (p, name) => guard('getxattr', p, async () => {
      const found = (await resolve(p)).xattrs.find(([n]) => n.equals(name))
      return found ? found[1] : ENODATA
    }),

    listxattr: (p) => guard('listxattr', p, async () => (await resolve(p)).xattrs.map(([n]) => n)),

    statfs: async (): Promise<FuseStatfs> => ({
      bsize: BLKSIZE, frsize: 512, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: ST_RDONLY, namemax: NAME_MAX,
    }),
  }
}
