/**
 * A cache of decoded blobs bounded in bytes, that loads each key once even
 * when many readers ask for it at the same moment (lru-cache's fetch merges
 * concurrent loads). Failed loads are not cached.
 *
 * A load in flight that other entries push out of the cache still completes
 * for whoever waits on it (`ignoreFetchAbort`): otherwise lru-cache rejects
 * those waiters with 'evicted', which the mount answered as EIO when a
 * listing of 1,000 large directories loaded more trees ahead than the cache
 * holds.
 */
import { LRUCache } from 'lru-cache'

export class BlobCache<V extends {}> {
  private readonly lru: LRUCache<string, V, unknown>

  constructor(readonly maxBytes: number, sizeOf: (value: V) => number, load: (key: string) => Promise<V>) {
    this.lru = new LRUCache<string, V, unknown>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (value) => Math.max(1, sizeOf(value)),
      fetchMethod: (key) => load(key),
      ignoreFetchAbort: true,
    })
  }

  async get(key: string): Promise<V> {
    // A hit skips fetch(), which builds an AbortController and promises per call (a tenth of a walk's time).
    const hit = this.lru.get(key)
    if (hit !== undefined) return hit
    const value = await this.lru.fetch(key)
    if (value === undefined) throw new Error(`cache load of ${key} returned nothing`)
    return value
  }

  clear(): void {
    this.lru.clear()
  }
}
