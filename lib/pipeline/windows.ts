/**
 * Read windows: a fixed set of SharedArrayBuffers that file data is read
 * into and that the pipeline workers hash, compress and seal straight from,
 * without copying. A window returns to the pool once it is full and every
 * chunk cut from it has been handled; the pool's size bounds the memory a
 * backup holds in flight, and waiting for a free window is the pipeline's
 * backpressure.
 */
import { misalignment } from '../native/posix.js'

/**
 * Reads with O_DIRECT need the memory, the length and the file position aligned to the device's block
 * size (512 bytes or 4 KiB): windows start on such a boundary, and every read into one starts on one.
 */
export const DIRECT_ALIGNMENT = 4096

/** `n` rounded up to a multiple of DIRECT_ALIGNMENT. */
export function alignUp(n: number): number {
  return Math.ceil(n / DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT
}

/** Where a window lies in its shared memory, as the workers see it. */
export interface WindowView {
  shared: SharedArrayBuffer
  offset: number
  length: number
}

export class ReadWindow {
  readonly buf: Buffer
  /** Bytes of the window in use (read data, chunked or not). */
  fill = 0
  /** Chunks cut from this window that workers have not finished. */
  pending = 0
  /** No more data will be read into it; free once pending reaches 0. */
  retired = false

  constructor(readonly index: number, readonly view: WindowView) {
    this.buf = Buffer.from(view.shared, view.offset, view.length)
  }
}

/** A window of `size` bytes in shared memory of its own, starting on an aligned address (when the native helper can tell where that is). */
function alignedWindow(index: number, size: number): ReadWindow {
  const shared = new SharedArrayBuffer(size + DIRECT_ALIGNMENT)
  const off = misalignment(new Uint8Array(shared), DIRECT_ALIGNMENT) ?? 0
  return new ReadWindow(index, { shared, offset: (DIRECT_ALIGNMENT - off) % DIRECT_ALIGNMENT, length: size })
}

export class WindowPool {
  readonly windows: ReadWindow[]
  private readonly free: ReadWindow[]
  private readonly waiters: ((w: ReadWindow) => void)[] = []

  constructor(count: number, readonly size: number) {
    this.windows = Array.from({ length: count }, (_, i) => alignedWindow(i, size))
    this.free = [...this.windows]
  }

  async acquire(): Promise<ReadWindow> {
    const w = this.free.pop()
    if (w) return w
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  /** No more reads go into `w`; it is recycled when its last chunk is done. */
  retire(w: ReadWindow): void {
    w.retired = true
    this.recycleIfIdle(w)
  }

  chunkDone(w: ReadWindow): void {
    w.pending--
    this.recycleIfIdle(w)
  }

  private recycleIfIdle(w: ReadWindow): void {
    if (!w.retired || w.pending > 0) return
    w.retired = false
    w.fill = 0
    const waiter = this.waiters.shift()
    if (waiter) waiter(w)
    else this.free.push(w)
  }
}
