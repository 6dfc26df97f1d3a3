/**
 * In-memory map from 32-byte chunk id to where the chunk is stored, compact
 * enough for millions of entries: no JS object per entry.
 *
 * Records (id as 8 words, then pack, offset, length, rawLength) lie densely
 * in one Uint32Array that grows by half, indexed by row-slots.ts (linear
 * probing on the id's first word, which is uniformly distributed; all 32
 * bytes are compared). A deletion moves the last record into the freed one.
 *
 * Why dense records: with 48-byte records in the slots themselves, a table
 * at 3/8 load after doubling cost 131 bytes an entry, and a doubling
 * held both tables. The first backup of the medium corpus (105,040 chunks)
 * had just doubled to 262,144 slots: 12.6 MiB in one block at its peak
 * (heaptrack). Now records cost 48 bytes an entry (up to 72 with growth
 * slack) and slots 5–11.
 *
 * Measured on the project VM (`node bench/micro.mjs index`: 1M random ids
 * inserted one by one, looked up, 1M absent ids looked up; CPU time, 3
 * passes, two alternated runs each, against records in the slots):
 *   inserts 293-384 ms (342-384), hits 154-194 ms (229-239), misses 160-219 ms
 *   (138-151: one more memory access a probe), serialize 258-294 ms
 *   (167-230), deserialize 57-75 ms (122-139), deleting half 165-228 ms
 *   (131-145); 66.5 MiB for 1M entries (98.0), 6.1 MiB for 105,040 (12.3).
 *   First backup of the medium corpus, 3 alternated runs each: peak 161 /
 *   163 / 171 MiB against 168 / 176 / 177, wall times the same.
 * Limits: every location field is a uint32; at most 2^26 slots (≈ 50M
 * entries).
 *
 * Serialized (for the local cache) as serialized-index.ts describes: records
 * in id order, written a piece at a time by serializedPieces() and read
 * back, checked, by loader().
 */
import { createHash } from 'node:crypto'
import { BIG_ENDIAN, bucketBits, compareIds, ID_LENGTH, idPrefix, MAX_RECORDS, readSerializedIndex, RECORD_LENGTH, RECORD_WORDS, serializedHead } from './serialized-index.js'
import { grownLength, RowSlots, slotCountFor } from './row-slots.js'

/** pack = index into a pack-id table kept elsewhere; all uint32. */
export interface ChunkLocation { pack: number; offset: number; length: number; rawLength: number }

/** A record: the id's 8 words, then the 4 location words, as a serialized record is. */
const RECORD_BYTES = RECORD_WORDS * 4
const MIN_RECORDS = 256
const MAX_SLOTS = 2 ** 26
/** Records in one piece of serializedPieces() (about 1 MiB). */
const RECORDS_PER_PIECE = 21_845

function slotsFor(entries: number): number {
  const slots = slotCountFor(entries)
  if (slots > MAX_SLOTS || entries > MAX_RECORDS) throw new RangeError(`a chunk index holds at most ${Math.min(MAX_RECORDS, (MAX_SLOTS * 3) / 4)} entries`)
  return slots
}

function checkUint32(loc: ChunkLocation): void {
  const { pack, offset, length, rawLength } = loc
  if (pack >>> 0 !== pack || offset >>> 0 !== offset || length >>> 0 !== length || rawLength >>> 0 !== rawLength) {
    throw new RangeError(`chunk location ${JSON.stringify(loc)} has a field that is not a uint32`)
  }
}

export class ChunkIndex {
  /** Records 0 .. size-1, densely; room for more. */
  #records: Uint32Array
  #index: RowSlots
  #size = 0
  /** Bumped by every set and delete, so serializedPieces() can tell the index changed under it. */
  #changes = 0
  // The id being looked up, as words (copied once per call, compared per probe).
  readonly #key = new Uint32Array(ID_LENGTH / 4)
  readonly #keyBytes = new Uint8Array(this.#key.buffer)

  /** `expected`: number of entries to make room for up front. */
  constructor(expected = 0) {
    this.#records = new Uint32Array(Math.max(MIN_RECORDS, expected) * RECORD_WORDS)
    this.#index = new RowSlots(slotsFor(expected))
  }

  get size(): number {
    return this.#size
  }

  /** Bytes held by the table (for reporting memory use). */
  get byteLength(): number {
    return this.#records.byteLength + this.#index.slots.byteLength
  }

