/**
 * The chunk index a client holds: every blob id the repository has, and
 * where it lives. Built from the repository's index objects and kept in the
 * cache directory between runs, so that opening a repository reads only the
 * index objects other clients wrote since, never the packs.
 *
 * Cache file: [version, repoId, mergedIndexKeys, packIds, ChunkIndex bytes]
 * (lib/cache/cache-file.ts adds the checksum and writes it atomically).
 */
import { readCacheFile, writeCacheFile } from '../cache/cache-file.js'
import type { Sealer } from '../crypto/sealer.js'
import type { Backend } from '../storage/backend.js'
import { ChunkIndex } from './chunk-index.js'
import { PackTable } from './pack-table.js'
import { INDEX_PREFIX, decodeIndexObject, type PackEntry } from './index-objects.js'

const CACHE_VERSION = 1
/** The chunk index cache's file name in a repository's cache folder. */
export const CHUNKS_CACHE = 'chunks'
const PARALLEL_LOADS = 8

export class IndexState {
  constructor(
    readonly index = new ChunkIndex(),
    readonly packs = new PackTable(),
    readonly merged = new Set<string>(),
  ) {}

  /** Adds what an index object (or a commit of ours) says. */
  add(key: string, entries: readonly PackEntry[]): void {
    for (const entry of entries) {
      const pack = this.packs.numberOf(entry.packId)
      for (const b of entry.blobs) this.index.set(b.id, { pack, offset: b.offset, length: b.length, rawLength: b.rawLength })
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
  /** The cache as readIndexCache read it already (Repository.open's preloadIndex). */
  cached?: Promise<IndexState | null>,
): Promise<IndexState> {
  const present = new Set<string>()
  for await (const info of backend.list(INDEX_PREFIX)) present.add(info.key)

  let state = cached !== undefined ? await cached : cacheFile ? await readIndexCache(cacheFile, repoId) : null
  // An index object we merged has gone: a compaction rewrote the index,
  // so the cached locations may be stale. Start over from the repository.
  if (state && [...state.merged].some((key) => !present.has(key))) state = null
  state ??= new IndexState()
  const missing = [...present].filter((key) => !state.merged.has(key))

  for (let i = 0; i < missing.length; i += PARALLEL_LOADS) {
    signal?.throwIfAborted()
    const batch = missing.slice(i, i + PARALLEL_LOADS)
    const loaded = await Promise.all(batch.map(async (key) => decodeIndexObject(await backend.get(key), sealer, key)))
    batch.forEach((key, j) => state.add(key, loaded[j]!))
  }
  if (cacheFile && missing.length > 0) await writeCache(cacheFile, repoId, state)
  return state
}

export async function writeCache(cacheFile: string, repoId: string, state: IndexState): Promise<void> {
  await writeCacheFile(cacheFile, [CACHE_VERSION, repoId, [...state.merged], [...state.packs.all()], state.index.serialize()])
}

/** The cached index, or null when the cache is missing, damaged or of another repository (it is then rebuilt). Never rejects. */
export async function readIndexCache(cacheFile: string, repoId: string): Promise<IndexState | null> {
  const value = await readCacheFile(cacheFile)
  if (!Array.isArray(value)) return null
  try {
    const [version, id, merged, packIds, table] = value as [number, string, string[], string[], Buffer]
    if (version !== CACHE_VERSION || id !== repoId) return null
    const packs = new PackTable()
    for (const packId of packIds) packs.numberOf(packId)
    return new IndexState(ChunkIndex.deserialize(table), packs, new Set(merged))
  } catch {
    return null
  }
}
