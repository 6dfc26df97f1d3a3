/**
 * The chunk index a client holds: every blob id the repository has, and
 * where it lives. Built from the repository's index objects and kept in the
 * cache directory between runs, so that opening a repository reads only the
 * index objects other clients wrote since, never the packs.
 *
 * Cache file, written atomically (lib/cache/cache-file.ts):
 *   headerLength u32 LE | header | SHA-256(header) | ChunkIndex bytes
 * where header = msgpack [version, repoId, mergedIndexKeys, packIds] and the
 * ChunkIndex bytes carry their own SHA-256 and list blobs in id order
 * (serialized-index.ts). A writer reads the table into memory a megabyte at a
 * time (a million blobs are a 48 MB file, never held whole beside the
 * 103 MB table it becomes); a mount keeps it on disk and looks blobs up in
 * the file (index-file.ts). A file of another layout or version, damaged or
 * unreadable, reads as null and is rebuilt.
 */
import { createHash } from 'node:crypto'
import { promises as fs } from 'node:fs'
import { framedHeader, writeCacheParts } from '../cache/cache-file.js'
import { unpack } from '../encoding/msgpack.js'
import type { Sealer } from '../crypto/sealer.js'
import type { Backend } from '../storage/backend.js'
import { ChunkIndex, type ChunkLocation } from './chunk-index.js'
import { IndexFile, readExactly } from './index-file.js'
import { PackTable } from './pack-table.js'
import { INDEX_PREFIX, indexedBlobs, type IndexedBlob } from './index-objects.js'

const CACHE_VERSION = 3
/** Bytes of the table read at a time. */
const PIECE_BYTES = 1024 * 1024
/** The chunk index cache's file name in a repository's cache folder. */
export const CHUNKS_CACHE = 'chunks'
const PARALLEL_LOADS = 8
/** Bytes an index object written by encodePackEntry takes for each blob (a few more per pack, and the seal). */
const INDEX_BYTES_PER_BLOB = 51

export class IndexState {
  constructor(
    /** Every blob; or, beside `file`, those of the index objects merged after the file was written. */
    readonly index = new ChunkIndex(),
    readonly packs = new PackTable(),
    readonly merged = new Set<string>(),
    /** The cache file the other blobs are looked up in (a state read for lookups), or null. */
    readonly file: IndexFile | null = null,
  ) {}

  /** Where blob `id` is, or undefined when the index does not know it. */
  async locate(id: Uint8Array): Promise<ChunkLocation | undefined> {
    return this.index.get(id) ?? (await this.file?.get(id))
  }

  /** Releases the cache file a state read for lookups keeps open. */
  async close(): Promise<void> {
    await this.file?.close()
  }

  /** Adds the blobs an index object lists, and notes it as merged. */
  add(key: string, blobs: Iterable<IndexedBlob>): void {
    let packId = ''
    let pack = 0
    for (const b of blobs) {
      if (b.packId !== packId) pack = this.packs.numberOf((packId = b.packId))
      this.index.set(b.id, { pack, offset: b.offset, length: b.length, rawLength: b.rawLength })
    }
    this.merged.add(key)
  }
}

