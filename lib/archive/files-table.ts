/**
 * The files cache's entries in memory, with no JS object per entry (the
 * cache is as large as the tree: a Map of entry objects cost 400–500 bytes
 * per file). Three kinds of typed array:
 *
 * - Rows: one 64-byte row per file, without gaps (a deletion moves the last
 *   row into the hole), as uint32 words:
 *     0–3   key: the first 16 bytes of SHA-256 of the path (word 0 is the hash)
 *     4–5   ino (uint64)          6–7   size (float64)
 *     8–9   mtime (int64 ns)      10–11 ctime (int64 ns)
 *     12    first chunk in the arena, 13 chunk count
 *     14    age (backups in which the file was not seen), 15 seen (0 or 1)
 *   The 64-bit fields are read through BigInt64/BigUint64/Float64 views of
 *   the same memory, so a bigint exists only while a lookup compares it.
 * - Slots: the index over the rows (repo/row-slots.ts, as the chunk index's).
 *   Keys are SHA-256 output, so their first word is the hash; all 16 bytes
 *   are compared.
 * - The chunk arena: each chunk's 32-byte id and uint32 size; an entry's
 *   chunks are consecutive. Replacing or deleting an entry leaves its chunks
 *   dead; when the arena is full it is rebuilt from the live chunks alone,
 *   so dead chunks never cost more than the live ones plus the slack. Arena
 *   bytes are never rewritten in place: the id views that chunks() hands out
 *   stay valid.
 *
 * Rows and arena grow by half (they need no power of two, and doubling
 * would leave up to half of them unused).
 *
 * Memory: 64 bytes per row, 4 per slot (5–11 per entry), 36 per chunk;
 * with growth slack, 105–160 bytes for a file of one chunk (measured at
 * 100,000: 154 after inserting them one by one, 111 straight from a file).
 * Limits: 2^27 slots (≈ 100M files); arena offsets are uint32.
 */
import type { ChunkRef } from './item.js'
import { grownLength, RowSlots, slotCountFor } from '../repo/row-slots.js'

export interface FileIdentity {
  ino: bigint
  size: number
  mtimeNs: bigint
  ctimeNs: bigint
}

export const KEY_LENGTH = 16
const ID_LENGTH = 32

/** The files cache's columns (files-cache.ts documents the layout); entry i is the i-th value of each per-entry column. */
export type ColumnName = 'keys' | 'inos' | 'sizes' | 'mtimes' | 'ctimes' | 'ages' | 'chunkCounts' | 'chunkIds' | 'chunkSizes'

/** The columns in file order: name, bytes of one value, and whether there is a value per entry or per chunk. */
export const COLUMNS: readonly (readonly [ColumnName, number, 'entry' | 'chunk'])[] = [
  ['keys', KEY_LENGTH, 'entry'], ['inos', 8, 'entry'], ['sizes', 8, 'entry'], ['mtimes', 8, 'entry'], ['ctimes', 8, 'entry'],
  ['ages', 4, 'entry'], ['chunkCounts', 4, 'entry'], ['chunkIds', ID_LENGTH, 'chunk'], ['chunkSizes', 4, 'chunk'],
]
const ROW_WORDS = 16
// Word offsets of a row's fields (the 64-bit ones at even words).
const INO = 4
const SIZE = 6
const MTIME = 8
const CTIME = 10
const FIRST_CHUNK = 12
const CHUNK_COUNT = 13
const AGE = 14
const SEEN = 15
/** Where each per-entry column goes in a row. */
const FIELD_OF: Record<Exclude<ColumnName, 'chunkIds' | 'chunkSizes'>, number> = { keys: 0, inos: INO, sizes: SIZE, mtimes: MTIME, ctimes: CTIME, ages: AGE, chunkCounts: CHUNK_COUNT }

const MIN_ROWS = 64
const MIN_CHUNKS = 64
const MAX_SLOTS = 2 ** 27

// Rows hold words in host order; the columns are little-endian.
const BIG_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 0

function slotsFor(entries: number): number {
  const slots = slotCountFor(entries)
  if (slots > MAX_SLOTS) throw new RangeError(`the files cache holds at most ${(MAX_SLOTS * 3) / 4} files`)
  return slots
}

export class FileTable {
  #rows!: Uint32Array
  #int64!: BigInt64Array
  #uint64!: BigUint64Array
  #float64!: Float64Array
  #count = 0
  #index: RowSlots
  #ids: Buffer
  #chunkSizes: Uint32Array
  /** Chunks appended to the arena, live or dead. */
  #chunkEnd = 0
  #liveChunks = 0

