/**
 * FUSE requests answered from a VFS tree (lib/vfs): lookups go to the
 * parent directory's node, listings and reads to the node itself, reads
 * through FileReads. Nothing here knows about archives or repositories.
 * Writes, opens and releases never get here: the binding answers them
 * (EROFS; opens for reading with the page cache kept). Lookups hand over
 * each node's xattrs, so that the binding answers getxattr and listxattr.
 *
 * Each node the kernel knows is wrapped in a MountNode that remembers its
 * parent and name, so that a log line can say which path failed.
 *
 * Errors: a missing name is ENOENT; anything else that fails (a tree or
 * chunk that cannot be loaded) is logged with the path and answered EIO for
 * that request only.
 */
import { LRUCache } from 'lru-cache'
import { constants } from 'node:fs'
import { ownedCopy, type DirNode, type VfsNode } from '../lib/index.js'
import { EINVAL, EIO, EISDIR, ENODATA, ENOENT, ENOTDIR, type FuseAttr, type FuseHandlers, type FuseStatfs } from './fuse-binding.js'
import { FileReads, readAroundDamage } from './file-reads.js'

export interface AdapterOptions {
  /** The directory shown at the mount point. */
  root: DirNode
  /** Damaged chunks read as zeros (logged) instead of failing the read. */
  allowDamagedFiles: boolean
  /** Bytes loaded ahead of a sequential reader (0: none). */
  readAheadBytes: number
  log: (message: string) => void
}

/** A VFS node as the mount knows it: with the parent and name it was found under. */
export class MountNode {
  constructor(readonly vfs: VfsNode, readonly parent: MountNode | null, readonly name: Buffer) {}

  /** '/a/b' as bytes; '/' for the root. */
  path(): Buffer {
    const parts: Buffer[] = []
    for (let n: MountNode | null = this; n?.parent; n = n.parent) parts.unshift(SLASH, n.name)
    return parts.length ? Buffer.concat(parts) : SLASH
  }
}

const SLASH = Buffer.from('/')
const NAME_MAX = 255
/** st_blksize: cp and friends size their reads by it; FUSE reads are at most 128 KiB. */
const BLKSIZE = 128 * 1024
const ST_RDONLY = 1

/**
 * How long the kernel may keep what never changes (an archive's content): its names and attributes are then
 * not asked for again when a file manager comes back to a directory or `ls -l`, `du` or `find` run twice.
 * The rest (the list of archives, the versions view) goes with the mount's timeouts (1 s), so that archives
 * created or deleted show.
 */
const IMMUTABLE_VALID_SECONDS = 3600

function fuseAttr(vfs: VfsNode): FuseAttr {
  const a = vfs.attr
  return {
    ino: a.ino, mode: a.mode, nlink: a.nlink, uid: a.uid, gid: a.gid, rdev: a.rdev, size: a.size, blocks: a.blocks, blksize: BLKSIZE,
    atimeNs: a.atimeNs, mtimeNs: a.mtimeNs, ctimeNs: a.ctimeNs, validSeconds: vfs.immutable ? IMMUTABLE_VALID_SECONDS : undefined,
  }
}

/** How long the kernel may keep the names of `dir`'s entries. */
const entryValidity = (dir: VfsNode): number | undefined => (dir.immutable ? IMMUTABLE_VALID_SECONDS : undefined)

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

const showable = (name: Buffer): boolean => name.length > 0 && name.length <= NAME_MAX && !name.includes(0x2f) && !name.includes(0)

