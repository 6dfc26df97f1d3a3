/**
 * In-memory map from 32-byte chunk id to where the chunk is stored, compact
 * enough for millions of entries: no JS object per entry.
 *
 * Open addressing with linear probing over one Uint32Array of 12-word slots
 * (id as 8 words, then pack, offset, length, rawLength; a dense table for
 * lookups keeps 4 words of id, see loader()) plus one byte per slot
 * saying whether it is used. The table doubles when it would pass 3/4 full;
 * deletion shifts later entries of the probe run back (Knuth, TAOCP vol. 3,
 * 6.4 Algorithm R), so there are no tombstones and lookups never slow down
 * after many deletions. Ids are MAC or SHA-256 outputs, uniformly
 * distributed, so their first 32 bits are the hash; all 32 bytes are compared.
 *
 * Measured on the project VM (2 vCPU, Node 20, CPU time, 1M random ids,
 * lookups of 1M present and 1M absent ids):
 *   inserts ≈ 1.2M/s growing from empty (≈ 2.5M/s when sized up front with
 *   `new ChunkIndex(expected)`: fresh memory is slow to touch on this VM),
 *   hits ≈ 3.6M/s, misses ≈ 4.6M/s; serialize ≈ 0.2 s, deserialize ≈ 0.35 s.
 *   Memory: 49 bytes per slot, so 65–131 bytes per entry depending on where
 *   the last doubling left the load; 103 at 1M entries (2^21 slots).
 * Limits: every location field is a uint32; at most 2^26 slots (≈ 50M
 * entries, 3.2 GiB).
 *
 * Serialized form (for the local cache; little-endian):
 *   magic "CAIRNCIX" | version u32 = 1 | count u32 |
 *   count × (id[32] | pack u32 | offset u32 | length u32 | rawLength u32) |
 *   SHA-256 of all the preceding bytes [32]
 * deserialize() checks all of it and throws CairnError('integrity') on
 * anything else, so that a damaged cache is rebuilt rather than trusted.
 */
import { createHash } from 'node:crypto'
import { CairnError } from '../errors.js'

/** pack = index into a pack-id table kept elsewhere; all uint32. */
export interface ChunkLocation { pack: number; offset: number; length: number; rawLength: number }

const ID_LENGTH = 32
/** A full slot: the id's 8 words, then the 4 location words (also the serialized record's layout). */
const SLOT_WORDS = 12
const SLOT_BYTES = SLOT_WORDS * 4
/** Id words a dense table keeps: the first 16 bytes (see loader()). */
const PREFIX_WORDS = 4
const MIN_CAPACITY = 1024
const MAX_CAPACITY = 2 ** 26
const MAGIC = Buffer.from('CAIRNCIX', 'ascii')
const VERSION = 1
const HEAD_LENGTH = MAGIC.length + 8
const RECORD_LENGTH = ID_LENGTH + 16
const SUM_LENGTH = 32
/** Records placed per batch while loading: 48 KiB of words. */
const RECORDS_PER_BATCH = 1024
/** Records in one piece of serializedPieces() (about 1 MiB). */
const RECORDS_PER_PIECE = 21_845

/** Most entries per slot a table grows at (inserts), and a dense table loaded for lookups may hold. */
const MAX_LOAD = 0.75
const MAX_DENSE_LOAD = 0.96

function capacityFor(entries: number, maxLoad = MAX_LOAD): number {
  let capacity = MIN_CAPACITY
  while (entries > capacity * maxLoad) capacity *= 2
  if (capacity > MAX_CAPACITY) throw new RangeError(`a chunk index holds at most ${MAX_CAPACITY * MAX_LOAD} entries`)
  return capacity
}

function checkUint32(loc: ChunkLocation): void {
  const { pack, offset, length, rawLength } = loc
  if (pack >>> 0 !== pack || offset >>> 0 !== offset || length >>> 0 !== length || rawLength >>> 0 !== rawLength) {
    throw new RangeError(`chunk location ${JSON.stringify(loc)} has a field that is not a uint32`)
  }
}

