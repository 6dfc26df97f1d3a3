/**
 * Resolves '/'-separated byte paths to nodes, remembering recent answers:
 * FUSE asks about the same paths over and over (a lookup of every name a
 * program touches, getattr on every component).
 *
 * Two bounded caches: directory listings, one entry per directory (a
 * listing answers the lookups of its names that follow it, as `ls -l` or
 * `cp -a` make them), and nodes found by lookup. Entries expire after
 * `ttlMs`, so a live repository view's changes show through.
 */
import { LRUCache } from 'lru-cache'
import { splitPath } from '../archive/reader.js'
import type { DirEntry, DirNode, VfsNode } from './node.js'

type Entries = readonly DirEntry[]

/** A directory's entries; the map from name to node is built on the first lookup. */
class Listing {
  private byName: Map<string, VfsNode> | null = null

  constructor(readonly entries: Entries) {}

  find(name: string): VfsNode | null {
    if (!this.byName) {
      this.byName = new Map()
      for (const e of this.entries) this.byName.set(e.name.toString('latin1'), e.node)
    }
    return this.byName.get(name) ?? null
  }
}

export class PathResolver {
  private readonly nodes: LRUCache<string, VfsNode>
  private readonly listings: LRUCache<string, Listing>

  /** maxEntries bounds the remembered listings' entries, and separately the nodes found by lookup. */
  constructor(readonly root: DirNode, options: { maxEntries?: number; ttlMs?: number } = {}) {
    const maxEntries = options.maxEntries ?? 20_000
    const ttl = options.ttlMs ?? 2000
    this.nodes = new LRUCache<string, VfsNode>({ max: maxEntries, ttl })
    this.listings = new LRUCache<string, Listing>({ maxSize: maxEntries, sizeCalculation: (l) => l.entries.length + 1, ttl })
  }

  /** The node at `path`, or null when there is none. */
  async resolve(path: Buffer): Promise<VfsNode | null> {
    return this.resolveKey(pathKey(path))
  }

  private async resolveKey(key: string): Promise<VfsNode | null> {
    if (key === '') return this.root
    const known = this.nodes.get(key)
    if (known) return known
    const slash = key.lastIndexOf('/')
    const parentKey = key.slice(0, slash)
    const name = key.slice(slash + 1)
    const listing = this.listings.get(parentKey)
    if (listing) return listing.find(name)
    const parent = await this.resolveKey(parentKey)
    if (!parent || parent.kind !== 'dir') return null
    const node = await parent.lookup(Buffer.from(name, 'latin1'))
    if (node) this.nodes.set(key, node)
    return node
  }

  /** Remembers a directory's listing, so the lookups that follow it are answered from memory. */
  remember(dirPath: Buffer, entries: Entries): void {
    this.listings.set(pathKey(dirPath), new Listing(entries))
  }
}

/** '/a/b' as a latin1 string (one char per byte), '' for the root; extra slashes do not count. */
function pathKey(path: Buffer): string {
  if (isCanonical(path)) return path.length === 1 ? '' : path.toString('latin1')
  return splitPath(path).map((p) => '/' + p.toString('latin1')).join('')
}

/** What FUSE sends: a leading slash, no empty component, no trailing slash (except the root). */
function isCanonical(path: Buffer): boolean {
  if (path.length === 0 || path[0] !== 0x2f) return false
  if (path.length === 1) return true
  if (path[path.length - 1] === 0x2f) return false
  return path.indexOf('//') < 0
}
