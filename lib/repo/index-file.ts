/**
 * Blob lookups answered from the chunk index cache file rather than from a table in memory, for a
 * process that mostly looks blobs up and lives long: a mount. Its memory then stays flat however many
 * blobs the repository holds (a table of a million blobs took 34 MB even with 16-byte id prefixes; this
 * keeps 0.125 to 0.25 bytes a blob).
 *
 * The serialized index lists its records in ascending id order (serialized-index.ts), and ids are uniformly
 * distributed (MAC or SHA-256 outputs). Opening streams the file once, checking all of it, and keeps a
 * fence: for each value of an id's first `bits` bits, the number of the first record at or past it, sized
 * so that 16 to 32 records (0.75 to 1.5 KiB) share a value. A lookup then reads that one run with a positioned
 * read and searches it. The page cache usually holds the run (opening read the whole file): the read is
 * then made on the calling thread, without waiting for a disk ever (readCachedSync), and takes a
 * microsecond instead of 30-40 through libuv's thread pool, which a walk of the mount paid once per
 * directory: 1.65 s for the medium archive, against 1.07 s now, as fast as with the table in memory.
 *
 * A lookup that misses the page cache (the file was evicted, or the caches dropped) reads its run through
 * the pool, and, once MISSES_BEFORE_WARMING such misses came since the last time, the whole file is read
 * once in the background, a megabyte at a time, so that later lookups find it cached. A directory's files
 * loaded ahead right after the caches were dropped look up ids spread over the whole file: for the medium
 * corpus's 1,999 small files the lookups took 245 ms of the main thread (131 of them in RWF_NOWAIT reads
 * that failed), 86 ms so, and loading them all 201-291 ms, 141-256 ms so (bench/micro.mjs siblings, 6
 * passes each, profiled with --cpu-prof).
 *
 * The file is read again at each lookup, after its checksum was verified once. Cache files are replaced by
 * rename, never rewritten in place, so the open file keeps the bytes that were checked. Should the disk
 * still change them, a wrong location only names bytes that fail authentication: every blob is sealed
 * with its id as associated data, so no other blob's bytes can pass for it.
 */
import { promises as fs } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { readCachedSync } from '../native/posix.js'
import type { ChunkLocation } from './chunk-index.js'
import { bucketBits, compareIds, damaged, HEAD_LENGTH, ID_LENGTH, idPrefix, readSerializedIndex, RECORD_LENGTH } from './serialized-index.js'

interface FileIdentity {
  dev: number
  ino: number
}

/** Records that share a fence entry, on average. */
const RECORDS_PER_RUN = 32
/** Lookups that missed the page cache before the whole file is read into it again. */
const MISSES_BEFORE_WARMING = 8
/** Bytes read at a time when warming. */
const WARM_PIECE = 1024 * 1024

export class IndexFile {
  /** Lookups under way, and the warming, which close() waits for. */
  private readonly reading = new Set<Promise<unknown>>()
  private closed = false
  /** Lookups that missed the page cache since the file was last read whole. */
  private misses = 0
  private warming = false
  /** Where a run read from the page cache goes: it is searched before anything else can run. */
  private readonly scratch = Buffer.allocUnsafeSlow(2 * RECORDS_PER_RUN * RECORD_LENGTH)

  private constructor(
    private readonly handle: FileHandle,
    /** The file's device and inode, to tell when the cache has been replaced. */
    private readonly identity: FileIdentity,
    /** Where the first record is in the file. */
    private readonly recordsAt: number,
    /** fence[v] is the first record whose id's first bits are v or more; fence[2^bits] is the count. */
    private readonly fence: Uint32Array,
    private readonly shift: number,
  ) {}

