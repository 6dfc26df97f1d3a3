/**
 * The versions view: every archive of a repository merged into one tree,
 * where each file path is a directory holding one entry per version of
 * that file, oldest first:
 *
 *   home/ann/notes.txt/notes.2024-05-01T09-00-00.000000000Z.txt
 *   home/ann/notes.txt/notes.2024-05-08T09-00-00.000000000Z.txt
 *
 * A version is named after the time of the first archive (in archive time
 * order) that holds it, in fixed-width UTC, put before the extension so
 * that the name still says what kind of file it is and sorting by name
 * sorts by time. A new version starts whenever the content (chunk list,
 * link target, or device) differs from the version before it; metadata
 * changes alone make no new version.
 *
 * Directories merge: a directory lists every name any archive holds in it.
 * A name that is a directory in some archives and something else in others
 * is a directory that lists, besides its merged children, the versions of
 * the non-directory under the same naming scheme.
 *
 * Lazy like the archive view: the root reads the manifest; a directory
 * looks itself up in each archive when first listed; nothing is scanned
 * ahead. A listing costs one tree load per archive (unchanged directories
 * share their tree blob, so most are cache hits).
 */
import { LRUCache } from 'lru-cache'
import type { Repository } from '../repo/repository.js'
import type { ArchiveRef } from '../repo/manifest.js'
import { ArchiveReader, makeReaderCaches, type CacheSizes, type DirRef, type ReaderCaches } from '../archive/reader.js'
import type { Item } from '../archive/item.js'
import { formatNs } from '../time.js'
import { nodeForItem } from './archive-nodes.js'
import { inodeFor, keyHash } from './inode.js'
import { S_IFDIR, dirEntry, type DirEntry, type DirNode, type NodeAttr, type VfsNode } from './node.js'

export interface VersionsViewOptions {
  /** How often the manifest is re-read, in ms (default 2000). */
  refreshMs?: number
  caches?: CacheSizes
}

/** One archive's copy of a merged directory. */
interface Source {
  ref: ArchiveRef
  reader: ArchiveReader
  dir: DirRef
}

/** One version of a non-directory: where it first appeared. */
interface Version {
  ref: ArchiveRef
  reader: ArchiveReader
  item: Item
}

/** Everything the archives hold under one name in one merged directory. */
interface Merged {
  name: Buffer
  dirs: Source[]
  versions: Version[]
  lastContent: string | null
}

const NAME_MAX = 255
const MAX_EXTENSION = 16
const ROOT_INO = 1n

/** The name of a version: the file's name with the archive time put before its extension. */
export function versionName(name: Buffer, timeNs: bigint): Buffer {
  const stamp = Buffer.from('.' + formatNs(timeNs).replace(/:/g, '-'))
  const dot = name.lastIndexOf(0x2e)
  const ext = dot > 0 && name.length - dot <= MAX_EXTENSION ? name.subarray(dot) : Buffer.alloc(0)
  const stem = name.subarray(0, name.length - ext.length)
  return Buffer.concat([stem.subarray(0, NAME_MAX - stamp.length - ext.length), stamp, ext])
}

/** What makes two occurrences of a non-directory the same version. */
function contentKey(item: Item): string {
  switch (item.kind) {
    case 'file':
      return 'f' + (item.chunks ?? []).map((c) => c.id.toString('latin1')).join('')
    case 'symlink':
      return 'l' + (item.target ?? Buffer.alloc(0)).toString('latin1')
    default:
      return `${item.kind}:${item.mode}:${item.rdev ?? 0}`
  }
}

/** Shared by every node of one view: the archive list and one reader per archive. */
class ViewContext {
  private refs: ArchiveRef[] = []
  /** How many times the list of archives was found changed. */
  changes = 0
  private loadedAt = -Infinity
  private loading: Promise<ArchiveRef[]> | null = null
  private readonly readers = new LRUCache<string, Promise<ArchiveReader>>({ max: 256 })