  /** `rows` and `chunks`: how many to make room for up front. */
  constructor(rows = 0, chunks = 0) {
    this.#setRows(new Uint32Array(Math.max(rows, MIN_ROWS) * ROW_WORDS))
    this.#index = new RowSlots(slotsFor(rows))
    this.#ids = Buffer.allocUnsafeSlow(Math.max(chunks, MIN_CHUNKS) * ID_LENGTH)
    this.#chunkSizes = new Uint32Array(Math.max(chunks, MIN_CHUNKS))
  }

  get size(): number {
    return this.#count
  }

  /** The row of `key` (4 words), or -1. A deletion may move rows. */
  find(key: Uint32Array): number {
    const slot = this.#slotOf(key, 0)
    return slot < 0 ? -1 : this.#index.slots[slot] - 1
  }

  sameFile(row: number, now: FileIdentity): boolean {
    const b = row * ROW_WORDS
    return this.#float64[(b + SIZE) / 2] === now.size && this.#uint64[(b + INO) / 2] === now.ino &&
      this.#int64[(b + MTIME) / 2] === now.mtimeNs && this.#int64[(b + CTIME) / 2] === now.ctimeNs
  }

  /** The row's chunks; the ids are views of the arena. */
  chunks(row: number): ChunkRef[] {
    const first = this.#rows[row * ROW_WORDS + FIRST_CHUNK]
    const end = first + this.#rows[row * ROW_WORDS + CHUNK_COUNT]
    const refs: ChunkRef[] = []
    for (let c = first; c < end; c++) refs.push({ id: this.#ids.subarray(c * ID_LENGTH, (c + 1) * ID_LENGTH), size: this.#chunkSizes[c] })
    return refs
  }

  markSeen(row: number): void {
    this.#rows[row * ROW_WORDS + SEEN] = 1
  }

  /** Inserts or replaces the entry of `key` (4 words), seen and of age 0. */
  set(key: Uint32Array, now: FileIdentity, chunks: readonly ChunkRef[]): void {
    for (const c of chunks) {
      if (c.id.length !== ID_LENGTH || c.size >>> 0 !== c.size) throw new RangeError(`the files cache takes 32-byte chunk ids and sizes below 2^32 (got ${c.id.length} bytes, size ${c.size})`)
    }
    let slot = this.#slotOf(key, 0)
    let row: number
    if (slot >= 0) {
      row = this.#index.slots[slot] - 1
      this.#liveChunks -= this.#rows[row * ROW_WORDS + CHUNK_COUNT]
      this.#rows[row * ROW_WORDS + CHUNK_COUNT] = 0 // an arena rebuild must not keep its old chunks
    } else {
      if (this.#index.fullAt(this.#count)) {
        this.#index.rebuild(slotsFor(this.#count + 1), this.#rows, ROW_WORDS, this.#count)
        slot = this.#slotOf(key, 0)
      }
      row = this.#addRow(key)
      this.#index.slots[~slot] = row + 1
    }
    const first = this.#appendChunks(chunks)
    const b = row * ROW_WORDS
    this.#uint64[(b + INO) / 2] = now.ino
    this.#float64[(b + SIZE) / 2] = now.size
    this.#int64[(b + MTIME) / 2] = now.mtimeNs
    this.#int64[(b + CTIME) / 2] = now.ctimeNs
    this.#rows[b + FIRST_CHUNK] = first
    this.#rows[b + CHUNK_COUNT] = chunks.length
    this.#rows[b + AGE] = 0
    this.#rows[b + SEEN] = 1
  }

  delete(key: Uint32Array): boolean {
    const hole = this.#slotOf(key, 0)
    if (hole < 0) return false
    const row = this.#index.slots[hole] - 1
    this.#index.remove(hole, this.#rows, ROW_WORDS)
    this.#liveChunks -= this.#rows[row * ROW_WORDS + CHUNK_COUNT]
    this.#moveLastRowTo(row)
    return true
  }

  /** Whether every entry was seen and had age 0 (then saving would write what was read). */
  allSeenAtAgeZero(): boolean {
    for (let b = 0; b < this.#count * ROW_WORDS; b += ROW_WORDS) {
      if (this.#rows[b + SEEN] === 0 || this.#rows[b + AGE] !== 0) return false
    }
    return true
  }

  /**
   * How many entries and chunks savedColumn(…, ttl, …) writes: the entries as
   * they are to be saved after this backup, age 0 if seen, else one more,
   * and those reaching `ttl` left out.
   */
  savedCounts(ttl: number): { count: number; chunks: number } {
    let count = 0
    let chunks = 0
    for (let b = 0; b < this.#count * ROW_WORDS; b += ROW_WORDS) {
      if (this.#nextAge(b) >= ttl) continue
      count++
      chunks += this.#rows[b + CHUNK_COUNT]
    }
    return { count, chunks }
  }

  /**
   * One column of the entries as saved, in file order, entries aged (see savedCounts), in pieces
   * (little-endian, whole values) made in `piece`, whose offset must be a multiple of 4 (as
   * Buffer.allocUnsafeSlow's is): a cache is written a piece at a time instead of being built whole
   * beside the table (for a million files the columns were 92 MB at the end of a backup). A piece is
   * valid until the next is taken.
   */
  *savedColumn(name: ColumnName, ttl: number, piece: Buffer): Generator<Uint8Array> {
    const rows = this.#rows
    const [, width, per] = COLUMNS.find(([column]) => column === name)!
    const valueWords = width / 4
    const field = per === 'entry' && name !== 'ages' ? FIELD_OF[name as keyof typeof FIELD_OF] : 0
    const pieceWords = Math.floor(piece.length / width) * valueWords
    const words = new Uint32Array(piece.buffer, piece.byteOffset, pieceWords)
    let at = 0
    const flush = (): Uint8Array => {
      const filled = words.subarray(0, at)
      at = 0
      // Keys and ids are bytes already; numbers are stored little-endian.
      return name === 'keys' || name === 'chunkIds' ? Buffer.from(filled.buffer, filled.byteOffset, filled.byteLength) : littleEndian(filled, width as 4 | 8)
    }
    for (let b = 0; b < this.#count * ROW_WORDS; b += ROW_WORDS) {
      const age = this.#nextAge(b)
      if (age >= ttl) continue
      if (per === 'entry') {
        if (name === 'ages') words[at] = age
        else for (let w = 0; w < valueWords; w++) words[at + w] = rows[b + field + w]
        at += valueWords
        if (at === pieceWords) yield flush()
        continue
      }
      const first = rows[b + FIRST_CHUNK]
      for (let k = first; k < first + rows[b + CHUNK_COUNT]; k++) {
        if (name === 'chunkIds') new Uint8Array(words.buffer, words.byteOffset + at * 4, ID_LENGTH).set(this.#ids.subarray(k * ID_LENGTH, (k + 1) * ID_LENGTH))
        else words[at] = this.#chunkSizes[k]
        at += valueWords
        if (at === pieceWords) yield flush()
      }
    }
    if (at > 0) yield flush()
  }

  #nextAge(b: number): number {
    return this.#rows[b + SEEN] === 1 ? 0 : this.#rows[b + AGE] + 1
  }

  /**
   * Builds a table of `count` entries and `chunks` chunks from its columns
   * (savedColumn's layout) fed piece by piece, so that a cache file is read
   * into it without being held whole (a million files: 100 MB less at the
   * load). Each piece holds whole values; `finish` checks what the pieces
   * cannot: that the chunk counts add up and no key comes twice.
   */
  static loader(count: number, chunks: number): { feed: (column: ColumnName, first: number, bytes: Uint8Array) => void; finish: () => FileTable | null } {
    const table = new FileTable(count, chunks)
    const rows = table.#rows
    const scratch = { words: new Uint32Array(0) }
    const feed = (column: ColumnName, first: number, bytes: Uint8Array): void => {
      if (column === 'chunkIds') {
        table.#ids.set(bytes, first * ID_LENGTH)
        return
      }
      const width = COLUMNS.find(([name]) => name === column)![1]
      const words = hostWordsInto(scratch, bytes, column === 'keys' ? 1 : (width as 4 | 8))
      if (column === 'chunkSizes') {
        table.#chunkSizes.set(words, first)
        return
      }
      const perValue = column === 'keys' ? 4 : width / 4
      const field = FIELD_OF[column]
      for (let v = 0, b = first * ROW_WORDS + field; v < words.length; v += perValue, b += ROW_WORDS) {
        for (let w = 0; w < perValue; w++) rows[b + w] = words[v + w]
      }
    }
    const finish = (): FileTable | null => {
      let first = 0
      for (let b = 0; b < count * ROW_WORDS; b += ROW_WORDS) {
        rows[b + FIRST_CHUNK] = first
        first += rows[b + CHUNK_COUNT]
        if (first > chunks) return null
        const slot = table.#slotOf(rows, b)
        if (slot >= 0) return null // the same key twice
        table.#index.slots[~slot] = b / ROW_WORDS + 1
      }
      if (first !== chunks) return null
      table.#count = count
      table.#chunkEnd = table.#liveChunks = chunks
      return table
    }
    return { feed, finish }
  }

  /** Slot of the key at words[at..at+4], or ~(the empty slot where it would go). */
  #slotOf(words: Uint32Array, at: number): number {
    const rows = this.#rows
    const { slots, mask } = this.#index
    const k0 = words[at]
    const k1 = words[at + 1]
    const k2 = words[at + 2]
    const k3 = words[at + 3]
    for (let slot = k0 & mask; ; slot = (slot + 1) & mask) {
      const row = slots[slot]
      if (row === 0) return ~slot
      const b = (row - 1) * ROW_WORDS
      if (rows[b] === k0 && rows[b + 1] === k1 && rows[b + 2] === k2 && rows[b + 3] === k3) return slot
    }
  }

  /** A new row holding `key` and zeros. */
  #addRow(key: Uint32Array): number {
    const row = this.#count
    if ((row + 1) * ROW_WORDS > this.#rows.length) {
      const rows = new Uint32Array(grownLength(this.#rows.length / ROW_WORDS, row + 1, MIN_ROWS) * ROW_WORDS)
      rows.set(this.#rows.subarray(0, row * ROW_WORDS))
      this.#setRows(rows)
    }
    this.#rows.fill(0, row * ROW_WORDS, (row + 1) * ROW_WORDS)
    this.#rows.set(key, row * ROW_WORDS)
    this.#count++
    return row
  }

  /** Fills the hole at `row` with the last row, keeping rows without gaps. */
  #moveLastRowTo(row: number): void {
    const last = --this.#count
    if (row === last) return
    this.#rows.copyWithin(row * ROW_WORDS, last * ROW_WORDS, (last + 1) * ROW_WORDS)
    this.#index.moved(last, row, this.#rows, ROW_WORDS)
  }

  #setRows(rows: Uint32Array): void {
    this.#rows = rows
    this.#int64 = new BigInt64Array(rows.buffer)
    this.#uint64 = new BigUint64Array(rows.buffer)
    this.#float64 = new Float64Array(rows.buffer)
  }

  /** Appends the chunks to the arena; returns the first one's index. */
  #appendChunks(chunks: readonly ChunkRef[]): number {
    if (this.#chunkEnd + chunks.length > this.#chunkSizes.length) this.#rebuildArena(chunks.length)
    const first = this.#chunkEnd
    for (let k = 0; k < chunks.length; k++) {
      this.#ids.set(chunks[k].id, (first + k) * ID_LENGTH)
      this.#chunkSizes[first + k] = chunks[k].size
    }
    this.#chunkEnd += chunks.length
    this.#liveChunks += chunks.length
    return first
  }

  /** A new arena holding the live chunks only, with room for `more` and slack. */
  #rebuildArena(more: number): void {
    const length = grownLength(this.#liveChunks, this.#liveChunks + more, MIN_CHUNKS)
    const ids = Buffer.allocUnsafeSlow(length * ID_LENGTH)
    const sizes = new Uint32Array(length)
    let end = 0
    for (let b = 0; b < this.#count * ROW_WORDS; b += ROW_WORDS) {
      const first = this.#rows[b + FIRST_CHUNK]
      const n = this.#rows[b + CHUNK_COUNT]
      this.#ids.copy(ids, end * ID_LENGTH, first * ID_LENGTH, (first + n) * ID_LENGTH)
      for (let k = 0; k < n; k++) sizes[end + k] = this.#chunkSizes[first + k]
      this.#rows[b + FIRST_CHUNK] = end
      end += n
    }
    this.#ids = ids
    this.#chunkSizes = sizes
    this.#chunkEnd = end
  }
}

/** `words` as little-endian bytes, in place (they hold `width`-byte values). */
function littleEndian(words: Uint32Array, width: 4 | 8): Buffer {
  const bytes = Buffer.from(words.buffer, words.byteOffset, words.byteLength)
  if (BIG_ENDIAN && width === 8) bytes.swap64()
  if (BIG_ENDIAN && width === 4) bytes.swap32()
  return bytes
}

/** `bytes` as host-order words in `scratch` (grown as needed), reading them as little-endian `width`-byte values (1: raw bytes). */
function hostWordsInto(scratch: { words: Uint32Array }, bytes: Uint8Array, width: 1 | 4 | 8): Uint32Array {
  if (scratch.words.length * 4 < bytes.length) scratch.words = new Uint32Array(Math.ceil(bytes.length / 4))
  const words = scratch.words.subarray(0, bytes.length / 4)
  const copy = Buffer.from(words.buffer, words.byteOffset, bytes.length)
  copy.set(bytes)
  if (BIG_ENDIAN && width === 8) copy.swap64()
  if (BIG_ENDIAN && width === 4) copy.swap32()
  return words
}
