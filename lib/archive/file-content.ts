/**
 * A file's content as byte ranges: cumulative chunk offsets are computed
 * once, a read binary-searches its first chunk and fetches only the chunks
 * it touches (in parallel, through the shared chunk cache). All-zero chunks
 * are served without any fetch.
 */
import { Readable } from 'node:stream'
import type { BlobCache } from '../cache/blob-cache.js'
import { ZERO_CHUNK_ID, type ChunkRef, type Item } from './item.js'

const ZEROS = Buffer.alloc(1024 * 1024)

export class FileContent {
  readonly size: number
  private readonly chunks: ChunkRef[]
  /** offsets[i] is where chunk i starts; offsets[n] is the size. */
  private readonly offsets: Float64Array

  constructor(item: Item, private readonly cache: BlobCache<Buffer>) {
    this.chunks = item.chunks ?? []
    this.offsets = new Float64Array(this.chunks.length + 1)
    for (let i = 0; i < this.chunks.length; i++) this.offsets[i + 1] = this.offsets[i]! + this.chunks[i]!.size
    this.size = this.offsets[this.chunks.length]!
  }

  /** Index of the chunk holding byte `position` (position < size). */
  chunkAt(position: number): number {
    let lo = 0
    let hi = this.chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (this.offsets[mid]! <= position) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  get chunkCount(): number {
    return this.chunks.length
  }

  isZeroChunk(index: number): boolean {
    return this.chunks[index]!.id.equals(ZERO_CHUNK_ID)
  }

  chunkSize(index: number): number {
    return this.chunks[index]!.size
  }

  /** The whole plaintext of chunk `index`. */
  async chunk(index: number): Promise<Buffer> {
    const ref = this.chunks[index]!
    if (ref.id.equals(ZERO_CHUNK_ID)) return ref.size <= ZEROS.length ? ZEROS.subarray(0, ref.size) : Buffer.alloc(ref.size)
    const data = await this.cache.get(ref.id.toString('hex'))
    if (data.length !== ref.size) throw new Error(`chunk ${index} has ${data.length} bytes, the archive says ${ref.size}`)
    return data
  }

  /** Up to `length` bytes from `position` (fewer at the end of the file). */
  async read(position: number, length: number): Promise<Buffer> {
    const end = Math.min(this.size, position + length)
    if (position >= end) return Buffer.alloc(0)
    const first = this.chunkAt(position)
    const last = this.chunkAt(end - 1)
    const parts = await Promise.all(Array.from({ length: last - first + 1 }, (_, k) => this.chunk(first + k)))
    if (parts.length === 1) {
      const base = this.offsets[first]!
      return parts[0]!.subarray(position - base, end - base)
    }
    const out = Buffer.allocUnsafe(end - position)
    let written = 0
    parts.forEach((part, k) => {
      const base = this.offsets[first + k]!
      const from = Math.max(position, base) - base
      const to = Math.min(end, base + part.length) - base
      written += part.copy(out, written, from, to)
    })
    return out
  }

  /** A stream of the content from `start` to `end` (exclusive), fetching `readAhead` chunks ahead. */
  stream(start = 0, end = this.size, readAhead = 4): Readable {
    const self = this
    return Readable.from(
      (async function* () {
        if (start >= end) return
        const first = self.chunkAt(start)
        const last = self.chunkAt(Math.max(start, end - 1))
        const ahead: Promise<Buffer>[] = []
        let next = first
        for (let i = first; i <= last; i++) {
          while (next <= last && next < i + readAhead) {
            const p = self.chunk(next++)
            p.catch(() => undefined)
            ahead.push(p)
          }
          const data = await ahead.shift()!
          const base = self.offsets[i]!
          yield data.subarray(Math.max(start, base) - base, Math.min(end, base + data.length) - base)
        }
      })(),
      { objectMode: false },
    )
  }
}
