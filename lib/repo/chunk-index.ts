/**
 * In-memory map from 32-byte chunk id to where the chunk is stored, compact
 * enough for millions of entries: no JS object per entry.
 *
 * Open addressing with linear probing over one Uint32Array of 12-word slots
 * (id as 8 words, then pack, offset, length, rawLength) plus one byte per
 * slot saying whether it is used. The table doubles when it would pass 3/4 full;
 * deletion shifts later entries of the probe run back (Knuth, TAOCP vol. 3,
 * 6.4 Algorithm R), so there are no tombstones and lookups never slow down
 * after many deletions. Ids are MAC or SHA-256 outputs, uniformly
 * distributed, so their first 32 bits are the hash; all 32 bytes are compared.
 *
 * Measured on the project VM (2 vCPU, Node 20, CPU time, 1M random ids,
 * lookups of 1M present and 1M absent ids):
 *   inserts ≈ 1.2M/s growing from empty (≈ 2.5M/s when sized up front with
 *   `new ChunkIndex(expected)`: fresh memory is slow to touch on this VM),
 *   hits ≈ 3.6M/s, misses ≈ 4.6M/s; serialize ≈ 0.18 s (ids sorted: 0.05 s of
 *   it), deserialize ≈ 0.17 s (order checked).
 *   Memory: 49 bytes per slot, so 65–131 bytes per entry depending on where
 *   the last doubling left the load; 103 at 1M entries (2^21 slots).
 * Limits: every location field is a uint32; at most 2^26 slots (≈ 50M
 * entries, 3.2 GiB).
 *
 * Serialized (for the local cache) as serialized-index.ts describes: records
 * in id order, written a piece at a time by serializedPieces() and read
 * back, checked, by loader().
 */
import { createHash } from 'node:crypto'
import { BIG_ENDIAN, bucketBits, compareIds, ID_LENGTH, idPrefix, MAX_RECORDS, readSerializedIndex, RECORD_LENGTH, RECORD_WORDS, serializedHead } from './serialized-index.js'

/** pack = index into a pack-id table kept elsewhere; all uint32. */
export interface ChunkLocation { pack: number; offset: number; length: number; rawLength: number }

/** A slot: the id's 8 words, then the 4 location words, as a serialized record is. */
const SLOT_WORDS = RECORD_WORDS
const SLOT_BYTES = SLOT_WORDS * 4
const MIN_CAPACITY = 1024
/** Most entries per slot a table holds before it doubles. */
const MAX_LOAD = 0.75
const MAX_CAPACITY = MAX_RECORDS / MAX_LOAD
/** Records in one piece of serializedPieces() (about 1 MiB). */
const RECORDS_PER_PIECE = 21_845

function capacityFor(entries: number): number {
  let capacity = MIN_CAPACITY
  while (entries > capacity * MAX_LOAD) capacity *= 2
  if (capacity > MAX_CAPACITY) throw new RangeError(`a chunk index holds at most ${MAX_RECORDS} entries`)
  return capacity
}

function checkUint32(loc: ChunkLocation): void {
  const { pack, offset, length, rawLength } = loc
  if (pack >>> 0 !== pack || offset >>> 0 !== offset || length >>> 0 !== length || rawLength >>> 0 !== rawLength) {
    throw new RangeError(`chunk location ${JSON.stringify(loc)} has a field that is not a uint32`)
  }
}

export class ChunkIndex {
  #slots: Uint32Array
  #used: Uint8Array
  #mask: number
  #size = 0
  /** Bumped by every set and delete, so serializedPieces() can tell the index changed under it. */
  #changes = 0
  // The id being looked up, as words (copied once per call, compared per probe).
  readonly #key = new Uint32Array(ID_LENGTH / 4)
  readonly #keyBytes = new Uint8Array(this.#key.buffer)

  /** `expected`: number of entries to make room for up front. */
  constructor(expected = 0) {
    const capacity = capacityFor(expected)
    this.#slots = new Uint32Array(capacity * SLOT_WORDS)
    this.#used = new Uint8Array(capacity)
    this.#mask = capacity - 1
  }

  get size(): number {
    return this.#size
  }

