/**
 * The entries a backup adds to the files cache, kept on disk until the cache
 * is saved: one unnamed temporary file per column of the cache file's layout
 * (files-cache.ts), values appended little-endian as they will be saved, so
 * that saving copies them. Only their keys stay in memory (16 bytes and a
 * slot each), to tell a path remembered twice.
 *
 * Why: in a first backup every file is new, and the table in memory
 * (files-table.ts) grew by 105–160 bytes a file, half as much again at each
 * growth, to about 14 MiB for the medium corpus's 98,000 files: the largest
 * part of a first backup's peak that the backup itself does not use. Nothing
 * looks these entries up before the next backup.
 *
 * The files are created and unlinked at once, so they vanish with the process
 * whatever becomes of it. Writes go through a small buffer per column, with
 * writeSync: a few hundred kilobytes at a time into the page cache.
 */
import { closeSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import * as path from 'node:path'
import type { ChunkRef } from './item.js'
import { KEY_LENGTH, type ColumnName, type FileIdentity } from './files-table.js'
import { grownLength, RowSlots, slotCountFor } from '../repo/row-slots.js'

const BUFFER_BYTES = 64 * 1024
const KEY_WORDS = KEY_LENGTH / 4
const ID_LENGTH = 32

/** One column: an unlinked file and the buffer of what is not yet written to it. */
class ColumnFile {
  private readonly buffer = Buffer.allocUnsafe(BUFFER_BYTES)
  /**
   * The same bytes as 64-bit integers and as words: DataView's setBigInt64 writes a bigint without
   * allocating, where Buffer's writeBigInt64LE makes four bigints of its halves.
   */
  readonly view = new DataView(this.buffer.buffer, this.buffer.byteOffset, BUFFER_BYTES)
  readonly words = new Uint32Array(this.buffer.buffer, this.buffer.byteOffset, BUFFER_BYTES / 4)
  private used = 0

  constructor(private readonly fd: number) {}

  /** The buffer to write `bytes` (at most BUFFER_BYTES) into, at the offset next(bytes) then returns. */
  get bytes(): Buffer {
    return this.buffer
  }

  /** Room for `bytes` at the returned offset of `this.bytes`. */
  next(bytes: number): number {
    if (this.used + bytes > BUFFER_BYTES) this.flush()
    this.used += bytes
    return this.used - bytes
  }

  flush(): void {
    for (let at = 0; at < this.used; ) at += writeSync(this.fd, this.buffer, at, this.used - at)
    this.used = 0
  }

  /** The column's bytes, read into `piece` a part at a time (each valid until the next is taken). */
  *pieces(piece: Buffer): Generator<Uint8Array> {
    this.flush()
    for (let position = 0; ; ) {
      const n = readSync(this.fd, piece, 0, piece.length, position)
      if (n === 0) return
      position += n
      yield piece.subarray(0, n)
    }
  }

  close(): void {
    closeSync(this.fd)
  }
}

/** Every column but the ages, which are all 0 (seen in this backup). */
type SpilledColumn = Exclude<ColumnName, 'ages'>
const SPILLED: readonly SpilledColumn[] = ['keys', 'inos', 'sizes', 'mtimes', 'ctimes', 'chunkCounts', 'chunkIds', 'chunkSizes']

export class FilesSpill {
  #count = 0
  #chunks = 0
  readonly #columns: Record<SpilledColumn, ColumnFile>
  /** The keys spilled, 4 words each, in order, and the slots over them. */
  #keys = new Uint32Array(1024 * KEY_WORDS)
  #index = new RowSlots(slotCountFor(0))

  private constructor(columns: Record<SpilledColumn, ColumnFile>) {
    this.#columns = columns
  }

  /** A spill whose files live (unnamed) in `dir`. */
  static create(dir: string): FilesSpill {
    const columns: Partial<Record<SpilledColumn, ColumnFile>> = {}
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    try {
      for (const name of SPILLED) {
        const file = path.join(dir, `.files-spill-${randomBytes(8).toString('hex')}`)
        const fd = openSync(file, 'wx+', 0o600)
        unlinkSync(file)
        columns[name] = new ColumnFile(fd)
      }
    } catch (err) {
      for (const column of Object.values(columns)) column.close()
      throw err
    }
    return new FilesSpill(columns as Record<SpilledColumn, ColumnFile>)
  }

  get count(): number {
    return this.#count
  }

  get chunks(): number {
    return this.#chunks
  }

  /**
   * Appends an entry, seen and of age 0, unless its key was spilled already in this backup: the first
   * stays (a path backed up twice in one backup; should it have changed between, the next backup finds
   * the entry's identity different and reads the file).
   */
  add(key: Uint32Array, now: FileIdentity, chunks: readonly ChunkRef[]): void {
    const slot = this.#slotOf(key)
    if (slot >= 0) return
    this.#remember(key, ~slot)
    // Written straight into the columns' buffers: a backup's main thread does this for every new file, and
    // its garbage is what its collector spends its time on.
    const { keys, inos, sizes, mtimes, ctimes, chunkCounts, chunkIds, chunkSizes } = this.#columns
    keys.words.set(key, keys.next(KEY_LENGTH) / 4) // a key's words are its bytes in host order
    inos.view.setBigUint64(inos.next(8), now.ino, true)
    sizes.bytes.writeDoubleLE(now.size, sizes.next(8))
    mtimes.view.setBigInt64(mtimes.next(8), now.mtimeNs, true)
    ctimes.view.setBigInt64(ctimes.next(8), now.ctimeNs, true)
    chunkCounts.bytes.writeUInt32LE(chunks.length, chunkCounts.next(4))
    for (const chunk of chunks) {
      chunkIds.bytes.set(chunk.id, chunkIds.next(ID_LENGTH))
      chunkSizes.bytes.writeUInt32LE(chunk.size, chunkSizes.next(4))
    }
    this.#count++
    this.#chunks += chunks.length
  }

  /** The column's values for the entries spilled, in the cache file's layout; `piece` is the memory they are read into. */
  *column(name: ColumnName, piece: Buffer): Generator<Uint8Array> {
    if (name === 'ages') {
      // All seen in this backup: age 0.
      for (let left = this.#count * 4; left > 0; left -= piece.length) yield piece.fill(0, 0, Math.min(left, piece.length)).subarray(0, Math.min(left, piece.length))
      return
    }
    yield* this.#columns[name].pieces(piece)
  }

  close(): void {
    for (const column of Object.values(this.#columns)) column.close()
  }

  /** Slot of `key`, or ~(the empty slot where it would go). */
  #slotOf(key: Uint32Array): number {
    const { slots, mask } = this.#index
    const keys = this.#keys
    for (let slot = key[0]! & mask; ; slot = (slot + 1) & mask) {
      const row = slots[slot]!
      if (row === 0) return ~slot
      const b = (row - 1) * KEY_WORDS
      if (keys[b] === key[0] && keys[b + 1] === key[1] && keys[b + 2] === key[2] && keys[b + 3] === key[3]) return slot
    }
  }

  #remember(key: Uint32Array, slot: number): void {
    const row = this.#count
    if ((row + 1) * KEY_WORDS > this.#keys.length) {
      const grown = new Uint32Array(grownLength(this.#keys.length, (row + 1) * KEY_WORDS, 0))
      grown.set(this.#keys)
      this.#keys = grown
    }
    this.#keys.set(key, row * KEY_WORDS)
    if (this.#index.fullAt(row)) {
      this.#index.rebuild(slotCountFor(row + 1), this.#keys, KEY_WORDS, row)
      slot = ~this.#slotOf(key)
    }
    this.#index.slots[slot] = row + 1
  }
}
