/**
 * Loads sealed blobs with as few storage reads as possible: the loads asked
 * for during one turn of the event loop are grouped by pack, sorted by
 * offset, and neighbours (at most MAX_GAP bytes apart, at most MAX_SPAN
 * bytes in all) come from one range read. A reader that asks for a
 * directory's subdirectory trees, or for the chunks of a directory's small
 * files, at once thus pays a few reads instead of one per blob; a lone load
 * is one read, as before.
 *
 * Measured on the medium corpus: the chunks of a directory of 1,999 small
 * files lie in 16 runs (16 reads instead of 1,999); subdirectory trees are
 * seldom neighbours (a directory's tree is written after its content), so
 * batches of them save about one read in ten. A wider gap would join more
 * trees but read several times their bytes.
 *
 * A span read that fails is retried blob by blob, so that a damaged or
 * missing blob fails alone. Every blob is still authenticated on its own
 * by whoever opens it.
 */
import type { ChunkLocation } from '../repo/chunk-index.js'
import type { Repository } from '../repo/repository.js'
import { packKey } from '../repo/pack-table.js'
import { BlobType } from '../repo/blob.js'
import type { BlobOpener } from './blob-opener.js'

export interface SealedBlob {
  sealed: Buffer
  rawLength: number
}

interface Pending {
  id: Uint8Array
  resolve: (blob: SealedBlob) => void
  reject: (err: unknown) => void
}

interface Located extends Pending {
  offset: number
  length: number
  rawLength: number
}

/** Bytes between two blobs that are read and thrown away rather than paying a second read. */
const MAX_GAP = 16 * 1024
/** Largest read made of several blobs. */
const MAX_SPAN = 4 * 1024 * 1024
/**
 * Bigger blobs are read alone, into a buffer of their own, which moves to a worker thread without a copy
 * (a slice of a shared span would have to be copied first), and gain little from sharing a read anyway.
 */
const MAX_JOINED = 128 * 1024

export class CoalescingLoader {
  private queue: Pending[] = []

  constructor(private readonly repo: Repository) {}

  /** The sealed bytes of blob `id`, read together with the other blobs asked for in this turn. */
  load(id: Uint8Array): Promise<SealedBlob> {
    return new Promise<SealedBlob>((resolve, reject) => {
      if (this.queue.length === 0) setImmediate(() => void this.flush())
      this.queue.push({ id, resolve, reject })
    })
  }

  private async flush(): Promise<void> {
    const batch = this.queue
    this.queue = []
    let state: Awaited<ReturnType<Repository['index']>>
    try {
      state = await this.repo.index()
    } catch (err) {
      for (const p of batch) p.reject(err)
      return
    }
    let locations: (ChunkLocation | undefined)[]
    try {
      locations = await Promise.all(batch.map((p) => state.locate(p.id)))
    } catch (err) {
      for (const p of batch) p.reject(err)
      return
    }
    const byPack = new Map<number, Located[]>()
    for (const [i, p] of batch.entries()) {
      const loc = locations[i]
      if (!loc) {
        this.loadAlone(p) // the repository refreshes its index, or says the blob is missing
        continue
      }
      let list = byPack.get(loc.pack)
      if (!list) byPack.set(loc.pack, (list = []))
      list.push({ ...p, offset: loc.offset, length: loc.length, rawLength: loc.rawLength })
    }
    for (const [pack, list] of byPack) {
      list.sort((a, b) => a.offset - b.offset)
      for (const span of spans(list)) void this.readSpan(packKey(state.packs.idOf(pack)), span)
    }
  }

  private async readSpan(key: string, span: Located[]): Promise<void> {
    if (span.length === 1) return this.loadAlone(span[0]!)
    const start = span[0]!.offset
    const last = span[span.length - 1]!
    let bytes: Buffer
    try {
      bytes = await this.repo.backend.getRange(key, start, last.offset + last.length - start)
    } catch {
      for (const p of span) this.loadAlone(p)
      return
    }
    for (const p of span) p.resolve({ sealed: bytes.subarray(p.offset - start, p.offset - start + p.length), rawLength: p.rawLength })
  }

  private loadAlone(p: Pending): void {
    this.repo.loadSealedBlob(p.id).then(p.resolve, p.reject)
  }
}

/** Splits blobs sorted by offset into runs that one read each can cover. */
function spans(sorted: Located[]): Located[][] {
  const out: Located[][] = []
  let current: Located[] = []
  let start = 0
  let end = 0
  for (const p of sorted) {
    const first = current[0]
    const joins = first !== undefined && first.length <= MAX_JOINED && p.length <= MAX_JOINED && p.offset - end <= MAX_GAP && p.offset + p.length - start <= MAX_SPAN
    if (first !== undefined && !joins) {
      out.push(current)
      current = []
    }
    if (current.length === 0) start = p.offset
    current.push(p)
    end = p.offset + p.length
  }
  if (current.length > 0) out.push(current)
  return out
}

/** Blobs up to this size are opened on the calling thread: a trip to a worker costs more than opening them (about 15 µs). */
const OPEN_HERE_UP_TO = 128 * 1024

/**
 * A blob loader for makeReaderCaches: reads coalesced as above; big blobs
 * are opened on `opener`'s worker threads (when there is one), small ones
 * here. Measured on 2 cores: 1,999 small chunks opened here took 22–35 ms,
 * through the pool 95–233 ms, for the same main-thread CPU.
 */
export function coalescedBlobLoader(repo: Repository, kind: 'data' | 'tree', opener: BlobOpener | null): (id: Buffer) => Promise<Buffer> {
  const loader = new CoalescingLoader(repo)
  const type = kind === 'data' ? BlobType.Data : BlobType.Tree
  return async (id) => {
    const { sealed, rawLength } = await loader.load(id)
    if (opener && rawLength > OPEN_HERE_UP_TO) return opener.open(type, id, sealed, rawLength)
    // The bytes a read handed over are this blob's alone: decrypted where they are, without a copy, when
    // they then decompress into a buffer of their own (a blob stored as it was would stay a view that
    // keeps the whole range read alive).
    return rawLength > sealed.length ? repo.openBlobInPlace(type, id, sealed, rawLength) : repo.openBlob(type, id, sealed, rawLength)
  }
}