  /** Bytes held by the table (for reporting memory use). */
  get byteLength(): number {
    return this.#slots.byteLength + this.#used.byteLength
  }

  get(id: Uint8Array): ChunkLocation | undefined {
    const slot = this.#find(id)
    if (slot < 0) return undefined
    const s = this.#slots
    const b = slot * SLOT_WORDS + 8
    return { pack: s[b], offset: s[b + 1], length: s[b + 2], rawLength: s[b + 3] }
  }

  has(id: Uint8Array): boolean {
    return this.#find(id) >= 0
  }

  set(id: Uint8Array, loc: ChunkLocation): void {
    checkUint32(loc)
    this.#changes++
    let slot = this.#find(id)
    if (slot < 0) {
      if (this.#size + 1 > (this.#mask + 1) * MAX_LOAD) {
        this.#grow()
        slot = this.#find(id)
      }
      slot = ~slot
      this.#slots.set(this.#key, slot * SLOT_WORDS)
      this.#used[slot] = 1
      this.#size++
    }
    const b = slot * SLOT_WORDS + 8
    this.#slots[b] = loc.pack
    this.#slots[b + 1] = loc.offset
    this.#slots[b + 2] = loc.length
    this.#slots[b + 3] = loc.rawLength
  }

  delete(id: Uint8Array): boolean {
    let hole = this.#find(id)
    if (hole < 0) return false
    this.#changes++
    const s = this.#slots
    const used = this.#used
    const mask = this.#mask
    // Move back every later entry of the run that may live in the hole:
    // one whose home slot is not cyclically within (hole, j].
    for (let j = (hole + 1) & mask; used[j] === 1; j = (j + 1) & mask) {
      const home = s[j * SLOT_WORDS] & mask
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j
      if (!stays) {
        s.copyWithin(hole * SLOT_WORDS, j * SLOT_WORDS, (j + 1) * SLOT_WORDS)
        hole = j
      }
    }
    used[hole] = 0
    this.#size--
    return true
  }