// Slots hold the location words in host order; the serialized form is little-endian.
const BIG_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 0

export class ChunkIndex {
  #slots: Uint32Array
  #used: Uint8Array
  #mask: number
  #size = 0
  /** Id words per slot (8, or PREFIX_WORDS in a dense table), and words per slot. */
  readonly #keyWords: number
  readonly #slotWords: number
  /** Bumped by every set and delete, so serializedPieces() can tell the index changed under it. */
  #changes = 0
  // The id being looked up, as words (copied once per call, compared per probe).
  readonly #key = new Uint32Array(ID_LENGTH / 4)
  readonly #keyBytes = new Uint8Array(this.#key.buffer)
  /** The words of #key a slot stores (all, or the prefix in a dense table). */
  readonly #keyStored: Uint32Array

  /**
   * `expected`: number of entries to make room for up front. `dense`: size the table for lookups, up to
   * MAX_DENSE_LOAD full (see loader()); the first insert past MAX_LOAD grows it as usual.
   */
  constructor(expected = 0, dense = false) {
    const capacity = capacityFor(expected, dense ? MAX_DENSE_LOAD : MAX_LOAD)
    this.#keyWords = dense ? PREFIX_WORDS : ID_LENGTH / 4
    this.#slotWords = this.#keyWords + 4
    this.#keyStored = this.#key.subarray(0, this.#keyWords)
    this.#slots = new Uint32Array(capacity * this.#slotWords)
    this.#used = new Uint8Array(capacity)
    this.#mask = capacity - 1
  }

  get size(): number {
    return this.#size
  }

  /** A table for lookups (loader's `dense`): it keeps id prefixes, so it cannot be serialized. */
  get dense(): boolean {
    return this.#keyWords !== ID_LENGTH / 4
  }

  /** Bytes held by the table (for reporting memory use). */
  get byteLength(): number {
    return this.#slots.byteLength + this.#used.byteLength
  }

