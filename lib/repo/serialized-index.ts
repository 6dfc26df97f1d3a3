/**
 * The serialized form of a chunk index, as the local cache keeps it (little-endian):
 *
 *   magic "CAIRNCIX" | version u32 = 2 | count u32 |
 *   count × (id[32] | pack u32 | offset u32 | length u32 | rawLength u32) |
 *   SHA-256 of all the preceding bytes [32]
 *
 * with the records in ascending id order (bytes compared unsigned, first byte first), so that a reader
 * can find an id in the file without loading it (index-file.ts). Version 1 listed them in hash-table
 * order. ChunkIndex writes it (serializedPieces); every reader goes through readSerializedIndex, which
 * checks all of it and throws CairnError('integrity') on anything else, so that a damaged cache is
 * rebuilt rather than trusted.
 */
import { createHash } from 'node:crypto'
import { CairnError } from '../errors.js'

export const ID_LENGTH = 32
/** Bytes of the form before the first record, and of one record; a record as 32-bit words. */
export const HEAD_LENGTH = 16
export const RECORD_LENGTH = ID_LENGTH + 16
export const RECORD_WORDS = RECORD_LENGTH / 4
/** The most records a form may hold: what a ChunkIndex holds (2^26 slots, three quarters full). */
export const MAX_RECORDS = 3 * 2 ** 24
/** Location words are little-endian in the form; a reader on another host swaps them. */
export const BIG_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 0

const MAGIC = Buffer.from('CAIRNCIX', 'ascii')
const VERSION = 2
const SUM_LENGTH = 32
/** Records handed over per batch while reading: 48 KiB of words. */
const RECORDS_PER_BATCH = 1024

/** The head of a form of `count` records. */
export function serializedHead(count: number): Buffer {
  const head = Buffer.allocUnsafe(HEAD_LENGTH)
  MAGIC.copy(head)
  head.writeUInt32LE(VERSION, MAGIC.length)
  head.writeUInt32LE(count, MAGIC.length + 4)
  return head
}

/** What readSerializedIndex hands its caller: the record count once, then records in id order. */
export interface SerializedIndexSink {
  count(count: number): void
  /**
   * Whole records as words (id, then location in host order), and the same records as bytes, both
   * valid only during the call.
   */
  records(words: Uint32Array, bytes: Uint8Array): void
}

/**
 * Reads the form given in pieces of any size and checks all of it: magic, version, a length that
 * matches the count, ids in strictly ascending order (so no id twice), and the SHA-256 at the end, which
 * finish() compares; anything wrong throws CairnError('integrity'). A sink sees the records before the
 * sum is checked, so it must not trust them until finish() returns.
 */
export function readSerializedIndex(length: number, sink: SerializedIndexSink): { feed(piece: Uint8Array): void; finish(): void } {
  const hash = createHash('sha256')
  const head = Buffer.alloc(HEAD_LENGTH)
  const digest = Buffer.alloc(SUM_LENGTH)
  // Records, copied to aligned words before they are handed over (a piece may end inside a record).
  const batch = new Uint32Array(RECORDS_PER_BATCH * RECORD_WORDS)
  const batchBytes = new Uint8Array(batch.buffer)
  // The last id handed over, and whether there was one.
  const previous = new Uint8Array(ID_LENGTH)
  let started = false
  let end = -1 // HEAD_LENGTH + count * RECORD_LENGTH, once the head is read
  let at = 0 // bytes fed so far
  let inBatch = 0 // bytes of `batch` filled
  const handOver = (bytes: number): void => {
    for (let r = 0; r < bytes; r += RECORD_LENGTH) {
      const inOrder = r === 0 ? !started || compareIds(previous, 0, batchBytes, 0) < 0 : compareIds(batchBytes, r - RECORD_LENGTH, batchBytes, r) < 0
      if (!inOrder) throw damaged('ids out of order')
    }
    previous.set(batchBytes.subarray(bytes - RECORD_LENGTH, bytes - RECORD_LENGTH + ID_LENGTH))
    started = true
    if (BIG_ENDIAN) for (let r = 0; r < bytes; r += RECORD_LENGTH) Buffer.from(batch.buffer, r + ID_LENGTH, 16).swap32()
    sink.records(batch.subarray(0, bytes / 4), batchBytes.subarray(0, bytes))
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
            if (count > MAX_RECORDS) throw damaged(`${count} entries`)
            sink.count(count)
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
            handOver(inBatch)
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
      if (end < 0 || at !== length) throw damaged('wrong length')
      if (!hash.digest().equals(digest)) throw damaged('checksum mismatch')
    },
  }
}

/** An id's first four bytes as an unsigned big-endian number: its place in id order, coarsely. */
export function idPrefix(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0
}

/** Compares the ids at a[ai] and b[bi] as unsigned bytes: negative, zero or positive. */
export function compareIds(a: Uint8Array, ai: number, b: Uint8Array, bi: number): number {
  for (let i = 0; i < ID_LENGTH; i++) {
    const d = a[ai + i]! - b[bi + i]!
    if (d !== 0) return d
  }
  return 0
}

/** Bits of an id's prefix that split `entries` ids into buckets of about `perBucket` (1 to 24 bits). */
export function bucketBits(entries: number, perBucket: number): number {
  return Math.min(24, Math.max(1, Math.ceil(Math.log2(Math.max(1, entries / perBucket)))))
}

/** The error for a chunk index cache that is not what it should be: the cache is then rebuilt. */
export function damaged(why: string): CairnError {
  return new CairnError('integrity', `the chunk index cache is damaged: ${why}`, {
    hint: 'delete the cache directory; cairn rebuilds it from the repository',
  })
}
