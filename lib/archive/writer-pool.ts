/**
 * Extract's file writers: worker threads, and the calling thread itself.
 * Files are handed over in batches (up to BATCH_TASKS tasks or BATCH_BYTES
 * of content), and each writer reads, opens and writes the chunks itself,
 * so file content never crosses between threads and the kernel's write
 * work is spread over the cores.
 *
 * Tasks wait in one queue. Each worker has at most QUEUED_BATCHES batches
 * outstanding, so it never waits while the calling thread walks the
 * archive; a worker that falls idle takes what is queued at once, full
 * batch or not. When every worker is that far ahead and the queue holds
 * more than a batch, the calling thread writes queued tasks itself, a few
 * at a time, turning the event loop in between so that a worker's reply
 * (and its next batch) never waits for long. With one worker on two cores
 * both cores write, and there is one JavaScript heap fewer than with two
 * workers (each heap keeps tens of MiB of freed chunk buffers until V8
 * collects them).
 *
 * Memory: a writer holds one chunk at a time; batches carry only metadata,
 * except with backends that have no local files, where the calling thread
 * fetches the sealed chunks before adding a task.
 */
import { Worker } from 'node:worker_threads'
import { setImmediate as turn } from 'node:timers/promises'
import type { ChunkOrigin, ChunkSource, FileAttributes, BatchReply, RestoreWorkerSetup, TaskResult, WriteTask } from './restore-messages.js'
import { TaskWriter } from './task-writer.js'

const BATCH_TASKS = 64
const BATCH_BYTES = 8 * 1024 * 1024
const QUEUED_BATCHES = 2
/** What the calling thread writes between two turns of the event loop. */
const SLICE_TASKS = 8
const SLICE_BYTES = 1024 * 1024

/** Where one chunk comes from, with its id as a Buffer (packed into the batch when added). */
export type ChunkPlan = ChunkOrigin<Buffer>

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
  ids: Uint8Array
  transfer: ArrayBuffer[]
}

interface PoolWorker {
  thread: Worker
  /** Batches sent and not yet answered, by batch number. */
  outstanding: Map<number, Batch>
}

export class WriterPool {
  private readonly workers: PoolWorker[] = []
  private readonly here: TaskWriter
  /** Tasks not yet handed to a writer, and the content bytes they hold. */
  private queue: TaskPlan[] = []
  private queuedBytes = 0
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

  /**
   * Queues a task. Returns a promise when the queue is long enough that the
   * caller should write some of it itself (the promise settles when it has).
   */
  add(task: TaskPlan): Promise<void> | undefined {
    if (this.stopped) {
      task.done(CANCELLED)
      return undefined
    }
    this.queue.push(task)
    this.queuedBytes += contentBytes(task)
    this.feedWorkers(false)
    return this.fullBatchQueued() ? this.writeHere(false) : undefined
  }

  /** Writes everything queued and resolves once every task has its result. */
  async drain(): Promise<void> {
    await this.writeHere(true)
    await this.quiet()
  }

  /** Cancels the tasks not yet handed to a writer (and any added later); waits for the workers' batches. */
  async discard(): Promise<void> {
    this.stopped = true
    const unsent = this.queue
    this.queue = []
    this.queuedBytes = 0
    for (const task of unsent) task.done(CANCELLED)
    await this.quiet()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.here.close()
    await Promise.all(this.workers.map((w) => w.thread.terminate()))
  }

  /**
   * Writes queued tasks on this thread, a slice at a time, while the
   * workers are full: until less than a batch is queued, or (`all`) until
   * the queue is empty.
   */
  private async writeHere(all: boolean): Promise<void> {
    for (;;) {
      this.feedWorkers(all)
      if (this.queue.length === 0 || (!all && !this.fullBatchQueued())) return
      let bytes = 0
      for (let n = 0; n < SLICE_TASKS && bytes < SLICE_BYTES && this.queue.length > 0; n++) {
        const task = this.queue.shift()!
        const size = contentBytes(task)
        this.queuedBytes -= size
        bytes += size
        const batch = toBatch([task])
        batch.done[0]!(this.here.run(batch.tasks[0]!, batch.ids))
      }
      // Let the workers' replies in: each reply makes room for another batch.
      if (this.workers.length > 0) await turn()
    }
  }

