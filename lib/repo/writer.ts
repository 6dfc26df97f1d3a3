/**
 * Writes blobs into packs and commits them: packs first, then index objects
 * naming them, then (under the lock) the manifest. A crash at any point
 * leaves the last committed state intact; unreferenced packs are reclaimed
 * by a later compaction.
 *
 * The index objects are written as packs finish, each once its entries
 * pass INDEX_SLICE_BYTES, not all at the commit: a writer then holds at
 * most that much of its index, and a backup that dies keeps what its index
 * objects name, so running it again stores only the rest.
 */
import { randomBytes } from 'node:crypto'
import { encodePayload, type CompressionSpec } from '../compress/codec.js'
import { blobAad, BlobType } from './blob.js'
import { encodePackHeader, type PackedBlob } from './pack-format.js'
import { packKey } from './pack-table.js'
import type { Backend, ObjectUpload } from '../storage/backend.js'
import { encodeIndexObject, encodePackEntry, newIndexKey } from './index-objects.js'
import { CHUNKS_CACHE, writeCache, type IndexState } from './index-cache.js'
import type { Repository } from './repository.js'
import type { ArchiveRef } from './manifest.js'

/** Packs finishing (fsync, rename) at once while the next fills: measured here, 16 MiB + fsync ≈ 50 ms. */
const MAX_FINISHING = 3
/** Sealed blobs are gathered into writes of about this size (one writev each). */
const APPEND_BYTES = 1024 * 1024
/** Bytes queued for writing before addSealed waits for the disk: the bound on a pack's memory. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024
/**
 * Finished packs' index entries (51 bytes a blob) gathered before they are written as an index object:
 * about 20,000 blobs. Holding a first backup's whole index until the commit, and sealing a copy of it
 * there, made the commit the peak of a first backup of the medium corpus (5.4 MiB of entries, twice).
 */
const INDEX_SLICE_BYTES = 1024 * 1024

export interface WriterOptions {
  signal?: AbortSignal
  /** Entries gathered before an index object is written (default INDEX_SLICE_BYTES; tests set less). */
  indexSliceBytes?: number
}

export interface WriteStats {
  /** Blobs and bytes (as stored) that this writer added to the repository. */
  newBlobs: number
  newBytes: number
}

/**
 * A pack being written: its blobs go to the backend as they come, in writes
 * of about APPEND_BYTES, so a pack is never held in memory whole. What is
 * gathered is written by the end of the event-loop turn even when smaller:
 * the pipeline's workers wait for their blobs' room (sealed-ring.ts), so a
 * blob must not sit here waiting for more to come.
 */
class OpenPack {
  readonly id = randomBytes(32).toString('hex')
  readonly blobs: PackedBlob[] = []
  size = 0
  private readonly upload: ObjectUpload
  private gathered: Uint8Array[] = []
  private gatheredBytes = 0
  /** Called once the gathered blobs are written (or their write failed). */
  private gatheredWritten: (() => void)[] = []
  private flushScheduled = false
  private queuedBytes = 0
  private writes: Promise<void> = Promise.resolve()

  constructor(backend: Backend) {
    this.upload = backend.upload(packKey(this.id), { readSoon: false })
  }