  /**
   * Takes the serialized index that fills `handle` (whose fstat is `stat`) from `at` to its end, fed in
   * pieces as ChunkIndex.loader is, checks it and builds the fence; finish() throws
   * CairnError('integrity') if anything is wrong. The IndexFile it gives owns the handle.
   */
  static loader(handle: FileHandle, at: number, stat: FileIdentity & { size: number }): { feed(piece: Uint8Array): void; finish(): IndexFile } {
    let shift = 32
    let fence = new Uint32Array(1)
    const reader = readSerializedIndex(stat.size - at, {
      count(count) {
        shift = 32 - bucketBits(count, RECORDS_PER_RUN)
        fence = new Uint32Array(2 ** (32 - shift) + 1)
      },
      records(_words, bytes) {
        // Counted per value first; the sums are taken once all are in.
        for (let r = 0; r < bytes.length; r += RECORD_LENGTH) fence[(idPrefix(bytes, r) >>> shift) + 1]!++
      },
    })
    return {
      feed: (piece) => reader.feed(piece),
      finish: () => {
        reader.finish()
        for (let v = 1; v < fence.length; v++) fence[v]! += fence[v - 1]!
        return new IndexFile(handle, { dev: stat.dev, ino: stat.ino }, at + HEAD_LENGTH, fence, shift)
      },
    }
  }

  /** Whether `file` is now another file than this one (a newer cache, written and renamed over it). */
  async replacedAt(file: string): Promise<boolean> {
    const now = await fs.stat(file).catch(() => null)
    return now !== null && (now.dev !== this.identity.dev || now.ino !== this.identity.ino)
  }

  /** Blobs in the file. */
  get size(): number {
    return this.fence[this.fence.length - 1]!
  }

  /** Bytes of memory the lookups keep (the fence). */
  get byteLength(): number {
    return this.fence.byteLength
  }

  /**
   * Where blob `id` is, or undefined when the file does not list it, or is closed: a caller still holding
   * an index this file was replaced in then looks again in the current one, as for any blob it lacks.
   */
  get(id: Uint8Array): Promise<ChunkLocation | undefined> {
    if (id.length !== ID_LENGTH) throw new TypeError(`chunk ids are ${ID_LENGTH} bytes, got ${id.length}`)
    if (this.closed) return Promise.resolve(undefined)
    const value = idPrefix(id, 0) >>> this.shift
    const first = this.fence[value]!
    const count = this.fence[value + 1]! - first
    if (count === 0) return Promise.resolve(undefined)
    // From the page cache on this thread (a microsecond), else through the thread pool (30-40 µs).
    const position = this.recordsAt + first * RECORD_LENGTH
    const length = count * RECORD_LENGTH
    const run = length <= this.scratch.length ? this.scratch.subarray(0, length) : Buffer.allocUnsafe(length)
    if (readCachedSync(this.handle.fd, run, position) === length) return Promise.resolve(search(run, id, count))
    if (++this.misses >= MISSES_BEFORE_WARMING) this.warm()
    return this.track(readExactly(this.handle, position, length).then((run) => search(run, id, count)))
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.reading.add(work)
    return work.finally(() => this.reading.delete(work))
  }

  /** Reads the whole file once, in the background, so that the page cache holds it again. */
  private warm(): void {
    if (this.warming || this.closed) return
    this.warming = true
    this.misses = 0
    const end = this.recordsAt + this.size * RECORD_LENGTH
    const piece = Buffer.allocUnsafeSlow(WARM_PIECE)
    void this.track((async () => {
      for (let at = this.recordsAt; at < end && !this.closed; at += WARM_PIECE) await this.handle.read(piece, 0, Math.min(WARM_PIECE, end - at), at)
    })().catch(() => undefined).finally(() => {
      this.warming = false
    }))
  }

  /** Closes the file once the lookups under way are answered; later lookups find nothing. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.allSettled([...this.reading])
    await this.handle.close()
  }
}

/** Where blob `id` is, searching the `count` records of `run` (ascending ids), or undefined. */
function search(run: Buffer, id: Uint8Array, count: number): ChunkLocation | undefined {
  let lo = 0
  let hi = count
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const at = mid * RECORD_LENGTH
    const order = compareIds(run, at, id, 0)
    if (order === 0) {
      return { pack: run.readUInt32LE(at + 32), offset: run.readUInt32LE(at + 36), length: run.readUInt32LE(at + 40), rawLength: run.readUInt32LE(at + 44) }
    }
    if (order < 0) lo = mid + 1
    else hi = mid
  }
  return undefined
}

/** `length` bytes of `handle` at `position`, into `into` if given; a shorter file is a damaged cache. */
export async function readExactly(handle: FileHandle, position: number, length: number, into: Buffer = Buffer.allocUnsafe(length)): Promise<Buffer> {
  const { bytesRead } = await handle.read(into, 0, length, position)
  if (bytesRead !== length) throw damaged('it is shorter than it says')
  return into.subarray(0, length)
}