  /** Sends batches to workers with room: full batches, or whatever is queued to a worker with nothing to do (or when `all`). */
  private feedWorkers(all: boolean): void {
    for (;;) {
      if (this.queue.length === 0) return
      const worker = this.leastLoaded()
      if (!worker || worker.outstanding.size >= QUEUED_BATCHES) return
      if (!all && worker.outstanding.size > 0 && !this.fullBatchQueued()) return
      this.post(worker, toBatch(this.takeBatch()))
    }
  }

  private fullBatchQueued(): boolean {
    return this.queue.length >= BATCH_TASKS || this.queuedBytes >= BATCH_BYTES
  }

  /** The first BATCH_TASKS tasks or BATCH_BYTES of content (at least one task). */
  private takeBatch(): TaskPlan[] {
    let n = 0
    let bytes = 0
    while (n < this.queue.length && n < BATCH_TASKS && (n === 0 || bytes < BATCH_BYTES)) bytes += contentBytes(this.queue[n++]!)
    this.queuedBytes -= bytes
    return this.queue.splice(0, n)
  }

  private post(worker: PoolWorker, batch: Batch): void {
    const number = this.nextBatch++
    worker.outstanding.set(number, batch)
    worker.thread.postMessage({ batch: number, tasks: batch.tasks, ids: batch.ids }, batch.transfer)
  }

  private settle(worker: PoolWorker, reply: BatchReply): void {
    const batch = worker.outstanding.get(reply.batch)
    if (!batch) return
    worker.outstanding.delete(reply.batch)
    reply.results.forEach((result, i) => batch.done[i]!(result))
    this.feedWorkers(false)
    this.wakeIdle()
  }

  /** A worker died: its batches fail; the other writers carry on. */
  private lose(worker: PoolWorker, err: unknown): void {
    const i = this.workers.indexOf(worker)
    if (i < 0 || this.closed) return
    this.workers.splice(i, 1)
    const failed: TaskResult = { ok: false, message: `a writer thread failed: ${(err as Error)?.message ?? String(err)}`, code: 'io', fatal: true }
    for (const batch of worker.outstanding.values()) for (const done of batch.done) done(failed)
    worker.outstanding.clear()
    void worker.thread.terminate()
    this.wakeIdle()
  }

  private leastLoaded(): PoolWorker | undefined {
    let best: PoolWorker | undefined
    for (const w of this.workers) if (!best || w.outstanding.size < best.outstanding.size) best = w
    return best
  }

  private quiet(): Promise<void> {
    if (!this.workers.some((w) => w.outstanding.size > 0)) return Promise.resolve()
    return new Promise<void>((resolve) => (this.idle = resolve))
  }

  private wakeIdle(): void {
    if (!this.idle || this.workers.some((w) => w.outstanding.size > 0)) return
    const idle = this.idle
    this.idle = null
    idle()
  }
}

function contentBytes(task: TaskPlan): number {
  let bytes = 0
  for (const chunk of task.chunks) if (!('zero' in chunk)) bytes += chunk.size
  return bytes
}

/** Tasks as a message: chunk ids packed into one fresh array (32 bytes each), fetched chunks transferred. */
function toBatch(plans: TaskPlan[]): Batch {
  const idList: Buffer[] = []
  const transfer: ArrayBuffer[] = []
  const tasks = plans.map((task): WriteTask => {
    const chunks = task.chunks.map((chunk): ChunkSource => {
      if ('zero' in chunk) return chunk
      const id = idList.push(chunk.id) - 1
      if ('file' in chunk) return { size: chunk.size, id, file: chunk.file, offset: chunk.offset, length: chunk.length, rawLength: chunk.rawLength }
      const sealed = owned(chunk.sealed)
      transfer.push(sealed.buffer as ArrayBuffer)
      return { size: chunk.size, id, sealed, rawLength: chunk.rawLength }
    })
    return { path: task.path.toString('latin1'), position: task.position, chunks, size: task.size, attributes: task.attributes }
  })
  const ids = new Uint8Array(idList.length * 32)
  idList.forEach((id, i) => ids.set(id, i * 32))
  return { tasks, done: plans.map((p) => p.done), ids, transfer }
}

const CANCELLED: TaskResult = { ok: false, message: 'cancelled', code: 'aborted', fatal: true }

/** The bytes in an ArrayBuffer of their own, so that it can be transferred. */
function owned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes)
}
