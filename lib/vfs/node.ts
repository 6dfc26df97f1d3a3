/**
 * The filesystem view of a repository, defined once in the library and
 * independent of FUSE: directories that list and look up names (bytes),
 * files that read byte ranges, symlinks with byte targets, and attributes
 * with nanosecond times and stable inode numbers. The FUSE adapter (mount/)
 * and any future WebDAV or web view are thin users of it.
 */
export interface NodeAttr {
  /** Stable while mounted; hardlinked files share it. */
  ino: bigint
  /** Full st_mode, type bits included. */
  mode: number
  nlink: number
  uid: number
  gid: number
  rdev: number
  size: number
  /** 512-byte blocks, as st_blocks. */
  blocks: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
}

interface NodeBase {
  readonly attr: NodeAttr
  /** Extended attributes, names and values as bytes. */
  readonly xattrs: readonly [Buffer, Buffer][]
  /**
   * Never changes while shown: its attributes, and for a directory its entries (an archive's content, as
   * opposed to the list of archives). A viewer may keep what it learnt of it for as long as it likes.
   */
  readonly immutable?: boolean
}

/**
 * A name in a directory listing. `ino` and `mode` are what a listing shows of
 * it (d_ino, d_type); `node` may be made only when asked for, since a walk
 * lists far more names than it enters.
 */
export interface DirEntry {
  readonly name: Buffer
  readonly ino: bigint
  readonly mode: number
  readonly node: VfsNode
}

export function dirEntry(name: Buffer, node: VfsNode): DirEntry {
  return { name, ino: node.attr.ino, mode: node.attr.mode, node }
}

export interface DirNode extends NodeBase {
  readonly kind: 'dir'
  /** Entries in name-byte order. */
  list(): Promise<DirEntry[]>
  /**
   * The same entries, in the same order, handed to `visit` without a DirEntry each, for callers that keep
   * only names and types (a FUSE listing): a directory of many pages is then never all in memory at once.
   * `node` makes the entry's node, for callers that hand entries over with their attributes.
   */
  forEachEntry?(visit: (name: Buffer, ino: bigint, mode: number, node: () => VfsNode) => void): Promise<void>
  /**
   * The entry at `index` in the listing's order (the index-th that list() or forEachEntry() gives), or null
   * past the end; only for a directory whose entries never change (`immutable`), so that a caller may name
   * an entry by its position for as long as it likes instead of keeping the entry.
   */
  entryAt?(index: number): Promise<DirEntry | null>
  lookup(name: Buffer): Promise<VfsNode | null>
}

export interface FileNode extends NodeBase {
  readonly kind: 'file'
  /**
   * Up to `length` bytes at `position`. A reader that can serve other files of the same directory by
   * itself passes `siblings`, to be handed their content when it is loaded ahead.
   */
  read(position: number, length: number, siblings?: SiblingSink): Promise<Buffer>
}

/**
 * Takes the whole content of other files of a directory, each named by its index in the listing's order
 * (as entryAt), when a directory's small files are loaded ahead of a program reading them one after
 * another (cp -a, tar, rsync). The FUSE mount answers the reads of what it takes from C, without a trip
 * through JavaScript per file. Returns whether it took it.
 */
export interface SiblingSink {
  offer(index: number, content: Buffer): boolean
}

export interface SymlinkNode extends NodeBase {
  readonly kind: 'symlink'
  readonly target: Buffer
}

/** Fifos and devices: attributes only. */
export interface SpecialNode extends NodeBase {
  readonly kind: 'special'
}

export type VfsNode = DirNode | FileNode | SymlinkNode | SpecialNode

export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000

/**
 * A copy of `bytes` with a backing store of its own, for a node that outlives
 * the tree it came from (the mount keeps a node for as long as the kernel
 * knows its inode). Decoded items hold Buffers cut from Node's shared 8 KiB
 * pool, so one such Buffer kept pins a whole pool slab: after a walk of the
 * medium archive, its 5,000 directory nodes pinned 9.5 MiB of slabs through
 * their items (measured in a heap snapshot; the daemon's peak fell 7 MiB).
 * Names a listing hands out are such views too.
 */
export function ownedCopy(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length)
  bytes.copy(copy)
  return copy
}
