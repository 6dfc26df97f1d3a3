/**
 * Extract's file writers: worker threads, and the calling thread itself.
 * Files are handed over in batches (up to BATCH_TASKS tasks or BATCH_BYTES
 * of content), and each writer reads, opens and writes the chunks itself,
 * so file content never crosses between threads and the kernel's write
 * work is spread over the cores.
 *
 * Each worker has at most QUEUED_BATCHES batches outstanding, so it never
 * waits while the calling thread walks the archive. When every worker is
 * that far ahead, the calling thread writes the batch itself instead of
 * waiting: with one worker on two cores, both cores write, and there is one
 * JavaScript heap fewer than with two workers (each heap keeps tens of MiB
 * of freed chunk buffers until V8 collects them). A worker that falls idle
 * takes the batch being filled at once.
 *
 * Memory: a writer holds one chunk at a time; batches carry only metadata,
 * except with backends that have no local files, where the calling thread
 * fetches the sealed chunks before adding a task.
 */
import { Worker } from 'node:worker_threads'
import type { ChunkSource, FileAttributes, BatchReply, RestoreWorkerSetup, TaskResult, WriteTask } from './restore-messages.js'
import { TaskWriter } from './task-writer.js'

const BATCH_TASKS = 64
const BATCH_BYTES = 8 * 1024 * 1024
const QUEUED_BATCHES = 2

/** Where one chunk comes from, with its id as a Buffer (packed into the batch when added). */
export type ChunkPlan =
  | { size: number; zero: true }
  | { size: number; id: Buffer; file: string; offset: number; length: number; rawLength: number }
  | { size: number; id: Buffer; sealed: Uint8Array; rawLength: number }

export interface TaskPlan {
  path: Buffer
  position: number
  chunks: ChunkPlan[]
  size: number
  attributes: FileAttributes | null
  /** Called once with the task's outcome. */
  done: (result: TaskResult) => void
}

interface Batch {
  tasks: WriteTask[]
  done: ((result: TaskResult) => void)[]
  ids: Buffer[]
  transfer: ArrayBuffer[]
  bytes: number
}

interface PoolWorker {
  thread: Worker
  /** Batches sent and not yet answered, by batch number. */
  outstanding: Map<number, Batch>
}

export class WriterPool {
  private readonly workers: PoolWorker[] = []
  private readonly here: TaskWriter
  private open = emptyBatch()
  private idle: (() => void) | null = null
  private nextBatch = 0
  private stopped = false
  private closed = false

  /** `workers`: threads besides the calling one (0: the calling thread writes everything). */
  constructor(setup: RestoreWorkerSetup, workers: number) {
    this.here = TaskWriter.create(setup)
    for (let i = 0; i < workers; i++) this.workers.push(this.spawn(setup))
  }

  private spawn(setup: RestoreWorkerSetup): PoolWorker {
    const w: PoolWorker = { thread: new Worker(new URL('./restore-worker.js', import.meta.url), { workerData: setup }), outstanding: new Map() }
    w.thread.on('message', (reply: BatchReply) => this.settle(w, reply))
    w.thread.on('error', (err) => this.lose(w, err))
    w.thread.on('exit', (code) => this.lose(w, new Error(`a writer thread exited with code ${code}`)))
    return w
  }

  /** Queues a task; a full batch goes to a worker with room, or is written here and now. */
  add(task: TaskPlan): void {
    if (this.stopped) {
      task.done(CANCELLED)
      return
    }
    const batch = this.open
    const sources: ChunkSource[] = []
    for (const chunk of task.chunks) {
      if ('zero' in chunk) {
        sources.push(chunk)
        continue
      }
      const id = batch.ids.push(chunk.id) - 1
      if ('file' in chunk) {
        sources.push({ size: chunk.size, id, file: chunk.file, offset: chunk.offset, length: chunk.length, rawLength: chunk.rawLength })
      } else {
        const sealed = owned(chunk.sealed)
        batch.transfer.push(sealed.buffer as ArrayBuffer)
        sources.push({ size: chunk.size, id, sealed, rawLength: chunk.rawLength })
      }
      batch.bytes += chunk.size
    }
    batch.tasks.push({ path: task.path.toString('latin1'), position: task.position, chunks: sources, size: task.size, attributes: task.attributes })
    batch.done.push(task.done)
    if (batch.tasks.length < BATCH_TASKS && batch.bytes < BATCH_BYTES) return
    this.open = emptyBatch()
    this.dispatch(batch)
  }

