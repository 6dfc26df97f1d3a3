/**
 * Resolves '/'-separated byte paths to nodes, remembering recent answers:
 * FUSE asks about the same paths over and over (getattr on every
 * component). Entries expire after `ttlMs`, so a live repository view's
 * changes show through.
 */
import { LRUCache } from 'lru-cache'
import { splitPath } from '../archive/reader.js'
import type { DirNode, VfsNode } from './node.js'

export class PathResolver {
  private readonly cache: LRUCache<string, VfsNode>

  constructor(readonly root: DirNode, options: { maxEntries?: number; ttlMs?: number } = {}) {
    this.cache = new LRUCache<string, VfsNode>({ max: options.maxEntries ?? 20_000, ttl: options.ttlMs ?? 2000 })
  }

  /** The node at `path`, or null when there is none. */
  async resolve(path: Buffer): Promise<VfsNode | null> {
    const parts = splitPath(path)
    if (parts.length === 0) return this.root
    const key = Buffer.concat(parts.flatMap((p) => [SLASH, p])).toString('latin1')
    const known = this.cache.get(key)
    if (known) return known
    const parentKey = key.slice(0, key.lastIndexOf('/'))
    const parent = parts.length === 1 ? this.root : await this.resolve(Buffer.from(parentKey, 'latin1'))
    if (!parent || parent.kind !== 'dir') return null
    const node = await parent.lookup(parts[parts.length - 1]!)
    if (node) this.cache.set(key, node)
    return node
  }

  /** Remembers the children a listing produced, so the getattr calls that follow it are answered from memory. */
  remember(dirPath: Buffer, entries: readonly { name: Buffer; node: VfsNode }[]): void {
    const prefix = Buffer.concat(splitPath(dirPath).flatMap((p) => [SLASH, p])).toString('latin1')
    for (const e of entries) this.cache.set(`${prefix}/${e.name.toString('latin1')}`, e.node)
  }
}

const SLASH = Buffer.from('/')
