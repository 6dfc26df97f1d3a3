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
 * The entries loaded live in a FileTable (files-table.ts), typed arrays with
 * no JS object per file; those a backup remembers go to disk until the save
 * (files-spill.ts), so lookup() sees the cache as it was loaded, less the
 * entries remembered anew or forgotten since. Measured on the project VM (Node 20, 100,000 files of one
 * chunk each, heap plus array buffers after a forced GC; version 1 was a Map
 * of entry objects): 154 bytes per file after remembering them (460 in
 * version 1), 111 after a load (470; msgpackr holds the file's 92 bytes per
 * file more until its next decode); save 0.1 s (0.4 s), load 0.07 s (0.5 s)
 * on a busy machine.
 *
 * File layout, version 3 (little-endian throughout):
 *   u32          length of the header
 *   header       msgpack [3, count, chunks]: entries, and chunks of all entries
 *   columns      each a run of values, entry i (chunk i) being the i-th value, in this order:
 *     keys         16 bytes: the first 16 bytes of SHA-256 of the absolute path bytes
 *     inos         uint64
 *     sizes        float64, bytes
 *     mtimes       int64, nanoseconds since the epoch
 *     ctimes       int64, nanoseconds since the epoch
 *     ages         uint32, backups since the file was last seen
 *     chunkCounts  uint32
 *     chunkIds     32 bytes per chunk: the first entry's chunks, then the next entry's, …
 *     chunkSizes   uint32 per chunk, in the same order
 *   SHA-256 of everything before it (cache-file.ts).
 * The columns are written as they are (version 2 was one msgpack array of
 * them, whose encoder grew a buffer to four times their size at the end of
 * every backup). An older version, a damaged file, or lengths that do not
 * fit together read as an empty cache: the next backup reads every file, as
 * with no cache at all.
 */
import { hash } from 'node:crypto'
import { CheckedReader, framedHeader, writeCheckedParts } from '../cache/cache-file.js'
import { unpack } from '../encoding/msgpack.js'
import type { ChunkRef } from './item.js'
import { COLUMNS, FileTable, KEY_LENGTH, type FileIdentity } from './files-table.js'
import { FilesSpill } from './files-spill.js'
import * as path from 'node:path'

export type { FileIdentity } from './files-table.js'

const VERSION = 3
/** Bytes of a column read at once while loading. */
const PIECE_BYTES = 1024 * 1024
export const DEFAULT_FILES_CACHE_TTL = 20

