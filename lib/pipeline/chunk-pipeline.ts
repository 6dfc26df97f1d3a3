/**
 * The backup data path: read → chunk (main thread) → id, compress, seal
 * (worker threads) → pack (main thread).
 *
 * Data is read into shared windows (windows.ts) and never copied until a
 * worker compresses and seals it into its shared ring (sealed-ring.ts),
 * which the pack writer writes from. A large chunk makes at most two trips to
 * a worker: one to learn its id and, only if the repository does not have
 * it, one to compress and seal it, so known data is never compressed. A
 * small chunk makes one trip (id and sealed blob at once), which costs less
 * than a second message.
 *
 * Two ways in: `storeStream` chunks a stream of any size (one at a time;
 * calls queue), and `storeSmallFile` has a worker read a file that is one
 * chunk anyway, many files per message: for a tree of small files the cost
 * is per-file overhead (messages, syscalls, promises), not bytes, and this
 * keeps it off the main thread.
 */
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { CairnError } from '../errors.js'
import { Chunker } from '../chunker/fastcdc.js'
import { payloadCapacity, type CompressionSpec } from '../compress/codec.js'
import { BlobType } from '../repo/blob.js'
import type { RepositoryWriter } from '../repo/writer.js'
import { ZERO_CHUNK_ID, type ChunkRef } from '../archive/item.js'
import { alignUp, WindowPool, type ReadWindow } from './windows.js'
import type { SealedChunk, SmallFileResult, WireId, WorkerReply, WorkerRequest, WorkerSetup } from './messages.js'
import { createRing, RingReader } from './sealed-ring.js'
import { Limiter } from './limiter.js'
import { discardPages } from '../native/posix.js'

/** Reads at most `length` bytes into buf at offset; 0 means end of data. */
export type ReadFn = (buf: Buffer, offset: number, length: number) => Promise<number>

const READ_SIZE = 1024 * 1024
/**
 * Two windows of a maximal chunk plus one read (10 MiB with the default 4 MiB chunks, 18 with 8): one
 * filling while the other waits for the workers. First backup of the medium corpus from a cold cache,
 * 7 alternated runs each: 10.41 s and 130 MiB at the peak (medians) against 10.49 s and 135 MiB with
 * three; from the page cache about 4 % slower (7.99 against 7.65 s, 3 runs each), the reader then
 * waiting for the workers more often. Four windows plus four reads (48 MiB) were no faster than three and
 * cost 18 MiB.
 */
const WINDOW_COUNT = 2
/**
 * Chunks up to this size are sealed into a worker's ring, larger ones into a buffer of their own. The
 * ring must take its largest blob, so this sizes it: 6.2 MiB a worker (RING_SLACK). Every chunk fits with the default
 * 4 MiB maximum; a repository made with borg's 8 MiB (as cairn's default was) sends the rare longer ones
 * outside: FastCDC's normalized cuts make them rare (none of the medium corpus's 105,040 blobs is over
 * 3.9 MiB); repetitive data that never cuts makes them.
 */
const RING_CHUNK_LIMIT = 4 * 1024 * 1024
/**
 * A ring's size over its largest reservation. With none, a worker sealing a large chunk waited for the
 * pack writer to write the one before: first backup of the medium corpus from the page cache, 3 runs
 * each, 8.60–9.31 s against 7.84–8.54 s with half a blob more and 8.10–8.64 s with a whole one; peaks
 * 149–155, 154–159 and 160–165 MiB. From a cold cache the three were alike.
 */
const RING_SLACK = 1.5
/** Chunks up to this size make a single trip to a worker. */
const ONE_TRIP_LIMIT = 256 * 1024
/** Small files per worker message, their bytes at most (a batch's sealed output must fit a ring with room to spare), and how many may wait at once. */
const BATCH_SIZE = 64
const BATCH_BYTES = 2 * 1024 * 1024
const MAX_SMALL_PENDING = 1024

interface Job {
  resolve: (reply: WorkerReply) => void
  reject: (err: unknown) => void
}

