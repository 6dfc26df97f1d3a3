/**
 * The backup data path: read → chunk (main thread) → id, compress, seal
 * (worker threads) → pack (main thread).
 *
 * Data is read into shared windows (windows.ts) and never copied until a
 * worker produces the sealed blob. Each chunk makes at most two trips to a
 * worker: one to learn its id, and, only if the repository does not have
 * it, one to compress and seal it, so known data is never compressed.
 */
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
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

interface Job {
  resolve: (reply: WorkerReply) => void
  reject: (err: unknown) => void
}

export interface PipelineOptions {
  compression: CompressionSpec
  /** Worker threads (default: one per core, at most 4). */
  workers?: number
}

export class ChunkPipeline {
  private readonly chunker: Chunker
  private readonly pool: WindowPool
  private readonly workers: Worker[]
  private readonly jobs = new Map<number, Job>()
  private readonly inFlight = new Map<string, Promise<void>>()
  private nextJob = 0
  private nextWorker = 0
  private current: ReadWindow | null = null
  private broken: unknown = null

  constructor(private readonly writer: RepositoryWriter, options: PipelineOptions) {
    const repo = writer.repo
    const params = repo.config.chunker
    this.chunker = new Chunker(repo.chunkerSeed, params)
    // A window must hold a whole maximal chunk plus a read, so a cut can always be found.
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
   * read (so the caller can open the next file); `stored` resolves to the
   * chunk list once every chunk is in the repository. Calls must not overlap.
   */
  async storeStream(read: ReadFn, signal?: AbortSignal): Promise<{ stored: Promise<ChunkRef[]> }> {
    const refs: Promise<ChunkRef>[] = []
    let w = this.current ?? (await this.pool.acquire())
    this.current = null
    let start = w.fill
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
    w.fill = start
    this.current = w
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
      const hashed = await this.request({ op: 'hash', job: 0, window: w.index, offset, length })
      if (hashed.op !== 'hash') throw new Error('unexpected worker reply')
      if (hashed.id === null) return { id: ZERO_CHUNK_ID, size: length }
      const id = Buffer.from(hashed.id)
      if (!this.writer.has(id)) {
        const key = id.toString('latin1')
        let stored = this.inFlight.get(key)
        if (!stored) {
          stored = this.seal(w, offset, length, id).finally(() => this.inFlight.delete(key))
          this.inFlight.set(key, stored)
        }
        await stored
      }
      return { id, size: length }
    } finally {
      this.pool.chunkDone(w)
    }
  }

  private async seal(w: ReadWindow, offset: number, length: number, id: Buffer): Promise<void> {
    const reply = await this.request({ op: 'seal', job: 0, window: w.index, offset, length, id })
    if (reply.op !== 'seal') throw new Error('unexpected worker reply')
    await this.writer.addSealed(BlobType.Data, id, Buffer.from(reply.sealed.buffer, reply.sealed.byteOffset, reply.sealed.byteLength), length)
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
    if (this.current) this.pool.retire(this.current)
    this.current = null
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}
