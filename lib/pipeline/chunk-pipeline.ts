/**
 * The backup data path: read → chunk (main thread) → id, compress, seal
 * (worker threads) → pack (main thread).
 *
 * Data is read into shared windows (windows.ts) and never copied until a
 * worker produces the sealed blob. A large chunk makes at most two trips to
 * a worker: one to learn its id and, only if the repository does not have
 * it, one to compress and seal it, so known data is never compressed. A
 * small chunk makes one trip (id and sealed blob at once), which costs less
 * than a second message.
 *
 * Two ways in: `storeStream` chunks a stream of any size (one at a time;
 * calls queue), and `storeSmallFile` reads a file that is one chunk anyway
 * with a single read; many of those run at once, which is what makes trees
 * of small files fast (their cost is syscall latency, not bytes).
 */
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import type { FileHandle } from 'node:fs/promises'
import { CairnError } from '../errors.js'
import { Chunker } from '../chunker/fastcdc.js'
import type { CompressionSpec } from '../compress/codec.js'
import { BlobType } from '../repo/blob.js'
import type { RepositoryWriter } from '../repo/writer.js'
import { ZERO_CHUNK_ID, type ChunkRef } from '../archive/item.js'
import { WindowPool, type ReadWindow } from './windows.js'
import type { WorkerReply, WorkerRequest, WorkerSetup } from './messages.js'

/** Reads at most `length` bytes into buf at offset; 0 means end of data. */
export type ReadFn = (buf: Buffer, offset: number, length: number) => Promise<number>

const READ_SIZE = 1024 * 1024
const WINDOW_COUNT = 4
/** Chunks up to this size make a single trip to a worker. */
const ONE_TRIP_LIMIT = 256 * 1024

interface Job {
  resolve: (reply: WorkerReply) => void
  reject: (err: unknown) => void
}

export interface PipelineOptions {
  compression: CompressionSpec
  /** Worker threads (default: one per core, at most 4). */
  workers?: number
}

export interface SmallFileRead {
  /** Bytes read: less than the expected size when the file shrank. */
  bytesRead: number
  stored: Promise<ChunkRef[]>
}

export class ChunkPipeline {
  /** Files up to this size are read with one read and stored as one chunk. */
  readonly smallFileLimit: number
  private readonly chunker: Chunker
  private readonly pool: WindowPool
  private readonly workers: Worker[]
  private readonly jobs = new Map<number, Job>()
  private readonly inFlight = new Map<string, Promise<void>>()
  private nextJob = 0
  private nextWorker = 0
  private streamWindow: ReadWindow | null = null
  private smallWindow: ReadWindow | null = null
  private streamQueue: Promise<unknown> = Promise.resolve()
  private reserveQueue: Promise<unknown> = Promise.resolve()
  private broken: unknown = null

