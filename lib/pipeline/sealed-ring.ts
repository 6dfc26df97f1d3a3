/**
 * Sealed rings: shared memory that a pipeline worker compresses and seals
 * blobs into and that the main thread writes packs from, so that no buffer
 * is allocated, transferred or garbage-collected per blob. (Before, each
 * ciphertext came from node:crypto in a new buffer that was transferred to
 * the main thread: in a first backup of 2.9 GB the two workers' malloc
 * arenas grew to 63 MiB each and the main thread held up to 100 MiB of such
 * buffers awaiting collection.) The pipeline keeps chunks over 4 MiB, which
 * are rare, out of the rings, so that a ring need only take one of 4 MiB
 * (chunk-pipeline.ts, RING_CHUNK_LIMIT).
 *
 * One ring per worker. Positions are monotonic byte counts; position p is
 * at offset p % size. The worker reserves room at its head (skipping to the
 * next lap when the room would not fit before the end: a blob is always
 * contiguous), writes the blob there and commits what it used. The main
 * thread is told of blobs in the order the worker committed them (the order
 * of its replies), and releases each once written or found not needed, in
 * any order; the tail, which it publishes in shared memory, moves past a
 * blob once every blob before it is released too. A worker whose ring is
 * full waits for the tail (Atomics.wait): that is the pipeline's
 * backpressure on sealing. A reservation fits when it does not reach the
 * oldest byte in use, or when nothing is in use (the tail has caught up with
 * the head): so any reservation up to the ring's size is granted once the
 * main thread has released everything sent. (Before, a ring had to be twice
 * its largest reservation: one that skipped to the next lap waited for the
 * tail to pass bytes that were free already.)
 *
 * A worker must never wait on its own unsent blobs. A request of one blob
 * reserves after its earlier blobs were sent; a request of many (a batch of
 * small files) must fit the bytes it commits plus twice its largest
 * reservation (the pipeline sizes rings and batches so). The pack writer
 * writes what it holds within an event-loop turn, so every blob already sent
 * is released without the worker's help.
 */

/** What the main thread and a worker share: the ring's bytes and its tail (a BigInt64 position). */
export interface RingShared {
  data: SharedArrayBuffer
  control: SharedArrayBuffer
}

/** Where a committed blob lies: its start position and length. */
export interface RingBlob {
  start: number
  length: number
}

export function createRing(size: number): RingShared {
  return { data: new SharedArrayBuffer(size), control: new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT) }
}

/** How long a waiting worker sleeps between looks at the tail (it also wakes when notified). */
const WAIT_MS = 100

/** The worker's side: reserves and commits at the head. */
export class RingWriter {
  private head = 0
  private readonly bytes: Buffer
  private readonly tail: BigInt64Array
  private readonly size: number

  constructor(shared: RingShared) {
    this.bytes = Buffer.from(shared.data)
    this.tail = new BigInt64Array(shared.control)
    this.size = shared.data.byteLength
  }

  /** The start position of `max` contiguous bytes at the head, once the tail leaves them free. */
  reserve(max: number): number {
    if (max > this.size) throw new RangeError(`a ring of ${this.size} bytes cannot hold a reservation of ${max}`)
    let start = this.head
    const offset = start % this.size
    if (offset + max > this.size) start += this.size - offset
    for (;;) {
      const tail = Atomics.load(this.tail, 0)
      // It must not reach the oldest byte still in use; once the tail has caught up with the head, none is.
      if (start + max - Number(tail) <= this.size || Number(tail) === this.head) return start
      Atomics.wait(this.tail, 0, tail, WAIT_MS)
    }
  }

  /** The `length` bytes at position `start` (inside a reservation). */
  view(start: number, length: number): Buffer {
    const offset = start % this.size
    return this.bytes.subarray(offset, offset + length)
  }

  /** Ends the reservation at `start`, of which the blob used `length` bytes. */
  commit(start: number, length: number): RingBlob {
    this.head = start + length
    return { start, length }
  }
}

/** The main thread's side: reads committed blobs and moves the tail as they are released. */
export class RingReader {
  private readonly bytes: Buffer
  private readonly tail: BigInt64Array
  private readonly size: number
  /** Ends of the blobs sent and not yet passed by the tail, in commit order, from `front`. */
  private ends: number[] = []
  private front = 0
  private readonly released = new Set<number>()

  constructor(shared: RingShared) {
    this.bytes = Buffer.from(shared.data)
    this.tail = new BigInt64Array(shared.control)
    this.size = shared.data.byteLength
  }

  /** Takes a blob the worker sent (in commit order): its bytes, and the call that releases them. */
  receive(blob: RingBlob): { data: Buffer; release: () => void } {
    const end = blob.start + blob.length
    this.ends.push(end)
    const offset = blob.start % this.size
    return { data: this.bytes.subarray(offset, offset + blob.length), release: () => this.release(end) }
  }

  private release(end: number): void {
    this.released.add(end)
    let tail = -1
    while (this.front < this.ends.length && this.released.delete(this.ends[this.front]!)) tail = this.ends[this.front++]!
    if (tail < 0) return
    if (this.front > 1024) {
      this.ends = this.ends.slice(this.front)
      this.front = 0
    }
    Atomics.store(this.tail, 0, BigInt(tail))
    Atomics.notify(this.tail, 0)
  }
}