  add(blob: PackedBlob, data: Uint8Array, written?: () => void): void {
    this.blobs.push(blob)
    this.size += blob.length
    this.gathered.push(data)
    this.gatheredBytes += blob.length
    if (written) this.gatheredWritten.push(written)
    if (this.gatheredBytes >= APPEND_BYTES) this.writeGathered()
    else if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => {
        this.flushScheduled = false
        if (this.gatheredBytes > 0) this.writeGathered()
      })
    }
  }

  /** Undefined while the bytes waiting for the disk are within MAX_QUEUED_BYTES; else resolves once they are written, or rejects if a write failed. */
  drained(): Promise<void> | undefined {
    return this.queuedBytes > MAX_QUEUED_BYTES ? this.writes : undefined
  }

  /** Appends the header, then makes the pack durable under its name. */
  async finish(header: Buffer): Promise<void> {
    this.gathered.push(header)
    this.gatheredBytes += header.length
    this.writeGathered()
    await this.writes
    await this.upload.finish()
  }

  /** Resolves once every blob added so far is written out (or its write failed: finish() reports that). */
  async writtenOut(): Promise<void> {
    if (this.gatheredBytes > 0) this.writeGathered()
    await this.writes.catch(() => undefined)
  }

  /** Removes what was written of the pack. */
  async abort(): Promise<void> {
    await this.writes.catch(() => undefined)
    await this.upload.abort()
  }

  private writeGathered(): void {
    const parts = this.gathered
    const bytes = this.gatheredBytes
    const written = this.gatheredWritten
    this.gathered = []
    this.gatheredBytes = 0
    this.gatheredWritten = []
    this.queuedBytes += bytes
    this.writes = this.writes
      .then(async () => {
        await this.upload.append(parts)
        this.queuedBytes -= bytes
      })
      .finally(() => written.forEach((w) => w()))
    this.writes.catch(() => undefined) // a failed write surfaces through drained() or finish()
  }
}

type PackKind = 'data' | 'metadata'

function packKindOf(type: BlobType): PackKind {
  return type === BlobType.Data ? 'data' : 'metadata'
}

export class RepositoryWriter {
  readonly stats: WriteStats = { newBlobs: 0, newBytes: 0 }
  /**
   * Packs being filled: file data in one, metadata (trees, archives) in
   * another, as restic does. Trees then lie together in a few small packs,
   * so a reader walking an archive (the mount, list) reads them from a small
   * part of the repository instead of scattered between gigabytes of data,
   * and the page cache and read-ahead serve neighbours.
   */
  private readonly current = new Map<PackKind, OpenPack>()
  /** Finished packs' entries not yet in an index object, already encoded (encodePackEntry). */
  private written: Buffer[] = []
  private writtenBytes = 0
  private readonly finishing = new Set<Promise<void>>()
  /** Index objects being written, one after another. */
  private indexWrites: Promise<void> = Promise.resolve()
  private failure: unknown = null

  private constructor(readonly repo: Repository, private readonly state: IndexState, private readonly indexSliceBytes: number) {}

  static async start(repo: Repository, options: WriterOptions = {}): Promise<RepositoryWriter> {
    const { signal } = options
    const state = await repo.index(signal)
    // A state read for lookups (preloadIndex: 'lookups') leaves most blobs in the cache file; a writer adds to a table in memory.
    return new RepositoryWriter(repo, state.file ? await repo.refreshIndex(signal, true) : state, options.indexSliceBytes ?? INDEX_SLICE_BYTES)
  }

  /** True when the repository (or this writer, so far) already has the blob. */
  has(id: Uint8Array): boolean {
    return this.state.index.has(id)
  }

  /** Bytes the blob takes in the repository (0 when unknown, e.g. the zero chunk). */
  storedLength(id: Uint8Array): number {
    return this.state.index.get(id)?.length ?? 0
  }

  /**
   * Adds a blob that is already compressed and sealed (by a pipeline worker).
   * `written` is called once `sealed` is no longer needed: written, or not
   * needed because the repository has the blob (its memory may then be reused).
   * Returns undefined when the blob is added and nothing needs waiting for,
   * else a promise that resolves once the caller may go on (the pack writer's
   * backpressure). No async function: a first backup adds about 100,000 blobs
   * this way, and a promise each was garbage for the main thread's collector.
   */
  addSealed(type: BlobType, id: Buffer, sealed: Uint8Array, rawLength: number, written?: () => void): Promise<void> | undefined {
    if (this.failure || this.state.index.has(id)) written?.()
    if (this.failure) return Promise.reject(this.failure)
    if (this.state.index.has(id)) return undefined
    const length = sealed.length
    const kind = packKindOf(type)
    let pack = this.current.get(kind)
    if (!pack) this.current.set(kind, (pack = new OpenPack(this.repo.backend)))
    const entry: PackedBlob = { type, id, offset: pack.size, length, rawLength }
    this.state.index.set(id, { pack: this.state.packs.numberOf(pack.id), offset: entry.offset, length, rawLength })
    this.stats.newBlobs++
    this.stats.newBytes += length
    pack.add(entry, sealed, written)
    return pack.size >= this.repo.config.packSize ? this.closePack(kind) : pack.drained()
  }