  constructor(readonly repo: Repository, readonly caches: ReaderCaches, private readonly refreshMs: number) {}

  /** The archives, oldest first, re-read at most every refreshMs. */
  archives(): Promise<ArchiveRef[]> {
    if (performance.now() - this.loadedAt < this.refreshMs) return Promise.resolve(this.refs)
    this.loading ??= this.repo
      .archives()
      .then((refs) => {
        if (refs.length !== this.refs.length || refs.some((r, i) => !r.id.equals(this.refs[i]!.id))) this.changes++
        this.refs = refs
        this.loadedAt = performance.now()
        return refs
      })
      .finally(() => {
        this.loading = null
      })
    return this.loading
  }

  reader(ref: ArchiveRef): Promise<ArchiveReader> {
    const key = ref.id.toString('hex')
    let reader = this.readers.get(key)
    if (!reader) {
      reader = ArchiveReader.open(this.repo, ref, this.caches)
      reader.catch(() => this.readers.delete(key))
      this.readers.set(key, reader)
    }
    return reader
  }
}

function dirAttr(ino: bigint, timeNs: bigint, like?: Item): NodeAttr {
  const t = like ? { atimeNs: like.atimeNs, mtimeNs: like.mtimeNs, ctimeNs: like.ctimeNs } : { atimeNs: timeNs, mtimeNs: timeNs, ctimeNs: timeNs }
  return {
    ino,
    mode: like?.kind === 'dir' ? like.mode : S_IFDIR | 0o555,
    nlink: 2,
    uid: like?.uid ?? process.getuid?.() ?? 0,
    gid: like?.gid ?? process.getgid?.() ?? 0,
    rdev: 0,
    size: 0,
    blocks: 0,
    ...t,
  }
}

function childPath(parent: Buffer, name: Buffer): Buffer {
  return parent.length ? Buffer.concat([parent, SLASH, name]) : name
}

/** Adds one archive's entry to what a merged directory knows about its name. */
function addOccurrence(merged: Merged, source: Source, item: Item): void {
  if (item.kind === 'dir') {
    if (item.tree) merged.dirs.push({ ref: source.ref, reader: source.reader, dir: { tree: item.tree, item } })
    return
  }
  const key = contentKey(item)
  if (key === merged.lastContent) return
  merged.lastContent = key
  merged.versions.push({ ref: source.ref, reader: source.reader, item })
}

function versionEntries(path: Buffer, name: Buffer, versions: readonly Version[]): DirEntry[] {
  const seen = new Set<string>()
  const out: DirEntry[] = []
  for (const v of versions) {
    const vname = versionName(name, v.ref.time)
    const key = vname.toString('latin1')
    if (seen.has(key)) continue // two archives with the same nanosecond: keep the first
    seen.add(key)
    out.push(dirEntry(vname, nodeForItem(v.reader, v.item, keyHash(v.reader.ref.id, path))))
  }
  return out
}

/** A file path of the merged tree: a directory of its versions. */
class VersionsDirNode implements DirNode {
  readonly kind = 'dir'
  readonly xattrs: [Buffer, Buffer][] = []
  readonly attr: NodeAttr

  constructor(private readonly path: Buffer, private readonly name: Buffer, private readonly versions: readonly Version[]) {
    const newest = versions[versions.length - 1]!
    this.attr = { ...dirAttr(inodeFor('versions', path), newest.ref.time, newest.item), mode: S_IFDIR | 0o555 }
  }

  async list(): Promise<DirEntry[]> {
    return versionEntries(this.path, this.name, this.versions)
  }

  async lookup(name: Buffer): Promise<VfsNode | null> {
    return versionEntries(this.path, this.name, this.versions).find((e) => e.name.equals(name))?.node ?? null
  }
}

/** A directory of the merged tree. */
class MergedDirNode implements DirNode {
  readonly kind = 'dir'
  readonly xattrs: [Buffer, Buffer][] = []

