/**
 * Reading an archive lazily: the archive object, then one directory's tree
 * at a time, then only the chunks a read touches.
 *
 * Trees and chunks go through byte-bounded caches that can be shared by
 * every reader of a repository (the mount shares one set).
 */
import { CairnError } from '../errors.js'
import type { Repository } from '../repo/repository.js'
import type { ArchiveRef } from '../repo/manifest.js'
import { BlobType } from '../repo/blob.js'
import { BlobCache } from '../cache/blob-cache.js'
import { smallFileLoader, type SmallFileLoader } from '../cache/small-file-loader.js'
import { decodeArchive, type ArchiveMeta } from './archive-object.js'
import { decodeTree, findInLeaf, pageFor, type TreeObject } from './tree.js'
import { FileContent } from './file-content.js'
import type { Item } from './item.js'

export interface ReaderCaches {
  trees: BlobCache<TreeObject>
  chunks: BlobCache<Buffer>
  /** The whole content of many small files at once, bypassing `chunks` where it can (see SmallFileLoader). */
  smallFiles: SmallFileLoader
}

export interface CacheSizes {
  /** Bytes of decoded tree objects kept (default 32 MiB). */
  treeBytes?: number
  /** Bytes of decrypted chunks kept (default 256 MiB). */
  chunkBytes?: number
  /** Loads and opens a data chunk (default: repo.loadBlob on this thread); the mount passes a worker pool's. */
  loadChunk?: (id: Buffer) => Promise<Buffer>
  /** Loads and opens a tree blob (default: repo.loadBlob on this thread). */
  loadTree?: (id: Buffer) => Promise<Buffer>
}

/** Rough in-memory size of a decoded tree: what bounds the tree cache. */
function treeSize(tree: TreeObject): number {
  if (tree.kind === 'pages') return 64 + tree.pages.length * 96
  let bytes = 64
  for (const e of tree.entries) bytes += 200 + e.name.length + (e.chunks?.length ?? 0) * 80 + (e.target?.length ?? 0)
  return bytes
}

export function makeReaderCaches(repo: Repository, sizes: CacheSizes = {}): ReaderCaches {
  const chunks = new BlobCache<Buffer>(sizes.chunkBytes ?? 256 * 1024 * 1024, (b) => b.length, async (key) =>
    sizes.loadChunk ? sizes.loadChunk(Buffer.from(key, 'hex')) : repo.loadBlob(BlobType.Data, Buffer.from(key, 'hex')))
  return {
    trees: new BlobCache<TreeObject>(sizes.treeBytes ?? 32 * 1024 * 1024, treeSize, async (key) => {
      const id = Buffer.from(key, 'hex')
      const raw = await (sizes.loadTree ? sizes.loadTree(id) : repo.loadBlob(BlobType.Tree, id))
      return decodeTree(raw, `tree ${key.slice(0, 16)}…`)
    }),
    chunks,
    smallFiles: smallFileLoader(repo, chunks),
  }
}

/** A directory's content: the root (`item` null) or a directory item. */
export interface DirRef {
  tree: Buffer
  item: Item | null
}

export class ArchiveReader {
  private constructor(
    readonly repo: Repository,
    readonly ref: ArchiveRef,
    readonly meta: ArchiveMeta,
    readonly caches: ReaderCaches,
  ) {}

  static async open(repo: Repository, archive: ArchiveRef | string, caches?: ReaderCaches): Promise<ArchiveReader> {
    const ref = typeof archive === 'string' ? await repo.findArchive(archive) : archive
    const meta = decodeArchive(await repo.loadBlob(BlobType.Archive, ref.id), ref.name)
    return new ArchiveReader(repo, ref, meta, caches ?? makeReaderCaches(repo))
  }

  get root(): DirRef {
    return { tree: this.meta.root, item: null }
  }

  tree(id: Buffer): Promise<TreeObject> {
    return this.caches.trees.get(id.toString('hex'))
  }

  /** The entries of a directory in name-byte order, one page at a time. */
  async *entries(dir: DirRef): AsyncIterable<Item> {
    for await (const page of this.pages(dir)) yield* page
  }