export function makeHandlers(options: AdapterOptions): FuseHandlers<MountNode> {
  const log = quieter(options.log)
  const fileReads = new FileReads(options.readAheadBytes)

  /** Runs one request; an unexpected failure is logged and answered EIO. */
  const guard = async <T>(op: string, node: MountNode, work: () => Promise<T>, name?: Buffer): Promise<T | number> => {
    try {
      return await work()
    } catch (err) {
      if (typeof err === 'number') return err
      const p = name ? Buffer.concat([node.path(), node.parent ? SLASH : Buffer.alloc(0), name]) : node.path()
      log(`${op} ${show(p)} failed: ${(err as Error)?.message ?? String(err)}`)
      return EIO
    }
  }

  return {
    root: new MountNode(options.root, null, SLASH),

    lookup: (parent, name) => guard('lookup', parent, async () => {
      const dir = parent.vfs
      if (dir.kind !== 'dir') return ENOTDIR
      const vfs = await dir.lookup(name)
      if (!vfs) return ENOENT
      return { node: new MountNode(vfs, parent, name), attr: fuseAttr(vfs), xattrs: vfs.xattrs, entryValidSeconds: entryValidity(dir) }
    }, name),

    entryAt: async (dir, position) => {
      const r = await guard('readdir', dir, async () => {
        const e = dir.vfs.kind === 'dir' && dir.vfs.entryAt ? await dir.vfs.entryAt(position) : null
        return e ? new MountNode(e.node, dir, ownedCopy(e.name)) : null
      })
      if (typeof r === 'number') throw r // logged by guard; the request is answered EIO
      return r
    },

    getattr: async (node) => fuseAttr(node.vfs),

    readdir: (node, listing) => guard('readdir', node, async () => {
      const dir = node.vfs
      if (dir.kind !== 'dir') return ENOTDIR
      let skipped = 0
      let position = 0
      // Entries go with their attributes, so that entering or stat'ing one needs no lookup (FuseListing):
      // subdirectories with their nodes, the rest of a directory that never changes by position when the
      // dispatcher takes them (while programs stat files; nothing is kept for them, entryAt finds them
      // again). A node keeps its name as long as the kernel knows it: a copy, not a view of the listing's tree.
      const byPosition = dir.immutable === true && dir.entryAt !== undefined
      const add = (name: Buffer, ino: bigint, mode: number, child: () => VfsNode): void => {
        const at = position++
        const isDir = (mode & constants.S_IFMT) === constants.S_IFDIR
        if (!showable(name)) skipped++
        else if (isDir ? !listing.takesEntries : !byPosition || !listing.takesPositional) listing.add(name, ino, mode)
        else {
          const vfs = child()
          if (isDir) listing.addEntry(name, new MountNode(vfs, node, ownedCopy(name)), fuseAttr(vfs), vfs.xattrs, entryValidity(dir))
          else listing.addPositional(name, at, fuseAttr(vfs), vfs.xattrs, entryValidity(dir))
        }
      }
      if (dir.forEachEntry) await dir.forEachEntry(add)
      else for (const e of await dir.list()) add(e.name, e.ino, e.mode, () => e.node)
      if (skipped > 0) log(`readdir ${show(node.path())}: skipped ${skipped} entries whose names cannot be shown`)
      return undefined
    }),

    read: (node, length, position, siblings) => guard('read', node, async () => {
      const file = node.vfs
      if (file.kind !== 'file') return file.kind === 'dir' ? EISDIR : EINVAL
      try {
        return await fileReads.read(file, position, length, siblings)
      } catch (err) {
        if (!options.allowDamagedFiles) throw err
        const { data, zeroed } = await readAroundDamage(file, position, length)
        log(`read ${show(node.path())}: ${zeroed} damaged bytes at ${position}..${position + length} read as zeros (allow_damaged_files)`)
        return data
      }
    }),

    readlink: async (node) => (node.vfs.kind === 'symlink' ? node.vfs.target : EINVAL),

    getxattr: async (node, name) => node.vfs.xattrs.find(([n]) => n.equals(name))?.[1] ?? ENODATA,

    listxattr: async (node) => node.vfs.xattrs.map(([n]) => n),

    statfs: async (): Promise<FuseStatfs> => ({
      bsize: BLKSIZE, frsize: 512, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: ST_RDONLY, namemax: NAME_MAX,
    }),
  }
}