  /** Compresses, seals and adds a blob made on the main thread (trees, archives). Returns its id. */
  async storeBlob(type: BlobType, plain: Buffer, compression: CompressionSpec): Promise<Buffer> {
    const id = this.repo.idOf(plain)
    if (!this.state.index.has(id)) {
      const payload = encodePayload(plain, compression, this.repo.encryption !== 'none')
      await this.addSealed(type, id, this.repo.sealer.seal(blobAad(type, id), payload), plain.length)
    }
    return id
  }

  private async closePack(kind: PackKind): Promise<void> {
    const pack = this.current.get(kind)
    if (!pack) return
    this.current.delete(kind)
    const header = encodePackHeader(pack.blobs, this.repo.sealer)
    while (this.finishing.size >= MAX_FINISHING) await Promise.race(this.finishing)
    const finished = pack.finish(header).then(
      () => {
        const entry = encodePackEntry(pack.id, pack.blobs)
        this.written.push(entry)
        this.writtenBytes += entry.length
        if (this.writtenBytes >= this.indexSliceBytes) this.writeIndexObject()
      },
      async (err: unknown) => {
        this.failure ??= err
        await pack.abort()
      },
    )
    const tracked = finished.finally(() => this.finishing.delete(tracked))
    this.finishing.add(tracked)
  }

  /**
   * Resolves once every blob added so far has left the memory it was added in (written, or its write
   * failed), without closing the packs: the pipeline gives its rings back after this.
   */
  async blobsWrittenOut(): Promise<void> {
    await Promise.all([...this.current.values()].map((pack) => pack.writtenOut()))
    await Promise.allSettled(this.finishing)
  }

  /**
   * Writes the gathered entries as an index object, after the ones before it. Its packs are durable:
   * entries are gathered once their pack has finished.
   */
  private writeIndexObject(): void {
    if (this.written.length === 0) return
    const key = newIndexKey()
    const sealed = encodeIndexObject(this.written, this.repo.sealer)
    this.written = []
    this.writtenBytes = 0
    this.indexWrites = this.indexWrites.then(async () => {
      if (this.failure) return
      await this.repo.backend.put(key, sealed)
      this.state.merged.add(key)
    })
    this.indexWrites.catch((err: unknown) => {
      this.failure ??= err
    })
  }

  /** Writes everything still buffered and waits until the packs and the index objects naming them are durable. */
  async flush(): Promise<void> {
    for (const kind of [...this.current.keys()]) await this.closePack(kind)
    await Promise.all(this.finishing)
    this.writeIndexObject()
    await this.indexWrites.catch(() => undefined)
    if (this.failure) throw this.failure
  }

  /** Makes the written blobs durable and visible, then adds the archive to the manifest. */
  async commit(archive: ArchiveRef): Promise<void> {
    await this.flush()
    await this.repo.addArchive(archive)
    const cacheFile = this.repo.cacheFile(CHUNKS_CACHE)
    if (cacheFile) await writeCache(cacheFile, this.repo.id, this.state)
  }

  /** Gives up: drops the open packs, waits for packs finishing and forgets what this writer added to the in-memory index. */
  async abort(): Promise<void> {
    const open = [...this.current.values()]
    this.current.clear()
    await Promise.all(open.map((pack) => pack.abort()))
    await Promise.allSettled(this.finishing)
    await this.indexWrites.catch(() => undefined)
    await this.repo.refreshIndex().catch(() => undefined)
  }
}