  constructor(
    protected readonly path: Buffer,
    public attr: NodeAttr,
    /** This directory in each archive that has it, oldest first (the root computes them). */
    private readonly fixedSources: readonly Source[] = [],
    /** Versions of a non-directory with this directory's name, if some archives had one. */
    private readonly extra: readonly Version[] = [],
  ) {}

  protected async sources(): Promise<readonly Source[]> {
    return this.fixedSources
  }

  private nodeFor(m: Merged): VfsNode | null {
    const path = childPath(this.path, m.name)
    if (m.dirs.length > 0) {
      const newest = m.dirs[m.dirs.length - 1]!
      return new MergedDirNode(path, dirAttr(inodeFor('versions', path), newest.ref.time, newest.dir.item ?? undefined), m.dirs, m.versions)
    }
    return m.versions.length > 0 ? new VersionsDirNode(path, m.name, m.versions) : null
  }

  private extraEntries(): DirEntry[] {
    if (this.extra.length === 0) return []
    const slash = this.path.lastIndexOf(0x2f)
    return versionEntries(this.path, this.path.subarray(slash + 1), this.extra)
  }

  async list(): Promise<DirEntry[]> {
    const sources = await this.sources()
    // Load every archive's copy at once (most are one shared, cached tree), then merge in archive order.
    await Promise.all(sources.map((s) => s.reader.tree(s.dir.tree)))
    const byName = new Map<string, Merged>()
    for (const s of sources) {
      for await (const item of s.reader.entries(s.dir)) {
        const key = item.name.toString('latin1')
        let m = byName.get(key)
        if (!m) byName.set(key, (m = { name: item.name, dirs: [], versions: [], lastContent: null }))
        addOccurrence(m, s, item)
      }
    }
    const out: DirEntry[] = []
    for (const m of byName.values()) {
      const node = this.nodeFor(m)
      if (node) out.push(dirEntry(m.name, node))
    }
    const names = new Set(byName.keys())
    for (const e of this.extraEntries()) if (!names.has(e.name.toString('latin1'))) out.push(e)
    return out.sort((a, b) => Buffer.compare(a.name, b.name))
  }

  async lookup(name: Buffer): Promise<VfsNode | null> {
    const sources = await this.sources()
    const found = await Promise.all(sources.map((s) => s.reader.lookup(s.dir, name)))
    const m: Merged = { name, dirs: [], versions: [], lastContent: null }
    found.forEach((item, i) => item && addOccurrence(m, sources[i]!, item))
    return this.nodeFor(m) ?? this.extraEntries().find((e) => e.name.equals(name))?.node ?? null
  }
}

/** The root of the versions view: the merged roots of every archive, re-read from the manifest. */
export class VersionsView extends MergedDirNode {
  private readonly context: ViewContext

  constructor(readonly repo: Repository, options: VersionsViewOptions = {}) {
    super(Buffer.alloc(0), dirAttr(ROOT_INO, 0n))
    this.context = new ViewContext(repo, makeReaderCaches(repo, options.caches), options.refreshMs ?? 2000)
  }

  /** How many times refresh() found the list of archives changed: whoever caches the root's listing compares it. */
  get changes(): number {
    return this.context.changes
  }

  /** Re-reads the manifest if it is older than refreshMs; the root's times follow the newest archive. */
  async refresh(): Promise<readonly ArchiveRef[]> {
    const refs = await this.context.archives()
    this.attr = dirAttr(ROOT_INO, refs.reduce((t, r) => (r.time > t ? r.time : t), 0n))
    return refs
  }

  protected override async sources(): Promise<readonly Source[]> {
    const refs = await this.refresh()
    return Promise.all(refs.map(async (ref) => {
      const reader = await this.context.reader(ref)
      return { ref, reader, dir: reader.root }
    }))
  }
}

const SLASH = Buffer.from('/')
