/**
 * VFS nodes over one archive: each directory loads its own tree on first
 * lookup or listing; each file reads through the shared chunk cache.
 */
import type { ArchiveReader, DirRef } from '../archive/reader.js'
import type { Item } from '../archive/item.js'
import type { FileContent } from '../archive/file-content.js'
import { ownedCopy, type DirEntry, type DirNode, type FileNode, type NodeAttr, type SiblingSink, type SpecialNode, type SymlinkNode, type VfsNode } from './node.js'
import { extendKey, inodeOf, keyHash, type KeyHash } from './inode.js'
import { SiblingPrefetch } from './sibling-prefetch.js'

export function attrOf(item: Item, ino: bigint): NodeAttr {
  const size = item.kind === 'file' ? item.size : item.kind === 'symlink' ? (item.target?.length ?? 0) : 0
  return {
    ino,
    mode: item.mode,
    nlink: item.kind === 'dir' ? 2 : item.hardlink?.nlink ?? 1,
    uid: item.uid,
    gid: item.gid,
    rdev: item.rdev ?? 0,
    size,
    blocks: Math.ceil(size / 512),
    atimeNs: item.atimeNs,
    mtimeNs: item.mtimeNs,
    ctimeNs: item.ctimeNs,
  }
}

/** The key of an archive's root directory: its children's keys extend it by their names. */
export function archiveRootKey(reader: ArchiveReader): KeyHash {
  return keyHash(reader.ref.id)
}

/**
 * Makes the node for an item whose key (archive and path, see inode.ts) is
 * `key`; a file found in `parent` tells it when it is read (read-ahead of
 * its siblings).
 */
export function nodeForItem(reader: ArchiveReader, item: Item, key: KeyHash, parent: ArchiveDirNode | null = null): VfsNode {
  const attr = attrOf(item, inodeForItem(reader, item, key))
  const xattrs = item.xattrs ?? []
  switch (item.kind) {
    case 'dir':
      return new ArchiveDirNode(reader, { tree: ownedCopy(item.tree!), item: null }, key, attr, xattrs)
    case 'file':
      return new ArchiveFileNode(reader, item, attr, xattrs, parent)
    case 'symlink':
      return { kind: 'symlink', attr, xattrs, target: item.target ?? Buffer.alloc(0), immutable: true } satisfies SymlinkNode
    default:
      return { kind: 'special', attr, xattrs, immutable: true } satisfies SpecialNode
  }
}

/** Hard links number their group, so that all names of one file share the number. */
function inodeForItem(reader: ArchiveReader, item: Item, key: KeyHash): bigint {
  return item.hardlink ? inodeOf(keyHash(reader.ref.id, 'hardlink', String(item.hardlink.group))) : inodeOf(key)
}

/** A listed item; its node is made on first use. */
class ArchiveEntry implements DirEntry {
  readonly ino: bigint
  private made: VfsNode | null = null

  constructor(private readonly dir: ArchiveDirNode, private readonly item: Item, ino: bigint) {
    this.ino = ino
  }

  get name(): Buffer {
    return this.item.name
  }

  get mode(): number {
    return this.item.mode
  }

  get node(): VfsNode {
    return (this.made ??= this.dir.nodeFor(this.item))
  }
}

export class ArchiveDirNode implements DirNode {
  readonly kind = 'dir'
  readonly immutable = true
  private siblings: SiblingPrefetch | null = null

  constructor(
    private readonly reader: ArchiveReader,
    private readonly dir: DirRef,
    private readonly key: KeyHash,
    readonly attr: NodeAttr,
    readonly xattrs: readonly [Buffer, Buffer][],
  ) {}

  async list(): Promise<DirEntry[]> {
    const out: DirEntry[] = []
    await this.eachItem((item, ino) => out.push(new ArchiveEntry(this, item, ino)))
    return out
  }

  async forEachEntry(visit: (name: Buffer, ino: bigint, mode: number, node: () => VfsNode) => void): Promise<void> {
    await this.eachItem((item, ino) => visit(item.name, ino, item.mode, () => this.nodeFor(item)))
  }

  async entryAt(index: number): Promise<DirEntry | null> {
    const item = await this.reader.itemAt(this.dir, index)
    return item ? new ArchiveEntry(this, item, inodeForItem(this.reader, item, extendKey(this.key, item.name))) : null
  }

  /** Goes through the items page by page and starts loading the first subdirectories' trees: whoever lists a directory tends to enter them next. */
  private async eachItem(visit: (item: Item, ino: bigint) => void): Promise<void> {
    let ahead = 0
    let aheadEntries = 0
    for await (const page of this.reader.pages(this.dir)) {
      for (const item of page) {
        visit(item, inodeForItem(this.reader, item, extendKey(this.key, item.name)))
        if (item.tree && ahead < TREES_AHEAD && aheadEntries < TREE_ENTRIES_AHEAD) {
          ahead++
          aheadEntries += item.entries ?? 0
          this.reader.tree(item.tree).catch(() => undefined) // entering it reports failures
        }
      }
    }
  }

  async lookup(name: Buffer): Promise<VfsNode | null> {
    const item = await this.reader.lookup(this.dir, name)
    return item ? this.nodeFor(item) : null
  }

  /** The node of one of this directory's items. */
  nodeFor(item: Item): VfsNode {
    return nodeForItem(this.reader, item, extendKey(this.key, item.name), this)
  }

  /** One of this directory's files is being read (by a reader that takes its siblings' content, if `sink`). */
  fileRead(item: Item, sink?: SiblingSink): void {
    const window = Math.min(SIBLINGS_AHEAD_BYTES, Math.floor(this.reader.caches.chunks.maxBytes / 8))
    this.siblings ??= new SiblingPrefetch(this.reader, this.dir, window, (file) => inodeForItem(this.reader, file, extendKey(this.key, file.name)))
    this.siblings.noteRead(item, sink)
  }
}

export class ArchiveFileNode implements FileNode {
  readonly kind = 'file'
  readonly immutable = true
  private content: FileContent | null = null

  constructor(
    private readonly reader: ArchiveReader,
    private readonly item: Item,
    readonly attr: NodeAttr,
    readonly xattrs: readonly [Buffer, Buffer][],
    private readonly parent: ArchiveDirNode | null,
  ) {}

  read(position: number, length: number, siblings?: SiblingSink): Promise<Buffer> {
    if (!this.content) {
      this.content = this.reader.content(this.item)
      this.parent?.fileRead(this.item, siblings)
    }
    return this.content.read(position, length)
  }
}

/**
 * Subdirectory trees loaded ahead by a listing (they are read together, see
 * CoalescingLoader), and their entries at most: about 5 MB of decoded trees,
 * a sixth of the default tree cache, so that what is loaded ahead is still
 * there when the walk enters it (a root of 1,000 directories of 1,000 files
 * each would otherwise load 77 MB of trees through a 32 MiB cache).
 */
const TREES_AHEAD = 256
const TREE_ENTRIES_AHEAD = 16_384
/** Bytes of a directory's small files loaded ahead of a program reading them (at most an eighth of the chunk cache). */
const SIBLINGS_AHEAD_BYTES = 16 * 1024 * 1024