/** Brings the cached index up to date with the repository's index objects. */
export async function syncIndex(
  backend: Backend,
  sealer: Sealer,
  repoId: string,
  cacheFile: string | null,
  signal?: AbortSignal,
  /** The cache as readIndexCache read it already (Repository.open's preloadIndex), or the state to bring up to date. */
  cached?: Promise<IndexState | null>,
  /** Look blobs up in the cache file rather than load it (readIndexCache). */
  lookups = false,
): Promise<IndexState> {
  const present = new Map<string, number>()
  for await (const info of backend.list(INDEX_PREFIX)) present.set(info.key, info.size)

  // An index object a state merged has gone: a compaction rewrote the index,
  // so the state's locations may be stale.
  const stale = (state: IndexState): boolean => [...state.merged].some((key) => !present.has(key))
  const unmerged = (state: IndexState | null): string[] => [...present.keys()].filter((key) => !state?.merged.has(key))
  let found = (cached ? await cached : null) ?? (cacheFile ? await readIndexCache(cacheFile, repoId, lookups) : null)
  if (found && stale(found)) {
    await found.close() // start over from the repository
    found = null
  }
  // A state looking blobs up in a cache file that has since been replaced (this client backed up while a
  // mount ran) moves to the newer file when it holds all the state knew: what the newer one lacks is all
  // the state then keeps in memory, so a mount that runs for months stays as small as a new one.
  if (found?.file && cacheFile && unmerged(found).length > 0 && (await found.file.replacedAt(cacheFile))) {
    const newer = await readIndexCache(cacheFile, repoId, true)
    if (newer && !stale(newer) && [...found.merged].every((key) => newer.merged.has(key))) {
      await found.close()
      found = newer
    } else {
      await newer?.close()
    }
  }
  const missing = unmerged(found)
  // Built from nothing, the table is sized up front from the objects' sizes (cairn writes 51 bytes a
  // blob): growing it holds the old table beside one twice its size, 150 MB at a million blobs.
  const state = found ?? new IndexState(new ChunkIndex(missing.reduce((n, key) => n + present.get(key)!, 0) / INDEX_BYTES_PER_BLOB))

  for (let i = 0; i < missing.length; i += PARALLEL_LOADS) {
    signal?.throwIfAborted()
    const batch = missing.slice(i, i + PARALLEL_LOADS)
    const loaded = await Promise.all(batch.map((key) => backend.get(key)))
    batch.forEach((key, j) => state.add(key, indexedBlobs(loaded[j]!, sealer, key)))
  }
  // A state that looks blobs up in a file keeps what it merged since in memory: writing it back would mean
  // merging the file with it, and the next backup of this client writes the cache anyway.
  if (cacheFile && missing.length > 0 && state.file === null) {
    await writeCache(cacheFile, repoId, state)
    // A mount that had to build the index serves lookups from the file it wrote, and lets the table go.
    if (lookups) return (await readIndexCache(cacheFile, repoId, true)) ?? state
  }
  return state
}

export async function writeCache(cacheFile: string, repoId: string, state: IndexState): Promise<void> {
  const [headerLength, header] = framedHeader([CACHE_VERSION, repoId, [...state.merged], [...state.packs.all()]])
  const headerSum = createHash('sha256').update(header).digest()
  await writeCacheParts(cacheFile, (function* () {
    yield* [headerLength, header, headerSum]
    yield* state.index.serializedPieces()
  })())
}

/**
 * The cached index, or null when the cache is missing, damaged or of another repository (it is then
 * rebuilt). Never rejects. `lookups`: checked, then left in the file for lookups (IndexFile), which keeps
 * it open; otherwise loaded into memory.
 */
export async function readIndexCache(cacheFile: string, repoId: string, lookups = false): Promise<IndexState | null> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(cacheFile, 'r')
  } catch {
    return null
  }
  let keepOpen = false
  try {
    const stat = await handle.stat()
    const size = stat.size
    if (size < 4) return null
    const headerLength = (await readExactly(handle, 0, 4)).readUInt32LE(0)
    const tableAt = 4 + headerLength + 32
    if (tableAt > size) return null
    const header = await readExactly(handle, 4, headerLength)
    if (!createHash('sha256').update(header).digest().equals(await readExactly(handle, 4 + headerLength, 32))) return null
    const [version, id, merged, packIds] = unpack(header) as [number, string, string[], string[]]
    if (version !== CACHE_VERSION || id !== repoId || !Array.isArray(merged) || !Array.isArray(packIds)) return null
    const packs = new PackTable()
    for (const packId of packIds) packs.numberOf(packId)
    // For lookups the table stays in the file (IndexFile); otherwise it is loaded. Either way all of it is checked.
    const loader = lookups ? IndexFile.loader(handle, tableAt, stat) : ChunkIndex.loader(size - tableAt)
    const piece = Buffer.allocUnsafe(Math.min(PIECE_BYTES, size - tableAt))
    for (let at = tableAt; at < size; at += piece.length) loader.feed(await readExactly(handle, at, Math.min(piece.length, size - at), piece))
    const table = loader.finish()
    if (table instanceof ChunkIndex) return new IndexState(table, packs, new Set(merged))
    keepOpen = true
    return new IndexState(new ChunkIndex(), packs, new Set(merged), table)
  } catch {
    return null
  } finally {
    if (!keepOpen) await handle.close().catch(() => undefined)
  }
}