export class FilesCache {
  private table = new FileTable()
  /** Entries remembered in this backup, made at the first; none without a file to save to. */
  private spill: FilesSpill | null = null
  /** The spill could not be made or written (the cache directory unwritable or full): this backup's new entries are lost, as with no cache. */
  private spillFailed = false
  /** Something was remembered or forgotten since the load. */
  private changed = false
  private loading: Promise<void> | null = null
  /** Keys touched before the cache was loaded, KEY_LENGTH bytes each; null once loaded. */
  private touchedEarly: Buffer | null = Buffer.alloc(0)
  private touchedEarlyLength = 0
  /** The key being looked up, as the table's words, and the same memory as bytes. */
  private readonly key = new Uint32Array(KEY_LENGTH / 4)
  private readonly keyBytes = Buffer.from(this.key.buffer)

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
      const early = this.touchedEarly!
      this.touchedEarly = null
      for (let at = 0; at < this.touchedEarlyLength; at += KEY_LENGTH) {
        early.copy(this.keyBytes, 0, at, at + KEY_LENGTH)
        this.touchKey()
      }
    })
    return this.loading
  }

  /** The chunks the file had, if nothing about it changed and `exists` confirms every chunk. */
  lookup(absPath: Buffer, now: FileIdentity, exists: (id: Buffer) => boolean): ChunkRef[] | null {
    if (!this.loaded) throw new Error('FilesCache.lookup before ready()')
    const row = this.table.find(this.keyOf(absPath))
    if (row < 0 || !this.table.sameFile(row, now)) return null
    const refs = this.table.chunks(row)
    if (!refs.every((r) => exists(r.id))) return null
    this.table.markSeen(row)
    return refs
  }

  /** Keeps the file's entry from ageing: its directory's tree was taken whole from the tree cache. */
  touch(absPath: Buffer): void {
    this.keyOf(absPath)
    let early = this.touchedEarly
    if (early === null) {
      this.touchKey()
      return
    }
    if (this.touchedEarlyLength === early.length) {
      const grown = Buffer.alloc(Math.max(64 * KEY_LENGTH, early.length * 2))
      early.copy(grown)
      this.touchedEarly = early = grown
    }
    this.keyBytes.copy(early, this.touchedEarlyLength)
    this.touchedEarlyLength += KEY_LENGTH
  }

  /** Marks the entry of the key in this.key seen. */
  private touchKey(): void {
    const row = this.table.find(this.key)
    if (row >= 0) this.table.markSeen(row)
  }

  /**
   * Records what a file was stored as, for the next backup (after save()): its entry leaves the table,
   * and the new one is spilled. Skipped for files modified since `backupStartNs`.
   */
  remember(absPath: Buffer, now: FileIdentity, chunks: readonly ChunkRef[], backupStartNs: bigint): void {
    const key = this.keyOf(absPath)
    this.changed = true
    this.table.delete(key)
    if (now.mtimeNs >= backupStartNs || this.file === null || this.spillFailed) return
    try {
      this.spill ??= FilesSpill.create(path.dirname(this.file))
      this.spill.add(key, now, chunks)
    } catch {
      this.close()
      this.spillFailed = true
    }
  }

  /** Drops what this backup remembered, if it was not saved (a failed backup). */
  close(): void {
    this.spill?.close()
    this.spill = null
  }

  /** Ages unseen entries, drops the old ones, and writes the cache (unless it would write what it read). */
  async save(): Promise<void> {
    if (!this.file || !this.loaded) return
    if (!this.changed && this.table.allSeenAtAgeZero()) return
    const { count, chunks } = this.table.savedCounts(this.ttl)
    const spill = this.spill
    const header = framedHeader([VERSION, count + (spill?.count ?? 0), chunks + (spill?.chunks ?? 0)])
    const table = this.table
    const ttl = this.ttl
    const piece = Buffer.allocUnsafeSlow(PIECE_BYTES)
    try {
      await writeCheckedParts(this.file, (function* () {
        yield* header
        for (const [name] of COLUMNS) {
          yield* table.savedColumn(name, ttl, piece)
          if (spill) yield* spill.column(name, piece)
        }
      })())
    } finally {
      this.close()
    }
  }

  /** A damaged or missing cache only costs a full read of the files. */
  private async read(file: string): Promise<void> {
    this.table = (await readTable(file)) ?? new FileTable()
  }

  /**
   * Sets this.key to the cache key of `absPath`. Through pathKey's string:
   * a digest as a Buffer costs 0.8 µs here against 0.33 µs for the string
   * and a copy, for every file of every backup.
   */
  private keyOf(absPath: Buffer): Uint32Array {
    this.keyBytes.write(pathKey(absPath), 0, KEY_LENGTH, 'latin1')
    return this.key
  }
}

/** The table of a version 3 file, read a piece at a time; null for anything else. */
async function readTable(file: string): Promise<FileTable | null> {
  const reader = await CheckedReader.open(file)
  if (reader === null) return null
  try {
    const headerLength = (await reader.read(4)).readUInt32LE(0)
    if (headerLength > reader.size) return null
    const header = unpack(Buffer.from(await reader.read(headerLength))) as unknown
    if (!Array.isArray(header) || header.length !== 3 || header[0] !== VERSION) return null
    const [, count, chunks] = header as unknown[]
    if (!Number.isSafeInteger(count) || !Number.isSafeInteger(chunks) || (count as number) < 0 || (chunks as number) < 0) return null
    const values = (per: 'entry' | 'chunk'): number => (per === 'entry' ? (count as number) : (chunks as number))
    const bodyLength = COLUMNS.reduce((sum, [, width, per]) => sum + width * values(per), 0)
    if (reader.remaining !== bodyLength) return null
    const loader = FileTable.loader(count as number, chunks as number)
    for (const [name, width, per] of COLUMNS) {
      const step = Math.floor(PIECE_BYTES / width)
      for (let first = 0; first < values(per); first += step) loader.feed(name, first, await reader.read(Math.min(step, values(per) - first) * width))
    }
    return (await reader.intact()) ? loader.finish() : null
  } catch {
    return null // unreadable, or not msgpack where the header should be
  } finally {
    await reader.close()
  }
}

/**
 * The cache key of an absolute path (also the tree cache's): the first 16
 * bytes of SHA-256, as a latin1 string. crypto.hash, not createHash: a
 * one-shot call costs 0.85 µs here against 5 µs, for every file of every
 * backup.
 */
export function pathKey(absPath: Buffer): string {
  return hash('sha256', absPath, 'binary').slice(0, 16) // 'binary' is latin1
}
