/**
 * Files in the local cache directory (chunk index, files cache, tree cache):
 * a msgpack body followed by its SHA-256, written atomically. A cache file
 * that is missing, damaged or unreadable reads as null: a cache only ever
 * saves work, so losing one costs time, never data.
 */
import { createHash, randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { pack, unpack } from '../encoding/msgpack.js'
import { writeParts } from '../storage/write-parts.js'

/** Bytes gathered before one writev. */
const WRITE_BYTES = 1024 * 1024

export async function writeCacheFile(file: string, value: unknown): Promise<void> {
  await writeCheckedParts(file, [pack(value)])
}

/**
 * A msgpack header and its length before it (u32 LE): how a cache file with
 * a binary layout of its own begins, so that a reader learns the layout
 * before the bulk.
 */
export function framedHeader(value: unknown): [Buffer, Buffer] {
  const header = pack(value)
  const length = Buffer.alloc(4)
  length.writeUInt32LE(header.length)
  return [length, header]
}

/**
 * Writes `parts` and then their SHA-256 as one cache file, for caches with a
 * binary layout of their own: msgpack would copy large binaries into a buffer
 * it grows to four times what it holds (33 MiB to save the files cache of
 * 100,000 files, at the end of a backup, its memory peak). The parts may be
 * made as they are written (a generator), in memory reused from one part to
 * the next (writeCacheParts).
 */
export async function writeCheckedParts(file: string, parts: Iterable<Uint8Array>): Promise<void> {
  const digest = createHash('sha256')
  await writeCacheParts(file, (function* () {
    for (const part of parts) {
      digest.update(part)
      yield part
    }
    yield digest.digest()
  })())
}

/**
 * Writes `parts` one after the other as `file`, atomically (a temporary file renamed over it), for cache
 * files with a layout of their own. Parts are written as they come, a megabyte or so at a time: a cache of
 * a million files is tens of MB, and joining them first was one more copy at a backup's peak.
 *
 * Each part is copied into one buffer, written whenever full, before the next part is taken: so a
 * maker of parts may reuse one piece of memory for all of them. When each was a new buffer, those of
 * the chunk index and the files cache (14 MiB for the medium corpus) awaited collection together and
 * made the end of a first backup its memory peak.
 */
export async function writeCacheParts(file: string, parts: Iterable<Uint8Array>): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await fs.open(temp, 'w', 0o600)
  try {
    const staging = Buffer.allocUnsafeSlow(WRITE_BYTES)
    let filled = 0
    for (const part of parts) {
      for (let at = 0; at < part.length; ) {
        const n = Math.min(part.length - at, WRITE_BYTES - filled)
        staging.set(part.subarray(at, at + n), filled)
        filled += n
        at += n
        if (filled < WRITE_BYTES) continue
        await writeParts(handle, [staging])
        filled = 0
      }
    }
    await writeParts(handle, [staging.subarray(0, filled)])
  } catch (err) {
    await handle.close().catch(() => undefined)
    await fs.rm(temp, { force: true })
    throw err
  }
  await handle.close()
  await fs.rename(temp, file)
}

/** The value written by writeCacheFile, or null. Binary fields may be views into the file's bytes. */
export async function readCacheFile(file: string): Promise<unknown> {
  const body = await readCheckedBytes(file)
  if (body === null) return null
  try {
    return unpack(body)
  } catch {
    return null
  }
}

/** The bytes of the parts written by writeCheckedParts (or writeCacheFile), or null if missing, unreadable or damaged. */
export async function readCheckedBytes(file: string): Promise<Buffer | null> {
  const reader = await CheckedReader.open(file)
  if (reader === null) return null
  try {
    const body = await reader.read(reader.size) // the one read: its view is not reused
    return (await reader.intact()) ? body : null
  } catch {
    return null
  } finally {
    await reader.close()
  }
}

/**
 * Reads a file written by writeCheckedParts front to back, a piece at a
 * time, hashing as it goes: for a cache too large to hold whole while it is
 * parsed. What was read counts only once intact() says so.
 */
export class CheckedReader {
  private position = 0
  private readonly digest = createHash('sha256')
  private piece = Buffer.alloc(0)

  private constructor(private readonly handle: fs.FileHandle, readonly size: number) {}

  /** A reader of `file`, or null if it is missing, unreadable or too short to hold a checksum. */
  static async open(file: string): Promise<CheckedReader | null> {
    let handle: fs.FileHandle
    try {
      handle = await fs.open(file, 'r')
    } catch {
      return null
    }
    const size = await handle.stat().then((st) => st.size, () => -1)
    if (size < 32) {
      await handle.close().catch(() => undefined)
      return null
    }
    return new CheckedReader(handle, size - 32)
  }

  /** Bytes before the checksum not read yet. */
  get remaining(): number {
    return this.size - this.position
  }

  /** The next `length` bytes, as a view that the next read reuses. */
  async read(length: number): Promise<Buffer> {
    if (length > this.remaining) throw new RangeError(`cannot read ${length} bytes: ${this.remaining} are left`)
    if (this.piece.length < length) this.piece = Buffer.allocUnsafeSlow(length)
    const view = this.piece.subarray(0, length)
    for (let done = 0; done < length; ) {
      const { bytesRead } = await this.handle.read(view, done, length - done, this.position + done)
      if (bytesRead === 0) throw new Error('the file shrank while it was read')
      done += bytesRead
    }
    this.position += length
    this.digest.update(view)
    return view
  }

  /** True once everything before the checksum has been read and matches it. */
  async intact(): Promise<boolean> {
    if (this.remaining !== 0) return false
    const sum = Buffer.alloc(32)
    const { bytesRead } = await this.handle.read(sum, 0, 32, this.size)
    return bytesRead === 32 && this.digest.digest().equals(sum)
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined)
  }
}