  get(id: Uint8Array): ChunkLocation | undefined {
    const slot = this.#find(id)
    if (slot < 0) return undefined
    const s = this.#slots
    const b = slot * this.#slotWords + this.#keyWords
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
      this.#slots.set(this.#keyStored, slot * this.#slotWords)
      this.#used[slot] = 1
      this.#size++
    }
    const b = slot * this.#slotWords + this.#keyWords
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
    const sw = this.#slotWords
    // Move back every later entry of the run that may live in the hole:
    // one whose home slot is not cyclically within (hole, j].
    for (let j = (hole + 1) & mask; used[j] === 1; j = (j + 1) & mask) {
      const home = s[j * sw] & mask
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j
      if (!stays) {
        s.copyWithin(hole * sw, j * sw, (j + 1) * sw)
        hole = j
      }
    }
    used[hole] = 0
    this.#size--
    return true
  }

  /** Entries in table order; ids are copies. Do not modify the index while iterating. Not for a dense table (it keeps prefixes). */
  *entries(): IterableIterator<[Buffer, ChunkLocation]> {
    this.#needFullIds()
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
    this.#needFullIds()
    const changes = this.#changes
    const unchanged = (): void => {
      if (this.#changes !== changes) throw new Error('the chunk index changed while it was serialized')
    }
    const hash = createHash('sha256')
    const head = Buffer.allocUnsafe(HEAD_LENGTH)
    MAGIC.copy(head)
    head.writeUInt32LE(VERSION, MAGIC.length)
    head.writeUInt32LE(this.#size, MAGIC.length + 4)
    hash.update(head)
    yield head
    unchanged()
    // A slot is a record: the id, then the four location words.
    const bytes = new Uint8Array(this.#slots.buffer)
    const used = this.#used
    let piece = Buffer.allocUnsafe(RECORDS_PER_PIECE * RECORD_LENGTH)
    let o = 0
    for (let slot = 0; slot <= this.#mask; slot++) {
      if (used[slot] === 0) continue
      piece.set(bytes.subarray(slot * SLOT_BYTES, (slot + 1) * SLOT_BYTES), o)
      if (BIG_ENDIAN) piece.subarray(o + ID_LENGTH, o + RECORD_LENGTH).swap32()
      o += RECORD_LENGTH
      if (o < piece.length) continue
      hash.update(piece)
      yield piece
      unchanged()
      piece = Buffer.allocUnsafe(RECORDS_PER_PIECE * RECORD_LENGTH)
      o = 0
    }
    hash.update(piece.subarray(0, o))
    yield piece.subarray(0, o)
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
   * deserialize()'s checks: a caller never holds the whole serialized form beside the table it becomes.
   * `length` is the serialized length; finish() throws CairnError('integrity') on anything wrong.
   *
   * `dense`: a table that will mostly be looked up in (a mount) is loaded up to 96 % full instead of at
   * most 75 %, which halves it for some sizes, and keeps the first 16 bytes of each id (32-byte slots
   * instead of 48): a million entries take 2^20 slots of 32 bytes, 34 MB, instead of 2^21 of 48, 101 MB.
   * Linear probing then takes about 10 probes for a present id instead of 2, a microsecond at worst; an
   * absent id scans its whole cluster, which only a lookup that will fail pays. Inserting grows the table
   * back to the usual load. A prefix is enough to find a blob: every blob is sealed with its full id as
   * associated data, so a blob found under another id's prefix fails authentication when opened, and
   * never passes for the one asked for (two ids of one repository sharing 128 bits is a 2^-128 event per
   * pair; a cache that has them is refused as damaged, and rebuilt in full). It cannot give ids back:
   * entries() and serializing refuse.
   */
  static loader(length: number, dense = false): { feed(piece: Uint8Array): void; finish(): ChunkIndex } {
    const hash = createHash('sha256')
    const head = Buffer.alloc(HEAD_LENGTH)
    const digest = Buffer.alloc(SUM_LENGTH)
    // Records, copied to aligned words before they are placed (a piece may end inside a record).
    const batch = new Uint32Array(RECORDS_PER_BATCH * SLOT_WORDS)
    const batchBytes = new Uint8Array(batch.buffer)
    let index: ChunkIndex | null = null
    let end = 0 // HEAD_LENGTH + count * RECORD_LENGTH, once the head is read
    let at = 0 // bytes fed so far
    let inBatch = 0 // bytes of `batch` filled
    const place = (bytes: number): void => {
      if (BIG_ENDIAN) for (let r = 0; r < bytes / 4; r += SLOT_WORDS) Buffer.from(batch.buffer, (r + 8) * 4, 16).swap32()
      index!.#place(batch.subarray(0, bytes / 4))
    }
    return {
      feed(piece) {
        let p = 0
        while (p < piece.length) {
          if (at < HEAD_LENGTH) {
            const n = Math.min(HEAD_LENGTH - at, piece.length - p)
            head.set(piece.subarray(p, p + n), at)
            hash.update(piece.subarray(p, p + n))
            at += n
            p += n
            if (at === HEAD_LENGTH) {
              if (length < HEAD_LENGTH + SUM_LENGTH || !head.subarray(0, MAGIC.length).equals(MAGIC)) throw damaged('not a chunk index')
              const version = head.readUInt32LE(MAGIC.length)
              if (version !== VERSION) throw damaged(`unknown version ${version}`)
              const count = head.readUInt32LE(MAGIC.length + 4)
              end = HEAD_LENGTH + count * RECORD_LENGTH
              if (length !== end + SUM_LENGTH) throw damaged('wrong length')
              if (count > MAX_CAPACITY * MAX_LOAD) throw damaged(`${count} entries`)
              index = new ChunkIndex(count, dense)
            }
          } else if (at < end) {
            const n = Math.min(end - at, piece.length - p, batchBytes.length - inBatch)
            const part = piece.subarray(p, p + n)
            hash.update(part)
            batchBytes.set(part, inBatch)
            inBatch += n
            at += n
            p += n
            // The batch holds whole records when full (its size is a multiple of theirs) and at the end.
            if (inBatch === batchBytes.length || at === end) {
              place(inBatch)
              inBatch = 0
            }
          } else {
            const n = Math.min(end + SUM_LENGTH - at, piece.length - p)
            if (n <= 0) throw damaged('wrong length')
            digest.set(piece.subarray(p, p + n), at - end)
            at += n
            p += n
          }
        }
      },
      finish() {
        if (index === null || at !== length) throw damaged('wrong length')
        if (!hash.digest().equals(digest)) throw damaged('checksum mismatch')
        return index
      },
    }
  }

  /**
   * Places serialized records (id words, then location words: slots as they are), word by word at their
   * probe positions, with no per-record objects (a million records took 0.28 s with a subarray per
   * record, mostly allocation, which delayed a mount's first listing).
   */
  #place(records: Uint32Array): void {
    const slots = this.#slots
    const used = this.#used
    const mask = this.#mask
    const kw = this.#keyWords
    const sw = this.#slotWords
    for (let r = 0; r < records.length; r += SLOT_WORDS) {
      let slot = records[r]! & mask
      for (; used[slot] === 1; slot = (slot + 1) & mask) {
        if (sameId(slots, slot * sw, records, r, kw)) throw damaged(kw < ID_LENGTH / 4 ? 'two ids share a prefix' : 'duplicate id')
      }
      const to = slot * sw
      for (let w = 0; w < kw; w++) slots[to + w] = records[r + w]!
      for (let w = 0; w < 4; w++) slots[to + kw + w] = records[r + 8 + w]!
      used[slot] = 1
      this.#size++
    }
  }

  #needFullIds(): void {
    if (this.#keyWords !== ID_LENGTH / 4) throw new Error('a dense chunk index keeps id prefixes: it cannot give ids back')
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
    const sw = this.#slotWords
    const full = this.#keyWords === 8
    for (let slot = k0 & mask; ; slot = (slot + 1) & mask) {
      if (used[slot] === 0) return ~slot
      const b = slot * sw
      if (s[b] === k0 && s[b + 1] === k[1] && s[b + 2] === k[2] && s[b + 3] === k[3] &&
          (!full || (s[b + 4] === k[4] && s[b + 5] === k[5] && s[b + 6] === k[6] && s[b + 7] === k[7]))) return slot
    }
  }

  #grow(): void {
    const oldSlots = this.#slots
    const oldUsed = this.#used
    const capacity = capacityFor(this.#size + 1)
    const sw = this.#slotWords
    const slots = new Uint32Array(capacity * sw)
    const used = new Uint8Array(capacity)
    const mask = capacity - 1
    for (let old = 0; old < oldUsed.length; old++) {
      if (oldUsed[old] === 0) continue
      const from = old * sw
      let slot = oldSlots[from] & mask
      while (used[slot] === 1) slot = (slot + 1) & mask
      slots.set(oldSlots.subarray(from, from + sw), slot * sw)
      used[slot] = 1
    }
    this.#slots = slots
    this.#used = used
    this.#mask = mask
  }
}

function sameId(a: Uint32Array, at: number, b: Uint32Array, bt: number, words: number): boolean {
  for (let w = 0; w < words; w++) if (a[at + w] !== b[bt + w]) return false
  return true
}

function damaged(why: string): CairnError {
  return new CairnError('integrity', `the chunk index cache is damaged: ${why}`, {
    hint: 'delete the cache directory; cairn rebuilds it from the repository',
  })
}