/** A sealed blob in a worker's ring, and the call that frees its room once written or not needed. */
interface SealedBlob {
  data: Buffer
  release: () => void
}

export interface PipelineOptions {
  compression: CompressionSpec
  /** Worker threads (default: one per core, at most 4). */
  workers?: number
}

export type SmallFileStored =
  | { kind: 'stored'; bytesRead: number; chunks: ChunkRef[] }
  | { kind: 'grew' }
  | { kind: 'error'; message: string }

interface SmallFileWaiter {
  resolve: (stored: SmallFileStored) => void
  reject: (err: unknown) => void
}

export class ChunkPipeline {
  /** Files up to this size are read with one read and stored as one chunk. */
  readonly smallFileLimit: number
  private readonly chunker: Chunker
  private readonly pool: WindowPool
  /** Started on the first request: a backup that finds everything in its caches needs none (each costs about 12 MiB and 40 ms). */
  private workers: Worker[] | null = null
  private readonly startWorkers: () => Worker[]
  /** The workers' rings' bytes, given back at close. */
  private readonly rings: Buffer[] = []
  private readonly jobs = new Map<number, Job>()
  /** Sealed blobs of replies, by job, taken from the rings in the order the replies came. */
  private readonly blobs = new Map<number, (SealedBlob | null)[]>()
  /** Chunks whose id is known and whose sealed blob is on its way from a worker, by wire id. */
  private readonly inFlight = new Map<string, Promise<unknown>>()
  private nextJob = 0
  private nextWorker = 0
  private streamWindow: ReadWindow | null = null
  private streamQueue: Promise<unknown> = Promise.resolve()
  private batch: { paths: string[]; sizes: number[]; bytes: number; waiters: SmallFileWaiter[] } | null = null
  private readonly smallSlots = new Limiter(MAX_SMALL_PENDING)
  private broken: unknown = null

