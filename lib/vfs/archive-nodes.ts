/**
 * VFS nodes over one archive: each directory loads its own tree on first
 * lookup or listing; each file reads through the shared chunk cache.
 */
import { createHash } from 'node:crypto'
import type { ArchiveReader, DirRef } from '../archive/reader.js'
import type { Item } from '../archive/item.js'
import type { FileContent } from '../archive/file-content.js'
import type { DirNode, FileNode, NodeAttr, SpecialNode, SymlinkNode, VfsNode } from './node.js'

/** A 63-bit inode number from a stable key (archive id and path, or hardlink group). */
export function inodeFor(...parts: (Buffer | string)[]): bigint {
  const h = createHash('sha256')
  for (const p of parts) h.update(p).update('\0')
  const n = h.digest().readBigUInt64LE(0) & 0x7fffffffffffffffn
  return n < 16n ? n + 16n : n // small numbers are reserved (1 is the mount root)
}

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

/** Makes the node for an item found at `path` in `reader`'s archive. */
export function nodeForItem(reader: ArchiveReader, item: Item, path: Buffer): VfsNode {
  const archiveId = reader.ref.id
  const ino = item.hardlink ? inodeFor(archiveId, 'hardlink', String(item.hardlink.group)) : inodeFor(archiveId, path)
  const attr = attrOf(item, ino)
  const xattrs = item.xattrs ?? []
  switch (item.kind) {
    case 'dir':
      return new ArchiveDirNode(reader, { tree: item.tree!, item }, path, attr, xattrs)
    case 'file':
      return new ArchiveFileNode(reader, item, attr, xattrs)
    case 'symlink':
      return { kind: 'symlink', attr, xattrs, target: item.target ?? Buffer.alloc(0) } satisfies SymlinkNode
    default:
      return { kind: 'special', attr, xattrs } satisfies SpecialNode
  }
}

export class ArchiveDirNode implements DirNode {
  readonly kind = 'dir'

  constructor(
    private readonly reader: ArchiveReader,
    private readonly dir: DirRef,
    private readonly path: Buffer,
    readonly attr: NodeAttr,
    readonly xattrs: readonly [Buffer, Buffer][],
  ) {}

  private childPath(name: Buffer): Buffer {
    return this.path.length ? Buffer.concat([this.path, SLASH, name]) : name
  }

  async list(): Promise<{ name: Buffer; node: VfsNode }[]> {
    const out: { name: Buffer; node: VfsNode }[] = []
    for await (const item of this.reader.entries(this.dir)) out.push({ name: item.name, node: nodeForItem(this.reader, item, this.childPath(item.name)) })
    return out
  }

  async lookup(name: Buffer): Promise<VfsNode | null> {
    const item = await this.reader.lookup(this.dir, name)
    return item ? nodeForItem(this.reader, item, this.childPath(name)) : null
  }
}

export class ArchiveFileNode implements FileNode {
  readonly kind = 'file'
  private content: FileContent | null = null

  constructor(
    private readonly reader: ArchiveReader,
    private readonly item: Item,
    readonly attr: NodeAttr,
    readonly xattrs: readonly [Buffer, Buffer][],
  ) {}

  read(position: number, length: number): Promise<Buffer> {
    this.content ??= this.reader.content(this.item)
    return this.content.read(position, length)
  }
}

const SLASH = Buffer.from('/')