  /**
   * A directory's entries in name-byte order, as its pages' arrays (one array
   * for a directory of one page). PAGES_AHEAD pages load ahead of the one
   * handed out, and none is held after it: a listing of a directory of 24,000
   * entries that kept all its pages' items at once raised the mount's peak by
   * 12-16 MiB.
   */
  async *pages(dir: DirRef): AsyncIterable<readonly Item[]> {
    const top = await this.tree(dir.tree)
    if (top.kind === 'leaf') {
      yield top.entries
      return
    }
    const ahead: Promise<TreeObject>[] = []
    let next = 0
    const loadNext = (): void => {
      const loading = this.tree(top.pages[next++]!.id)
      loading.catch(() => undefined) // a failure surfaces when its page's turn comes
      ahead.push(loading)
    }
    while (next < top.pages.length && ahead.length < PAGES_AHEAD) loadNext()
    while (ahead.length > 0) {
      const leaf = await ahead.shift()!
      if (next < top.pages.length) loadNext()
      if (leaf.kind !== 'leaf') throw nestedPages()
      yield leaf.entries
    }
  }

  /** The entry called `name` in a directory, loading at most one page. */
  async lookup(dir: DirRef, name: Buffer): Promise<Item | undefined> {
    const top = await this.tree(dir.tree)
    if (top.kind === 'leaf') return findInLeaf(top.entries, name)
    if (top.pages.length === 0) return undefined
    const leaf = await this.tree(top.pages[pageFor(top.pages, name)]!.id)
    if (leaf.kind !== 'leaf') throw nestedPages()
    return findInLeaf(leaf.entries, name)
  }

  /**
   * The entry at `index` in a directory's name-byte order (the order of entries() and pages()), loading at
   * most one page; undefined past the end.
   */
  async itemAt(dir: DirRef, index: number): Promise<Item | undefined> {
    const top = await this.tree(dir.tree)
    if (top.kind === 'leaf') return top.entries[index]
    let first = 0
    for (const page of top.pages) {
      if (index < first + page.count) {
        const leaf = await this.tree(page.id)
        if (leaf.kind !== 'leaf') throw nestedPages()
        if (leaf.entries.length !== page.count) throw new CairnError('integrity', 'a tree page holds another number of entries than its page list says', { hint: 'run cairn check' })
        return leaf.entries[index - first]
      }
      first += page.count
    }
    return undefined
  }

  /** Resolves a '/'-separated path in the archive (no leading '/'); '' is the root. */
  async resolve(path: Buffer): Promise<Item | null | undefined> {
    let dir: DirRef = this.root
    let item: Item | null = null
    for (const part of splitPath(path)) {
      if (item && item.kind !== 'dir') return undefined
      const found = await this.lookup(dir, part)
      if (!found) return undefined
      item = found
      if (found.tree) dir = { tree: found.tree, item: found }
    }
    return item
  }

  /**
   * Every item below a directory, depth-first, parents before children, with
   * paths relative to the archive root. The trees of the next subdirectories
   * are fetched ahead (PREFETCH at a time), so a walk waits for storage
   * latency once per group of directories, not once per directory.
   */
  async *walk(dir: DirRef = this.root, prefix: Buffer = Buffer.alloc(0)): AsyncIterable<{ path: Buffer; item: Item }> {
    let group: Item[] = []
    const drain = async function* (this: ArchiveReader): AsyncIterable<{ path: Buffer; item: Item }> {
      for (const item of group) if (item.tree) this.tree(item.tree).catch(() => undefined)
      for (const item of group) {
        const path = prefix.length ? Buffer.concat([prefix, SLASH, item.name]) : item.name
        yield { path, item }
        if (item.kind === 'dir' && item.tree) yield* this.walk({ tree: item.tree, item }, path)
      }
      group = []
    }
    for await (const item of this.entries(dir)) {
      group.push(item)
      if (group.length === PREFETCH) yield* drain.call(this)
    }
    yield* drain.call(this)
  }

  /** Random and streaming access to a file's content. */
  content(item: Item): FileContent {
    if (item.kind !== 'file') throw new CairnError('bad-argument', `${item.name.toString()} is not a regular file`)
    return new FileContent(item, this.caches.chunks)
  }
}

const SLASH = Buffer.from('/')
/** Entries whose subdirectory trees a walk fetches ahead. */
const PREFETCH = 32
/** Pages of a directory loaded ahead of the one being read (their reads coalesce: see CoalescingLoader). */
const PAGES_AHEAD = 3

export function splitPath(path: Buffer): Buffer[] {
  const parts: Buffer[] = []
  let start = 0
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === 0x2f) {
      if (i > start) parts.push(path.subarray(start, i))
      start = i + 1
    }
  }
  return parts
}

function nestedPages(): CairnError {
  return new CairnError('integrity', 'a tree page list points at another page list', { hint: 'run cairn check' })
}