  constructor(private readonly writer: RepositoryWriter, options: PipelineOptions) {
    const repo = writer.repo
    const params = repo.config.chunker
    this.chunker = new Chunker(repo.chunkerSeed, params)
    // Below minSize the chunker never cuts, so such a file is one chunk.
    this.smallFileLimit = Math.min(params.minSize - 1, READ_SIZE)
    // A window must hold a whole maximal chunk plus a read, so a cut can always be found; the chunk
    // carried over from a full window is put so that it ends on an aligned offset (see carryOver).
    this.pool = new WindowPool(WINDOW_COUNT, alignUp(params.maxSize) + READ_SIZE)
    const km = repo.keyMaterial
    // One request's output plus twice its largest blob must fit (sealed-ring.ts): a chunk the ring takes, or a batch of small files.
    const sealedRoom = (size: number): number => payloadCapacity(size, options.compression, true) + repo.sealer.overhead
    const batchRoom = sealedRoom(BATCH_BYTES) + BATCH_SIZE * sealedRoom(0) + 2 * sealedRoom(this.smallFileLimit)
    const ringBlobMax = sealedRoom(Math.min(params.maxSize, RING_CHUNK_LIMIT))
    const ringSize = Math.round(RING_SLACK * Math.max(ringBlobMax, batchRoom))
    // One per core: measured with four on two cores, a cold first backup was
    // no faster (38.0 s both) and peaked 100 MiB higher.
    const count = options.workers ?? Math.min(4, Math.max(1, availableParallelism()))
    this.startWorkers = () =>
      Array.from({ length: count }, () => {
        const ring = createRing(ringSize)
        this.rings.push(Buffer.from(ring.data))
        const reader = new RingReader(ring)
        const setup: WorkerSetup = {
          mode: repo.encryption,
          keys: km && { encKey: km.encKey, macKey: km.macKey, chunkerSeed: km.chunkerSeed },
          compression: options.compression,
          windows: this.pool.windows.map((w) => w.view),
          ring,
          ringBlobMax,
          smallFileLimit: this.smallFileLimit,
        }
        // A small young generation: a worker's garbage is message objects and ids (measured: 12 MiB less resident for two workers).
        const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: setup, resourceLimits: { maxYoungGenerationSizeMb: 4 } })
        worker.on('message', (reply: WorkerReply) => this.settle(reply, reader))
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
   * Undefined when another small file may be queued now (the slot is taken); else resolves once one may:
   * at most MAX_SMALL_PENDING small files wait at once (the backpressure). Call before each storeSmallFile.
   * Rejects once the pipeline is broken, so that a walk stops at its next small file.
   */
  smallFileRoom(): Promise<void> | undefined {
    if (this.broken) return Promise.reject(this.broken)
    return this.smallSlots.tryAcquire() ? undefined : this.smallSlots.acquire()
  }

  /**
   * Hands a file of at most `smallFileLimit` bytes to a worker, which reads,
   * hashes and seals it as one chunk; requests are batched per worker. Takes
   * the slot smallFileRoom() gave. Resolves once the file is stored, or says
   * it grew past `size` (stream it instead) or could not be read.
   *
   * One promise per file and no async function on the way: a first backup of
   * the medium corpus sends 98,000 files this way, and what each allocates on
   * the main thread is what its garbage collector works through (with 1 MiB
   * young generations, everything a file holds until it is stored outlives
   * two scavenges and is copied into the old generation).
   */
  storeSmallFile(path: Buffer, size: number): Promise<SmallFileStored> {
    if (this.broken) {
      this.smallSlots.release()
      return Promise.reject(this.broken)
    }
    if (this.batch && this.batch.bytes + size > BATCH_BYTES) this.flushBatch()
    const batch = (this.batch ??= { paths: [], sizes: [], bytes: 0, waiters: [] })
    batch.paths.push(path.toString('latin1'))
    batch.sizes.push(size)
    batch.bytes += size
    const stored = new Promise<SmallFileStored>((resolve, reject) => batch.waiters.push({ resolve, reject }))
    if (batch.paths.length >= BATCH_SIZE) this.flushBatch()
    else if (batch.paths.length === 1) setImmediate(() => this.flushBatch())
    return stored
  }

  private flushBatch(): void {
    const batch = this.batch
    if (!batch) return
    this.batch = null
    this.request({ op: 'files', job: 0, paths: batch.paths, sizes: batch.sizes }).then(
      (reply) => {
        if (reply.op !== 'files') throw new Error('unexpected worker reply')
        const blobs = this.takeBlobs(reply.job)
        reply.results.forEach((result, i) => this.settleSmallFile(result, blobs[i]!, batch.waiters[i]!))
      },
      (err: unknown) =>
        batch.waiters.forEach((w) => {
          this.smallSlots.release()
          w.reject(err)
        }),
    )
  }

  /** What became of a small file a worker read: its chunk kept (and the slot freed) once the writer took it. */
  private settleSmallFile(r: SmallFileResult, blob: SealedBlob | null, waiter: SmallFileWaiter): void {
    const done = (result: SmallFileStored): void => {
      this.smallSlots.release()
      waiter.resolve(result)
    }
    if (r.kind !== 'read') return done(r)
    const { bytesRead } = r
    if (r.id === null) return done({ kind: 'stored', bytesRead, chunks: bytesRead ? [{ id: ZERO_CHUNK_ID, size: bytesRead }] : [] })
    const kept = this.keepSealed(r.id, bytesRead, blob!)
    if (!(kept instanceof Promise)) return done({ kind: 'stored', bytesRead, chunks: [{ id: kept, size: bytesRead }] })
    kept.then(
      (id) => done({ kind: 'stored', bytesRead, chunks: [{ id, size: bytesRead }] }),
      (err: unknown) => {
        this.smallSlots.release()
        waiter.reject(err)
      },
    )
  }

  /**
   * One read is kept in flight ahead of the chunker: the next piece of the window fills while the
   * piece just read is cut, so that a single big file is not read, then cut, then read in turn.
   */
  private async chunkStream(read: ReadFn, signal?: AbortSignal): Promise<{ stored: Promise<ChunkRef[]> }> {
    const refs: Promise<ChunkRef>[] = []
    let w = this.streamWindow ?? (await this.pool.acquire())
    this.streamWindow = null
    // Every read starts on an aligned offset of the window, so that a file may be read with O_DIRECT.
    w.fill = alignUp(w.fill)
    let start = w.fill
    let reading: Promise<number> | null = null
    const readNext = (): Promise<number> => {
      const next = read(w.buf, w.fill, Math.min(READ_SIZE, w.buf.length - w.fill))
      next.catch(() => undefined) // awaited below, or in `finally` when the loop stops early
      return next
    }
    try {
      for (;;) {
        signal?.throwIfAborted()
        if (this.broken) throw this.broken
        if (w.fill === w.buf.length) {
          ;({ window: w, start } = await this.carryOver(w, start))
        }
        const n = await (reading ?? readNext())
        reading = null
        w.fill += n
        const eof = n === 0
        if (!eof && w.fill < w.buf.length) reading = readNext()
        for (;;) {
          const length = this.chunker.cut(w.buf, start, w.fill, eof)
          if (length <= 0) break
          const ref = this.storeChunk(w, start, length)
          // Awaited through Promise.all below, after the loop: a chunk may fail
          // (a full disk) while the loop still waits for a read or a window.
          ref.catch(() => undefined)
          refs.push(ref)
          start += length
        }
        if (eof) break
      }
    } finally {
      // A read still in flight writes into the window: it must land before the window is passed on.
      if (reading) await reading.catch(() => undefined)
      // What was read but not chunked (an error mid-file) is dropped.
      w.fill = start
      this.streamWindow = w
    }
    const stored = Promise.all(refs)
    stored.catch(() => undefined) // the caller awaits it later; don't report it as unhandled meanwhile
    return { stored }
  }

  /**
   * Moves the unchunked tail of a full window to a fresh one, placed so that it ends on an aligned
   * offset, where the next read goes; where the tail starts in the fresh window.
   */
  private async carryOver(full: ReadWindow, start: number): Promise<{ window: ReadWindow; start: number }> {
    const next = await this.pool.acquire()
    const tail = full.fill - start
    const at = alignUp(tail) - tail
    full.buf.copy(next.buf, at, start, full.fill)
    next.fill = at + tail
    this.pool.retire(full)
    return { window: next, start: at }
  }

  private async storeChunk(w: ReadWindow, offset: number, length: number): Promise<ChunkRef> {
    w.pending++
    try {
      const at = { window: w.index, offset, length }
      if (length <= ONE_TRIP_LIMIT) {
        const reply = await this.request({ op: 'store', job: 0, ...at })
        if (reply.op !== 'store') throw new Error('unexpected worker reply')
        const blob = this.takeBlobs(reply.job)[0]!
        if (reply.id === null) return { id: ZERO_CHUNK_ID, size: length }
        return { id: await this.keepSealed(reply.id, length, blob!), size: length }
      }
      const hashed = await this.request({ op: 'hash', job: 0, ...at })
      if (hashed.op !== 'hash') throw new Error('unexpected worker reply')
      if (hashed.id === null) return { id: ZERO_CHUNK_ID, size: length }
      const wireId = hashed.id
      const id = await this.keepUnsealed(wireId, length, async () => {
        const reply = await this.request({ op: 'seal', job: 0, ...at, id: wireId })
        if (reply.op !== 'seal') throw new Error('unexpected worker reply')
        return this.takeBlobs(reply.job)[0]!
      })
      return { id, size: length }
    } finally {
      this.pool.chunkDone(w)
    }
  }

  /**
   * Adds a sealed chunk to the repository unless it or a chunk being sealed
   * already has its id (a blob not needed is released at once). Returns the
   * id when there is nothing to wait for, else a promise of it, resolved once
   * the writer took the blob. The writer knows the id from then on, so no
   * other chunk of this id seals it again.
   */
  private keepSealed(wireId: WireId, length: number, sealed: SealedBlob): Buffer | Promise<Buffer> {
    const id = Buffer.from(wireId, 'latin1')
    const sealing = this.writer.has(id) ? undefined : this.inFlight.get(wireId)
    if (sealing || this.writer.has(id)) {
      sealed.release()
      return sealing ? sealing.then(() => id) : id
    }
    const added = this.writer.addSealed(BlobType.Data, id, sealed.data, length, sealed.release)
    return added ? added.then(() => id) : id
  }

  /** As keepSealed, for a chunk whose id is known but which is sealed only if the repository lacks it. */
  private async keepUnsealed(wireId: WireId, length: number, seal: () => Promise<SealedBlob>): Promise<Buffer> {
    const id = Buffer.from(wireId, 'latin1')
    const sealing = this.writer.has(id) ? undefined : this.inFlight.get(wireId)
    if (sealing) await sealing
    if (sealing || this.writer.has(id)) return id
    const stored = seal()
      .then((blob) => this.writer.addSealed(BlobType.Data, id, blob.data, length, blob.release))
      .finally(() => this.inFlight.delete(wireId))
    this.inFlight.set(wireId, stored)
    await stored
    return id
  }

  private request(req: WorkerRequest): Promise<WorkerReply> {
    if (this.broken) return Promise.reject(this.broken)
    const job = ++this.nextJob
    req.job = job
    const workers = (this.workers ??= this.startWorkers())
    const worker = workers[this.nextWorker++ % workers.length]!
    return new Promise<WorkerReply>((resolve, reject) => {
      this.jobs.set(job, { resolve, reject })
      worker.postMessage(req)
    })
  }

  /**
   * Takes the reply's sealed blobs out of the worker's ring first, whatever
   * becomes of the job: the ring must be told of every blob, in order, or
   * its tail would never pass them.
   */
  private settle(reply: WorkerReply, ring: RingReader): void {
    const take = (blob: SealedChunk | null): SealedBlob | null => {
      if (blob === null) return null
      // Sealed outside the ring (sealed-ring.ts's limit on one blob): its buffer is ours now.
      if (blob instanceof Uint8Array) return { data: Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength), release: () => undefined }
      return ring.receive(blob)
    }
    if (reply.op === 'seal' || reply.op === 'store') this.blobs.set(reply.job, [take(reply.sealed)])
    else if (reply.op === 'files') this.blobs.set(reply.job, reply.results.map((r) => (r.kind === 'read' ? take(r.sealed) : null)))
    const job = this.jobs.get(reply.job)
    if (!job) {
      for (const blob of this.takeBlobs(reply.job)) blob?.release()
      return
    }
    this.jobs.delete(reply.job)
    if (reply.op === 'error') {
      job.reject(new CairnError((reply.code as CairnError['code']) ?? 'io', reply.message))
    } else {
      job.resolve(reply)
    }
  }

  private takeBlobs(job: number): (SealedBlob | null)[] {
    const blobs = this.blobs.get(job) ?? []
    this.blobs.delete(job)
    return blobs
  }

  private fail(err: unknown): void {
    this.broken ??= err
    for (const job of this.jobs.values()) job.reject(err)
    this.jobs.clear()
  }

  /**
   * Stops the workers and gives the memory of the windows and rings back (shared memory is freed only once
   * the main thread's garbage collector lets go of it too, which may be long after). Leaving a first backup
   * of the medium corpus 25 MiB and two threads lighter for its commit and the saving of its caches, which
   * had made its end its peak. The pipeline cannot be used after.
   */
  async close(): Promise<void> {
    const workers = this.workers ?? []
    this.workers = []
    this.broken ??= new Error('the chunk pipeline is closed')
    await Promise.all(workers.map((w) => w.terminate()))
    // Blobs added to packs are written from the rings: only then may their pages go.
    await this.writer.blobsWrittenOut()
    for (const buffer of [...this.pool.windows.map((w) => w.buf), ...this.rings]) discardPages(buffer)
  }
}
