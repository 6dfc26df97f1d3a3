import type { ReadFn } from './chunk-pipeline.js'

/** Adapts an async iterable of byte arrays (a stream, stdin) to the pipeline's read function, counting bytes. */
export function iterableSource(source: AsyncIterable<Uint8Array>): { read: ReadFn; bytesRead: () => number } {
  const iterator = source[Symbol.asyncIterator]()
  let pending: Uint8Array = new Uint8Array(0)
  let total = 0
  const read: ReadFn = async (buf, offset, length) => {
    while (pending.length === 0) {
      const next = await iterator.next()
      if (next.done) return 0
      pending = next.value
    }
    const n = Math.min(length, pending.length)
    buf.set(pending.subarray(0, n), offset)
    pending = pending.subarray(n)
    total += n
    return n
  }
  return { read, bytesRead: () => total }
}
