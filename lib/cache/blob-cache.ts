/**
 * A cache of decoded blobs bounded in bytes, that loads each key once even
 * when many readers ask for it at the same moment. Failed loads are not
 * cached.
 *
 * Loads in flight are kept apart from the cache, in a map of their promises,
 * and enter it once done: a load that other entries would push out of the
 * cache still completes for whoever waits on it (lru-cache's own fetch()
 * rejected those waiters with 'evicted', which the mount answered as EIO
 * when a listing of 1,000 large directories loaded more trees ahead than
 * the cache holds). lru-cache's fetch() also built an AbortController and
 * several promises per load: a directory's 2,000 small files loaded ahead
 * spent about 70 of their 380 ms there (CPU profile of the prefetch,
 * bench/RESULTS.md, session 15).
 */
import { LRUCache } from 'lru-cache'

export class BlobCache<V extends {}> {
  private readonly lru: LRUCache<string, V>
  private readonly loading = new Map<string, Promise<V>>()

  constructor(readonly maxBytes: number, sizeOf: (value: V) => number, private readonly load: (key: string) => Promise<V>) {
    this.lru = new LRUCache<string, V>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (value) => Math.max(1, sizeOf(value)),
    })
  }

  get(key: string): Promise<V> {
    const hit = this.lru.get(key)
    if (hit !== undefined) return Promise.resolve(hit)
    let pending = this.loading.get(key)
    if (pending === undefined) {
      pending = this.startLoad(key)
      this.loading.set(key, pending)
    }
    return pending
  }

  private async startLoad(key: string): Promise<V> {
    try {
      const value = await this.load(key)
      if (value === undefined) throw new Error(`cache load of ${key} returned nothing`)
      this.lru.set(key, value)
      return value
    } finally {
      this.loading.delete(key)
    }
  }

  clear(): void {
    this.lru.clear()
  }
}
