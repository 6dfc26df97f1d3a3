/**
 * Writes blobs into packs and commits them: packs first, then one index
 * object naming them, then (under the lock) the manifest. A crash at any
 * point leaves the last committed state intact; unreferenced packs are
 * reclaimed by a later compaction.
 */
import { randomBytes } from 'node:crypto'
import { encodePayload, type CompressionSpec } from '../compress/codec.js'
import { blobAad, BlobType } from './blob.js'
import { encodePackHeader, type PackedBlob } from './pack-format.js'
import { packKey } from './pack-table.js'
import { encodeIndexObject, newIndexKey, type PackEntry } from './index-objects.js'
import { writeCache, type IndexState } from './index-cache.js'
import type { Repository } from './repository.js'
import type { ArchiveRef } from './manifest.js'

/** Packs being uploaded at once: enough to overlap fsync with the work (measured here: 16 MiB + fsync ≈ 50 ms); more would only hold memory. */
const MAX_UPLOADS = 3

export interface WriteStats {
  /** Blobs and bytes (as stored) that this writer added to the repository. */
  newBlobs: number
  newBytes: number
}

class OpenPack {
  readonly id = randomBytes(32).toString('hex')
  readonly parts: Buffer[] = []
  readonly blobs: PackedBlob[] = []
  size = 0
}

export class RepositoryWriter {
  readonly stats: WriteStats = { newBlobs: 0, newBytes: 0 }
  private current: OpenPack | null = null
  private readonly written: PackEntry[] = []
  private readonly uploads = new Set<Promise<void>>()
  private failure: unknown = null

  private constructor(readonly repo: Repository, private readonly state: IndexState) {}

  static async start(repo: Repository, signal?: AbortSignal): Promise<RepositoryWriter> {
    return new RepositoryWriter(repo, await repo.index(signal))
  }

  /** True when the repository (or this writer, so far) already has the blob. */
  has(id: Uint8Array): boolean {
    return this.state.index.has(id)
  }

  /** Bytes the blob takes in the repository (0 when unknown, e.g. the zero chunk). */
  storedLength(id: Uint8Array): number {
    return this.state.index.get(id)?.length ?? 0
  }

  /** Adds a blob that is already compressed and sealed (by a pipeline worker). */
  async addSealed(type: BlobType, id: Buffer, sealed: Buffer, rawLength: number): Promise<void> {
    if (this.failure) throw this.failure
    if (this.state.index.has(id)) return
    const pack = (this.current ??= new OpenPack())
    const entry: PackedBlob = { type, id, offset: pack.size, length: sealed.length, rawLength }
    pack.parts.push(sealed)
    pack.blobs.push(entry)
    pack.size += sealed.length
    this.state.index.set(id, { pack: this.state.packs.numberOf(pack.id), offset: entry.offset, length: entry.length, rawLength })
    this.stats.newBlobs++
    this.stats.newBytes += sealed.length
    if (pack.size >= this.repo.config.packSize) await this.closePack()
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

  private async closePack(): Promise<void> {
    const pack = this.current
    if (!pack) return
    this.current = null
    pack.parts.push(encodePackHeader(pack.blobs, this.repo.sealer))
    while (this.uploads.size >= MAX_UPLOADS) await Promise.race(this.uploads)
    const upload = this.repo.backend.put(packKey(pack.id), pack.parts).then(
      () => {
        this.written.push({ packId: pack.id, blobs: pack.blobs })
      },
      (err: unknown) => {
        this.failure ??= err
      },
    )
    const tracked = upload.finally(() => this.uploads.delete(tracked))
    this.uploads.add(tracked)
  }

  /** Writes everything still buffered and waits for the uploads. */
  async flush(): Promise<void> {
    await this.closePack()
    await Promise.all(this.uploads)
    if (this.failure) throw this.failure
  }

  /** Makes the written blobs durable and visible, then adds the archive to the manifest. */
  async commit(archive: ArchiveRef): Promise<void> {
    await this.flush()
    const indexKey = newIndexKey()
    if (this.written.length > 0) {
      await this.repo.backend.put(indexKey, encodeIndexObject(this.written, this.repo.sealer))
      this.state.merged.add(indexKey)
    }
    await this.repo.addArchive(archive)
    const cacheFile = this.repo.cacheFile('chunks')
    if (cacheFile) await writeCache(cacheFile, this.repo.id, this.state)
  }

  /** Gives up: waits for uploads in flight and forgets what this writer added to the in-memory index. */
  async abort(): Promise<void> {
    await Promise.allSettled(this.uploads)
    await this.repo.refreshIndex().catch(() => undefined)
  }
}