  /** Entries in table order; ids are copies. Do not modify the index while iterating. */
  *entries(): IterableIterator<[Buffer, ChunkLocation]> {
    const bytes = new Uint8Array(this.#slots.buffer)
    for (let slot = 0; slot <= this.#mask; slot++) {
      if (this.#used[slot] === 0) continue
      const b = slot * SLOT_WORDS
      const s = this.#slots
      yield [Buffer.from(bytes.subarray(b * 4, b * 4 + ID_LENGTH)), { pack: s[b + 8], offset: s[b + 9], length: s[b + 10], rawLength: s[b + 11] }]
    }
  }

  serialize(): Buffer {
    return Buffer.concat([...this.serializedPieces()])
  }

  /**
   * The serialized form in pieces of about a megabyte, each made as it is
   * taken: the cache of a million blobs (48 MB) is written without being
   * held whole. Throws if the index changes between pieces.
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
    // A slot is a record: the id, then the four location words.
    const order = this.#slotsInIdOrder()
    const slots = this.#slots
    const newPiece = (): Uint32Array => new Uint32Array(RECORDS_PER_PIECE * SLOT_WORDS)
    const asBytes = (words: Uint32Array, n: number): Buffer => {
      const bytes = Buffer.from(words.buffer, 0, n * 4)
      if (BIG_ENDIAN) for (let o = 0; o < bytes.length; o += RECORD_LENGTH) bytes.subarray(o + ID_LENGTH, o + RECORD_LENGTH).swap32()
      return bytes
    }
    let piece = newPiece()
    let w = 0
    for (let i = 0; i < order.length; i++) {
      // Word by word: a subarray per record made this twice as slow.
      const from = order[i]! * SLOT_WORDS
      for (let k = 0; k < SLOT_WORDS; k++) piece[w + k] = slots[from + k]!
      w += SLOT_WORDS
      if (w < piece.length) continue
      const bytes = asBytes(piece, w)
      hash.update(bytes)
      yield bytes
      unchanged()
      piece = newPiece()
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
   * Places records (id words, then location words: slots as they are), word by word at their probe
   * positions, with no per-record objects (a million records took 0.28 s with a subarray per record,
   * mostly allocation, which delayed a mount's first listing). They are new and distinct: the reader
   * checked their order.
   */
  #place(records: Uint32Array): void {
    const slots = this.#slots
    const used = this.#used
    const mask = this.#mask
    for (let r = 0; r < records.length; r += SLOT_WORDS) {
      let slot = records[r]! & mask
      while (used[slot] === 1) slot = (slot + 1) & mask
      const to = slot * SLOT_WORDS
      for (let w = 0; w < SLOT_WORDS; w++) slots[to + w] = records[r + w]!
      used[slot] = 1
      this.#size++
    }
  }

  /**
   * The used slots in ascending id order: a counting sort on the ids' first bits (ids are uniformly
   * distributed, so about four share a bucket), then an insertion sort within each bucket on the ids'
   * first four bytes, whole ids compared only when those are equal. Holds 8 bytes an entry while it runs.
   */
  #slotsInIdOrder(): Uint32Array {
    const bytes = new Uint8Array(this.#slots.buffer)
    const used = this.#used
    const shift = 32 - bucketBits(this.#size, 4)
    const starts = new Uint32Array(2 ** (32 - shift) + 1)
    for (let slot = 0; slot <= this.#mask; slot++) {
      if (used[slot] === 1) starts[(idPrefix(bytes, slot * SLOT_BYTES) >>> shift) + 1]!++
    }
    for (let b = 1; b < starts.length; b++) starts[b]! += starts[b - 1]!
    const next = starts.slice()
    const order = new Uint32Array(this.#size)
    const prefixes = new Uint32Array(this.#size)
    for (let slot = 0; slot <= this.#mask; slot++) {
      if (used[slot] === 0) continue
      const prefix = idPrefix(bytes, slot * SLOT_BYTES)
      const at = next[prefix >>> shift]!++
      order[at] = slot
      prefixes[at] = prefix
    }
    for (let b = 0; b + 1 < starts.length; b++) {
      const first = starts[b]!
      for (let i = first + 1; i < starts[b + 1]!; i++) {
        const slot = order[i]!
        const prefix = prefixes[i]!
        let j = i - 1
        for (; j >= first; j--) {
          const other = prefixes[j]!
          if (other < prefix || (other === prefix && compareIds(bytes, order[j]! * SLOT_BYTES, bytes, slot * SLOT_BYTES) < 0)) break
          order[j + 1] = order[j]!
          prefixes[j + 1] = other
        }
        order[j + 1] = slot
        prefixes[j + 1] = prefix
      }
    }
    return order
  }

  /** Slot of `id`, or ~(the empty slot where it would go). Leaves `id` in #key. */
  #find(id: Uint8Array): number {
    if (id.length !== ID_LENGTH) throw new TypeError(`chunk ids are ${ID_LENGTH} bytes, got ${id.length}`)
    const k = this.#key
    this.#keyBytes.set(id)
    const s = this.#slots
    const used = this.#used
    const mask = this.#mask
    const k0 = k[0]
    for (let slot = k0 & mask; ; slot = (slot + 1) & mask) {
      if (used[slot] === 0) return ~slot
      const b = slot * SLOT_WORDS
      if (s[b] === k0 && s[b + 1] === k[1] && s[b + 2] === k[2] && s[b + 3] === k[3] &&
          s[b + 4] === k[4] && s[b + 5] === k[5] && s[b + 6] === k[6] && s[b + 7] === k[7]) return slot
    }
  }

  #grow(): void {
    const oldSlots = this.#slots
    const oldUsed = this.#used
    const capacity = capacityFor(this.#size + 1)
    const slots = new Uint32Array(capacity * SLOT_WORDS)
    const used = new Uint8Array(capacity)
    const mask = capacity - 1
    for (let old = 0; old < oldUsed.length; old++) {
      if (oldUsed[old] === 0) continue
      const from = old * SLOT_WORDS
      let slot = oldSlots[from] & mask
      while (used[slot] === 1) slot = (slot + 1) & mask
      slots.set(oldSlots.subarray(from, from + SLOT_WORDS), slot * SLOT_WORDS)
      used[slot] = 1
    }
    this.#slots = slots
    this.#used = used
    this.#mask = mask
  }
}