  constructor(private readonly writer: RepositoryWriter, options: PipelineOptions) {
    const repo = writer.repo
    const params = repo.config.chunker
    this.chunker = new Chunker(repo.chunkerSeed, params)
    // Below minSize the chunker never cuts, so such a file is one chunk.
    this.smallFileLimit = Math.min(params.minSize - 1, READ_SIZE)
    // A window must hold a whole maximal chunk plus reads, so a cut can always be found.
    this.pool = new WindowPool(WINDOW_COUNT, params.maxSize + READ_SIZE * 4)
    const km = repo.keyMaterial
    const setup: WorkerSetup = {
      mode: repo.encryption,
      keys: km && { encKey: km.encKey, macKey: km.macKey, chunkerSeed: km.chunkerSeed },
      compression: options.compression,
      windows: this.pool.windows.map((w) => w.shared),
    }
    const count = options.workers ?? Math.min(4, Math.max(1, availableParallelism()))
    this.workers = Array.from({ length: count }, () => {
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: setup })
      worker.on('message', (reply: WorkerReply) => this.settle(reply))
      worker.on('error', (err) => this.fail(err))
      return worker
    })
  }

  /**
   * Reads and chunks everything `read` yields. Resolves once the data is
   * read (so the caller can go on to the next file); `stored` resolves to
   * the chunk list once every chunk is in the repository. Overlapping calls
   * run one after the other.
   */
  storeStream(read: ReadFn, signal?: AbortSignal): Promise<{ stored: Promise<ChunkRef[]> }> {
    const run = this.streamQueue.then(() => this.chunkStream(read, signal))
    this.streamQueue = run.catch(() => undefined)
    return run
  }

  /**
   * Reads a file of at most `smallFileLimit` bytes with one read and stores
   * it as one chunk. Returns null when the file turned out bigger than
   * `size` (it grew): the caller then streams it instead.
   */
  async storeSmallFile(handle: FileHandle, size: number): Promise<SmallFileRead | null> {
    if (this.broken) throw this.broken
    // One byte more than expected tells a file that grew.
    const { window: w, offset } = await this.reserve(size + 1)
    try {
      const { bytesRead } = await handle.read(w.buf, offset, size + 1, 0)
      if (bytesRead > size) return null
      const stored = bytesRead === 0 ? Promise.resolve([]) : Promise.all([this.storeChunk(w, offset, bytesRead)])
      stored.catch(() => undefined) // awaited by the caller later
      return { bytesRead, stored }
    } finally {
      this.pool.chunkDone(w) // the reservation's hold
    }
  }

  /** Space for a small file in the shared small-file window; reservations are made one at a time. */
  private reserve(size: number): Promise<{ window: ReadWindow; offset: number }> {
    const run = this.reserveQueue.then(async () => {
      let w = this.smallWindow
      if (!w || w.buf.length - w.fill < size) {
        if (w) this.pool.retire(w)
        this.smallWindow = null
        w = this.smallWindow = await this.pool.acquire()
      }
      const offset = w.fill
      w.fill += size
      w.pending++
      return { window: w, offset }
    })
    this.reserveQueue = run.catch(() => undefined)
    return run
  }

  private async chunkStream(read: ReadFn, signal?: AbortSignal): Promise<{ stored: Promise<ChunkRef[]> }> {
    const refs: Promise<ChunkRef>[] = []
    let w = this.streamWindow ?? (await this.pool.acquire())
    this.streamWindow = null
    let start = w.fill
    try {
      for (;;) {
        signal?.throwIfAborted()
        if (this.broken) throw this.broken
        if (w.fill === w.buf.length) {
          w = await this.carryOver(w, start)
          start = 0
        }
        const n = await read(w.buf, w.fill, Math.min(READ_SIZE, w.buf.length - w.fill))
        w.fill += n
        const eof = n === 0
        for (;;) {
          const length = this.chunker.cut(w.buf, start, w.fill, eof)
          if (length <= 0) break
          refs.push(this.storeChunk(w, start, length))
          start += length
        }
        if (eof) break
      }
    } finally {
      // What was read but not chunked (an error mid-file) is dropped.
      w.fill = start
      this.streamWindow = w
    }
    const stored = Promise.all(refs)
    stored.catch(() => undefined) // the caller awaits it later; don't report it as unhandled meanwhile
    return { stored }
  }

  /** Moves the unchunked tail of a full window to a fresh one. */
  private async carryOver(full: ReadWindow, start: number): Promise<ReadWindow> {
    const next = await this.pool.acquire()
    full.buf.copy(next.buf, 0, start, full.fill)
    next.fill = full.fill - start
    this.pool.retire(full)
    return next
  }

  private async storeChunk(w: ReadWindow, offset: number, length: number): Promise<ChunkRef> {
    w.pending++
    try {
      const at = { window: w.index, offset, length }
      if (length <= ONE_TRIP_LIMIT) {
        const reply = await this.request({ op: 'store', job: 0, ...at })
        if (reply.op !== 'store') throw new Error('unexpected worker reply')
        if (reply.id === null) return { id: ZERO_CHUNK_ID, size: length }
        const id = Buffer.from(reply.id)
        await this.keep(id, length, async () => reply.sealed!)
        return { id, size: length }
      }
      const hashed = await this.request({ op: 'hash', job: 0, ...at })
      if (hashed.op !== 'hash') throw new Error('unexpected worker reply')
      if (hashed.id === null) return { id: ZERO_CHUNK_ID, size: length }
      const id = Buffer.from(hashed.id)
      await this.keep(id, length, async () => {
        const reply = await this.request({ op: 'seal', job: 0, ...at, id })
        if (reply.op !== 'seal') throw new Error('unexpected worker reply')
        return reply.sealed
      })
      return { id, size: length }
    } finally {
      this.pool.chunkDone(w)
    }
  }

  /** Adds the chunk to the repository unless it or a chunk in flight already has its id. */
  private async keep(id: Buffer, length: number, sealed: () => Promise<Uint8Array>): Promise<void> {
    if (this.writer.has(id)) return
    const key = id.toString('latin1')
    let stored = this.inFlight.get(key)
    if (!stored) {
      stored = sealed()
        .then((s) => this.writer.addSealed(BlobType.Data, id, Buffer.from(s.buffer, s.byteOffset, s.byteLength), length))
        .finally(() => this.inFlight.delete(key))
      this.inFlight.set(key, stored)
    }
    await stored
  }

  private request(req: WorkerRequest): Promise<WorkerReply> {
    if (this.broken) return Promise.reject(this.broken)
    const job = ++this.nextJob
    req.job = job
    const worker = this.workers[this.nextWorker++ % this.workers.length]!
    return new Promise<WorkerReply>((resolve, reject) => {
      this.jobs.set(job, { resolve, reject })
      worker.postMessage(req)
    })
  }

  private settle(reply: WorkerReply): void {
    const job = this.jobs.get(reply.job)
    if (!job) return
    this.jobs.delete(reply.job)
    if (reply.op === 'error') {
      job.reject(new CairnError((reply.code as CairnError['code']) ?? 'io', reply.message))
    } else {
      job.resolve(reply)
    }
  }

  private fail(err: unknown): void {
    this.broken ??= err
    for (const job of this.jobs.values()) job.reject(err)
    this.jobs.clear()
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}