  /** Writes what is queued and resolves once every task has its result. */
  async drain(): Promise<void> {
    if (this.open.tasks.length > 0) {
      const batch = this.open
      this.open = emptyBatch()
      this.dispatch(batch)
    }
    await this.quiet()
  }

  /** Cancels the tasks not yet handed to a writer (and any added later); waits for the workers' batches. */
  async discard(): Promise<void> {
    this.stopped = true
    const unsent = this.open
    this.open = emptyBatch()
    failAll(unsent, CANCELLED)
    await this.quiet()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.here.close()
    await Promise.all(this.workers.map((w) => w.thread.terminate()))
  }

  private dispatch(batch: Batch): void {
    const worker = this.leastLoaded()
    if (worker && worker.outstanding.size < QUEUED_BATCHES) {
      this.post(worker, batch)
      return
    }
    const ids = packIds(batch)
    batch.tasks.forEach((task, i) => batch.done[i]!(this.here.run(task, ids)))
  }

  private post(worker: PoolWorker, batch: Batch): void {
    const number = this.nextBatch++
    worker.outstanding.set(number, batch)
    worker.thread.postMessage({ batch: number, tasks: batch.tasks, ids: packIds(batch) }, batch.transfer)
  }

  private settle(worker: PoolWorker, reply: BatchReply): void {
    const batch = worker.outstanding.get(reply.batch)
    if (!batch) return
    worker.outstanding.delete(reply.batch)
    reply.results.forEach((result, i) => batch.done[i]!(result))
    // An idle worker need not wait for the batch being filled to be full.
    if (worker.outstanding.size === 0 && this.open.tasks.length > 0) {
      const next = this.open
      this.open = emptyBatch()
      this.post(worker, next)
    }
    this.wakeIdle()
  }

  /** A worker died: its batches fail; the other writers carry on. */
  private lose(worker: PoolWorker, err: unknown): void {
    const i = this.workers.indexOf(worker)
    if (i < 0 || this.closed) return
    this.workers.splice(i, 1)
    const failed: TaskResult = { ok: false, message: `a writer thread failed: ${(err as Error)?.message ?? String(err)}`, code: 'io', fatal: true }
    for (const batch of worker.outstanding.values()) failAll(batch, failed)
    worker.outstanding.clear()
    void worker.thread.terminate()
    this.wakeIdle()
  }

  private leastLoaded(): PoolWorker | undefined {
    let best: PoolWorker | undefined
    for (const w of this.workers) if (!best || w.outstanding.size < best.outstanding.size) best = w
    return best
  }

  private busy(): boolean {
    return this.workers.some((w) => w.outstanding.size > 0)
  }

  private quiet(): Promise<void> {
    if (!this.busy()) return Promise.resolve()
    return new Promise<void>((resolve) => (this.idle = resolve))
  }

  private wakeIdle(): void {
    if (this.busy() || !this.idle) return
    const idle = this.idle
    this.idle = null
    idle()
  }
}

function emptyBatch(): Batch {
  return { tasks: [], done: [], ids: [], transfer: [], bytes: 0 }
}

/** The batch's chunk ids in one fresh array, 32 bytes each. */
function packIds(batch: Batch): Uint8Array {
  const ids = new Uint8Array(batch.ids.length * 32)
  batch.ids.forEach((id, i) => ids.set(id, i * 32))
  return ids
}

const CANCELLED: TaskResult = { ok: false, message: 'cancelled', code: 'aborted', fatal: true }

function failAll(batch: Batch, result: TaskResult): void {
  for (const done of batch.done) done(result)
}

/** The bytes in an ArrayBuffer of their own, so that it can be transferred. */
function owned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes)
}
