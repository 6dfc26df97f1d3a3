/**
 * The whole repository as a directory: one subdirectory per archive, named
 * after it. Mounting reads only the manifest; an archive's root loads on
 * first access. The archive list is re-read from the manifest at most every
 * `refreshMs`, so archives created or deleted elsewhere appear and vanish
 * while mounted. No lock is ever taken.
 */
import type { Repository } from '../repo/repository.js'
import type { ArchiveRef } from '../repo/manifest.js'
import { ArchiveReader, makeReaderCaches, type CacheSizes, type ReaderCaches } from '../archive/reader.js'
import { ArchiveDirNode, archiveRootKey } from './archive-nodes.js'
import { inodeFor } from './inode.js'
import { S_IFDIR, dirEntry, type DirEntry, type DirNode, type NodeAttr, type VfsNode } from './node.js'

export interface RepositoryViewOptions {
  /** How often the manifest is re-read, in ms (default 2000). */
  refreshMs?: number
  caches?: CacheSizes
}

const ROOT_INO = 1n
const DIR_MODE = S_IFDIR | 0o555

/** A directory standing for one archive; the archive object loads on first use. */
class ArchiveRootNode implements DirNode {
  readonly kind = 'dir'
  readonly immutable = true
  readonly xattrs: [Buffer, Buffer][] = []
  readonly attr: NodeAttr
  private root: Promise<ArchiveDirNode> | null = null

  constructor(private readonly repo: Repository, readonly ref: ArchiveRef, private readonly caches: ReaderCaches) {
    this.attr = dirAttr(inodeFor(ref.id, 'root'), ref.time)
  }

  private open(): Promise<ArchiveDirNode> {
    this.root ??= ArchiveReader.open(this.repo, this.ref, this.caches)
      .then((reader) => new ArchiveDirNode(reader, reader.root, archiveRootKey(reader), this.attr, []))
      .catch((err: unknown) => {
        this.root = null
        throw err
      })
    return this.root
  }

  async list(): Promise<DirEntry[]> {
    return (await this.open()).list()
  }

  async lookup(name: Buffer): Promise<VfsNode | null> {
    return (await this.open()).lookup(name)
  }
}

export class RepositoryView implements DirNode {
  readonly kind = 'dir'
  readonly xattrs: [Buffer, Buffer][] = []
  attr: NodeAttr = dirAttr(ROOT_INO, 0n)
  private readonly caches: ReaderCaches
  private readonly refreshMs: number
  private archives = new Map<string, ArchiveRootNode>()
  /** How many times refresh() found the list of archives changed: whoever caches the listing compares it. */
  changes = 0
  private loadedAt = -Infinity
  private loading: Promise<void> | null = null

  constructor(readonly repo: Repository, options: RepositoryViewOptions = {}) {
    this.caches = makeReaderCaches(repo, options.caches)
    this.refreshMs = options.refreshMs ?? 2000
  }

  /** Re-reads the manifest if the last read is older than refreshMs (concurrent callers share one read). */
  async refresh(force = false): Promise<void> {
    if (!force && performance.now() - this.loadedAt < this.refreshMs) return
    this.loading ??= this.repo
      .archives()
      .then((refs) => {
        const next = new Map<string, ArchiveRootNode>()
        let changed = refs.length !== this.archives.size
        for (const ref of refs) {
          const known = this.archives.get(ref.name)
          const same = known !== undefined && known.ref.id.equals(ref.id)
          next.set(ref.name, same ? known : new ArchiveRootNode(this.repo, ref, this.caches))
          if (!same) changed = true
        }
        if (changed) this.changes++
        this.archives = next
        const newest = refs.reduce((t, r) => (r.time > t ? r.time : t), 0n)
        this.attr = dirAttr(ROOT_INO, newest)
        this.loadedAt = performance.now()
      })
      .finally(() => {
        this.loading = null
      })
    await this.loading
  }

  async list(): Promise<DirEntry[]> {
    await this.refresh()
    return [...this.archives.values()].map((node) => dirEntry(Buffer.from(node.ref.name), node))
  }

  async lookup(name: Buffer): Promise<VfsNode | null> {
    await this.refresh()
    return this.archives.get(name.toString()) ?? null
  }
}

/** The view of a single archive: its tree at the root. */
export async function openArchiveView(repo: Repository, archive: string, caches?: CacheSizes): Promise<DirNode> {
  const reader = await ArchiveReader.open(repo, archive, makeReaderCaches(repo, caches))
  return new ArchiveDirNode(reader, reader.root, archiveRootKey(reader), dirAttr(ROOT_INO, reader.ref.time), [])
}

function dirAttr(ino: bigint, timeNs: bigint): NodeAttr {
  return { ino, mode: DIR_MODE, nlink: 2, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, rdev: 0, size: 0, blocks: 0, atimeNs: timeNs, mtimeNs: timeNs, ctimeNs: timeNs }
}