  get(id: Uint8Array): ChunkLocation | undefined {
    const slot = this.#find(id)
    if (slot < 0) return undefined
    const r = this.#records
    const b = (this.#index.slots[slot]! - 1) * RECORD_WORDS + 8
    return { pack: r[b]!, offset: r[b + 1]!, length: r[b + 2]!, rawLength: r[b + 3]! }
  }

  has(id: Uint8Array): boolean {
    return this.#find(id) >= 0
  }

  set(id: Uint8Array, loc: ChunkLocation): void {
    checkUint32(loc)
    this.#changes++
    let slot = this.#find(id)
    if (slot < 0) {
      if (this.#index.fullAt(this.#size)) {
        this.#index.rebuild(slotsFor(this.#size + 1), this.#records, RECORD_WORDS, this.#size)
        slot = this.#find(id)
      }
      if ((this.#size + 1) * RECORD_WORDS > this.#records.length) this.#growRecords()
      this.#records.set(this.#key, this.#size * RECORD_WORDS)
      this.#index.slots[~slot] = ++this.#size
      slot = ~slot
    }
    const b = (this.#index.slots[slot]! - 1) * RECORD_WORDS + 8
    const r = this.#records
    r[b] = loc.pack
    r[b + 1] = loc.offset
    r[b + 2] = loc.length
    r[b + 3] = loc.rawLength
  }

  delete(id: Uint8Array): boolean {
    const hole = this.#find(id)
    if (hole < 0) return false
    this.#changes++
    const records = this.#records
    const freed = this.#index.slots[hole]! - 1
    this.#index.remove(hole, records, RECORD_WORDS)
    // The last record moves into the freed one, so records stay dense.
    const last = this.#size - 1
    if (freed !== last) {
      records.copyWithin(freed * RECORD_WORDS, last * RECORD_WORDS, (last + 1) * RECORD_WORDS)
      this.#index.moved(last, freed, records, RECORD_WORDS)
    }
    this.#size--
    return true
  }

  /** Entries in table order; ids are copies. Do not modify the index while iterating. */
  *entries(): IterableIterator<[Buffer, ChunkLocation]> {
    const bytes = new Uint8Array(this.#records.buffer)
    for (let i = 0; i < this.#size; i++) {
      const b = i * RECORD_WORDS
      const r = this.#records
      yield [Buffer.from(bytes.subarray(b * 4, b * 4 + ID_LENGTH)), { pack: r[b + 8]!, offset: r[b + 9]!, length: r[b + 10]!, rawLength: r[b + 11]! }]
    }
  }

  serialize(): Buffer {
    return Buffer.concat(Array.from(this.serializedPieces(), (piece) => Buffer.from(piece)))
  }

  /**
   * The serialized form in pieces of about a megabyte, each made as it is
   * taken: the cache of a million blobs (48 MB) is written without being
   * held whole. The pieces share one buffer: a piece is valid until the next
   * is taken. Throws if the index changes between pieces.
   */
  *serializedPieces(): Generator<Buffer> {
    const changes = this.#changes
    const unchanged = (): void => {
      if (this.#changes !== changes) throw new Error('the chunk index changed while it was serialized')
    }
    const hash = createHash('sha256')
    const head = serializedHead(this.#size)
    hash.update(head)
    yield head
    unchanged()
    const order = this.#recordsInIdOrder()
    const records = this.#records
    const asBytes = (words: Uint32Array, n: number): Buffer => {
      const bytes = Buffer.from(words.buffer, 0, n * 4)
      if (BIG_ENDIAN) for (let o = 0; o < bytes.length; o += RECORD_LENGTH) bytes.subarray(o + ID_LENGTH, o + RECORD_LENGTH).swap32()
      return bytes
    }
    const piece = new Uint32Array(RECORDS_PER_PIECE * RECORD_WORDS)
    let w = 0
    for (let i = 0; i < order.length; i++) {
      // Word by word: a subarray per record made this twice as slow.
      const from = order[i]! * RECORD_WORDS
      for (let k = 0; k < RECORD_WORDS; k++) piece[w + k] = records[from + k]!
      w += RECORD_WORDS
      if (w < piece.length) continue
      const bytes = asBytes(piece, w)
      hash.update(bytes)
      yield bytes
      unchanged()
      w = 0
    }
    const last = asBytes(piece, w)
    hash.update(last)
    yield last
    unchanged()
    yield hash.digest()
  }

  static deserialize(buf: Uint8Array): ChunkIndex {
    const loader = ChunkIndex.loader(buf.length)
    loader.feed(buf)
    return loader.finish()
  }

  /**
   * Reads serialized bytes given in pieces of any size (a cache file read a megabyte at a time), with
   * readSerializedIndex's checks: a caller never holds the whole serialized form beside the table it
   * becomes. `length` is the serialized length; finish() throws CairnError('integrity') on anything wrong.
   */
  static loader(length: number): { feed(piece: Uint8Array): void; finish(): ChunkIndex } {
    let index: ChunkIndex | null = null
    const reader = readSerializedIndex(length, {
      count: (count) => (index = new ChunkIndex(count)),
      records: (words) => index!.#place(words),
    })
    return {
      feed: (piece) => reader.feed(piece),
      finish: () => {
        reader.finish()
        return index!
      },
    }
  }

  /**
   * Appends records (id words, then location words, as they are) and gives each a slot, word by word
   * with no per-record objects (a million records took 0.28 s with a subarray per record, mostly
   * allocation, which delayed a mount's first listing). They are new and distinct: the reader checked
   * their order; the constructor made room for them all.
   */
  #place(words: Uint32Array): void {
    const records = this.#records
    const { slots, mask } = this.#index
    records.set(words, this.#size * RECORD_WORDS)
    for (let w = 0; w < words.length; w += RECORD_WORDS) {
      let slot = words[w]! & mask
      while (slots[slot] !== 0) slot = (slot + 1) & mask
      slots[slot] = ++this.#size
    }
  }

  /**
   * Record numbers in ascending id order: a counting sort on the ids' first bits (ids are uniformly
   * distributed, so about four share a bucket), then an insertion sort within each bucket on the ids'
   * first four bytes, whole ids compared only when those are equal. Holds 8 bytes an entry while it runs.
   */
  #recordsInIdOrder(): Uint32Array {
    const bytes = new Uint8Array(this.#records.buffer)
    const n = this.#size
    const shift = 32 - bucketBits(n, 4)
    const starts = new Uint32Array(2 ** (32 - shift) + 1)
    for (let i = 0; i < n; i++) starts[(idPrefix(bytes, i * RECORD_BYTES) >>> shift) + 1]!++
    for (let b = 1; b < starts.length; b++) starts[b]! += starts[b - 1]!
    const next = starts.slice()
    const order = new Uint32Array(n)
    const prefixes = new Uint32Array(n)
    for (let i = 0; i < n; i++) {
      const prefix = idPrefix(bytes, i * RECORD_BYTES)
      const at = next[prefix >>> shift]!++
      order[at] = i
      prefixes[at] = prefix
    }
    for (let b = 0; b + 1 < starts.length; b++) {
      const first = starts[b]!
      for (let i = first + 1; i < starts[b + 1]!; i++) {
        const rec = order[i]!
        const prefix = prefixes[i]!
        let j = i - 1
        for (; j >= first; j--) {
          const other = prefixes[j]!
          if (other < prefix || (other === prefix && compareIds(bytes, order[j]! * RECORD_BYTES, bytes, rec * RECORD_BYTES) < 0)) break
          order[j + 1] = order[j]!
          prefixes[j + 1] = other
        }
        order[j + 1] = rec
        prefixes[j + 1] = prefix
      }
    }
    return order
  }

  /** Slot of `id`, or ~(the empty slot where it would go). Leaves `id` in #key. */
  #find(id: Uint8Array): number {
    if (id.length !== ID_LENGTH) throw new TypeError(`chunk ids are ${ID_LENGTH} bytes, got ${id.length}`)
    this.#keyBytes.set(id)
    const k = this.#key
    const r = this.#records
    const { slots, mask } = this.#index
    const k0 = k[0]!
    for (let slot = k0 & mask; ; slot = (slot + 1) & mask) {
      const v = slots[slot]!
      if (v === 0) return ~slot
      const b = (v - 1) * RECORD_WORDS
      if (r[b] === k0 && r[b + 1] === k[1] && r[b + 2] === k[2] && r[b + 3] === k[3] &&
          r[b + 4] === k[4] && r[b + 5] === k[5] && r[b + 6] === k[6] && r[b + 7] === k[7]) return slot
    }
  }

  /** Room for one more record, half as many again as now. */
  #growRecords(): void {
    const records = new Uint32Array(grownLength(this.#records.length / RECORD_WORDS, this.#size + 1, MIN_RECORDS) * RECORD_WORDS)
    records.set(this.#records.subarray(0, this.#size * RECORD_WORDS))
    this.#records = records
  }
}
