/**
 * The files cache: which chunks a file had when it was last backed up, so a
 * file whose path, inode, size, mtime and ctime are unchanged is not read
 * again.
 *
 * Entries not seen for `ttl` backups are dropped (CAIRN_FILES_CACHE_TTL,
 * default 20). A file whose mtime is not older than the start of the backup
 * is not remembered: it may change again within the timestamp granularity
 * without its mtime changing (borg's reasoning, see its FAQ).
 *
 * File layout: msgpack [version, [[pathKey, ino, size, mtime pair, ctime
 * pair, chunk ids, chunk sizes, age], ...]] with pathKey the first 16 bytes
 * of SHA-256 of the absolute path bytes (cache-file.ts adds a checksum).
 */
import { hash } from 'node:crypto'
import { readCacheFile, writeCacheFile } from '../cache/cache-file.js'
import { fromPair, toPair } from '../time.js'
import type { ChunkRef } from './item.js'

const VERSION = 1
export const DEFAULT_FILES_CACHE_TTL = 20

/**
 * One remembered file. A class, so that every entry shares one hidden class:
 * object literals built by spreading gave each entry its own (measured: 70,000
 * entries held 19 MiB of V8 maps), and the cache is as large as the tree.
 */
class Entry {
  /** Looked up or remembered during this backup (so it does not age). */
  seen = false

  constructor(
    readonly ino: bigint,
    readonly size: number,
    readonly mtimeNs: bigint,
    readonly ctimeNs: bigint,
    /** The chunk ids, concatenated. */
    readonly ids: Buffer,
    readonly sizes: readonly number[],
    readonly age: number,
  ) {}
}

export interface FileIdentity {
  ino: bigint
  size: number
  mtimeNs: bigint
  ctimeNs: bigint
}

export class FilesCache {
  private readonly entries = new Map<string, Entry>()
  /** Something was remembered or forgotten since the load. */
  private changed = false
  private loading: Promise<void> | null = null
  /** Keys touched before the cache was loaded. */
  private touchedEarly: string[] | null = []

  private constructor(private readonly file: string | null, private readonly ttl: number) {}

  static async load(file: string | null, ttl = DEFAULT_FILES_CACHE_TTL): Promise<FilesCache> {
    const cache = FilesCache.deferred(file, ttl)
    await cache.ready()
    return cache
  }

  /**
   * A cache read from disk only when first needed (ready()): a backup whose
   * every directory comes from the tree cache never needs it, and loading a
   * large tree's files cache costs a few hundred milliseconds. If it is
   * never loaded, save() leaves the file as it was (nothing aged: entries
   * for files outside this backup's paths then age one backup later).
   */
  static deferred(file: string | null, ttl = DEFAULT_FILES_CACHE_TTL): FilesCache {
    return new FilesCache(file, ttl)
  }

  get loaded(): boolean {
    return this.touchedEarly === null
  }

  /** Loads the cache (once); lookup() and remember() need it. */
  ready(): Promise<void> {
    this.loading ??= (this.file ? this.read(this.file) : Promise.resolve()).then(() => {
      const early = this.touchedEarly ?? []
      this.touchedEarly = null
      for (const key of early) this.touchKey(key)
    })
    return this.loading
  }

  /** The chunks the file had, if nothing about it changed and `exists` confirms every chunk. */
  lookup(absPath: Buffer, now: FileIdentity, exists: (id: Buffer) => boolean): ChunkRef[] | null {
    if (!this.loaded) throw new Error('FilesCache.lookup before ready()')
    const key = pathKey(absPath)
    const e = this.entries.get(key)
    if (!e || e.ino !== now.ino || e.size !== now.size || e.mtimeNs !== now.mtimeNs || e.ctimeNs !== now.ctimeNs) return null
    const refs = e.sizes.map((size, i) => ({ id: e.ids.subarray(i * 32, i * 32 + 32), size }))
    if (!refs.every((r) => exists(r.id))) return null
    e.seen = true
    return refs
  }

  /** Keeps the file's entry from ageing: its directory's tree was taken whole from the tree cache. */
  touch(absPath: Buffer): void {
    const key = pathKey(absPath)
    if (this.touchedEarly) this.touchedEarly.push(key)
    else this.touchKey(key)
  }

  private touchKey(key: string): void {
    const e = this.entries.get(key)
    if (e) e.seen = true
  }

  /** Records what a file was stored as; skipped for files modified since `backupStartNs`. */
  remember(absPath: Buffer, now: FileIdentity, chunks: readonly ChunkRef[], backupStartNs: bigint): void {
    const key = pathKey(absPath)
    this.changed = true
    if (now.mtimeNs >= backupStartNs) {
      this.entries.delete(key)
      return
    }
    const entry = new Entry(now.ino, now.size, now.mtimeNs, now.ctimeNs, Buffer.concat(chunks.map((c) => c.id)), chunks.map((c) => c.size), 0)
    entry.seen = true
    this.entries.set(key, entry)
  }

  /** Ages unseen entries, drops the old ones, and writes the cache (unless it would write what it read). */
  async save(): Promise<void> {
    if (!this.file || !this.loaded) return
    if (!this.changed && [...this.entries.values()].every((e) => e.seen && e.age === 0)) return
    const rows: unknown[] = []
    for (const [key, e] of this.entries) {
      const age = e.seen ? 0 : e.age + 1
      if (age >= this.ttl) continue
      rows.push([Buffer.from(key, 'latin1'), e.ino, e.size, toPair(e.mtimeNs), toPair(e.ctimeNs), e.ids, e.sizes, age])
    }
    await writeCacheFile(this.file, [VERSION, rows])
  }

  /** A damaged or missing cache only costs a full read of the files. */
  private async read(file: string): Promise<void> {
    const value = await readCacheFile(file)
    if (!Array.isArray(value)) return
    try {
      const [version, rows] = value as [number, unknown[][]]
      if (version !== VERSION) return
      for (const [key, ino, size, mt, ct, rawIds, sizes, age] of rows) {
        const ids = rawIds as Uint8Array // a view into the file's bytes, kept rather than copied per entry
        this.entries.set(
          Buffer.from(key as Uint8Array).toString('latin1'),
          new Entry(BigInt(ino as number | bigint), Number(size), fromPair(mt), fromPair(ct), Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength), sizes as number[], age as number),
        )
      }
    } catch {
      this.entries.clear()
    }
  }
}

/**
 * The cache key of an absolute path (also the tree cache's). crypto.hash, not
 * createHash: a one-shot call costs 0.85 µs here against 5 µs, for every file
 * of every backup.
 */
export function pathKey(absPath: Buffer): string {
  return hash('sha256', absPath, 'binary').slice(0, 16) // 'binary' is latin1
}
