/**
 * A cache of decoded blobs bounded in bytes, that loads each key once even
 * when many readers ask for it at the same moment (lru-cache's fetch merges
 * concurrent loads). Failed loads are not cached.
 */
import { LRUCache } from 'lru-cache'

export class BlobCache<V extends {}> {
  private readonly lru: LRUCache<string, V, unknown>

  constructor(readonly maxBytes: number, sizeOf: (value: V) => number, load: (key: string) => Promise<V>) {
    this.lru = new LRUCache<string, V, unknown>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (value) => Math.max(1, sizeOf(value)),
      fetchMethod: (key) => load(key),
    })
  }

  async get(key: string): Promise<V> {
    const value = await this.lru.fetch(key)
    if (value === undefined) throw new Error(`cache load of ${key} returned nothing`)
    return value
  }

  clear(): void {
    this.lru.clear()
  }
}
