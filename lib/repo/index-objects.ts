/**
 * Index objects (`index/<hex id>`): one or more per backup, written as its
 * packs finish (repo/writer.ts), listing packs the backup wrote and the blobs in each. Sealed msgpack, layout in
 * lib/FORMAT.md. Together, the index objects describe every blob a reader
 * can reach; the pack headers hold the same facts for recovery.
 */
import { randomBytes } from 'node:crypto'
import { CairnError } from '../errors.js'
import { MsgpackReader } from '../encoding/msgpack-reader.js'
import type { Sealer } from '../crypto/sealer.js'
import { AAD_INDEX, BLOB_ID_LENGTH } from './blob.js'
import type { PackedBlob } from './pack-format.js'

export const INDEX_PREFIX = 'index/'
const INDEX_VERSION = 1

export function newIndexKey(): string {
  return INDEX_PREFIX + randomBytes(32).toString('hex')
}

/**
 * One pack's entry of an index object, `[packId, [[type, id, offset,
 * length, rawLength], ...]]`, as MessagePack bytes written directly (51
 * bytes a blob): a writer keeps these from each finished pack until its
 * commit, instead of an object per blob. A commit of a million-file backup
 * built a million row objects and arrays here (about 300 MB at once).
 * Integers are written as uint32 whatever their value (valid MessagePack,
 * decoded like any other).
 */
export function encodePackEntry(packId: string, blobs: readonly PackedBlob[]): Buffer {
  const out = Buffer.allocUnsafe(1 + 34 + 5 + blobs.length * ROW_BYTES)
  out[0] = 0x92 // fixarray of 2
  writeBin32(out, 1, Buffer.from(packId, 'hex'))
  out[35] = 0xdd // array32
  out.writeUInt32BE(blobs.length, 36)
  let at = 40
  for (const b of blobs) {
    out[at] = 0x95 // fixarray of 5
    out[at + 1] = b.type // positive fixint
    writeBin32(out, at + 2, b.id)
    at += 36
    for (const n of [b.offset, b.length, b.rawLength]) {
      out[at] = 0xce // uint32
      out.writeUInt32BE(n, at + 1)
      at += 5
    }
  }
  return out
}

/** Row bytes: fixarray, type, bin8 id, three uint32. */
const ROW_BYTES = 1 + 1 + 34 + 3 * 5

function writeBin32(out: Buffer, at: number, bytes: Uint8Array): void {
  if (bytes.length !== 32) throw new RangeError('ids are 32 bytes')
  out[at] = 0xc4 // bin8
  out[at + 1] = 32
  out.set(bytes, at + 2)
}

/**
 * The sealed index object `[1, [entry, ...]]` of the entries encodePackEntry
 * made, encoded and sealed in one buffer: joining the entries and then
 * sealing a copy held the index of a million-file backup (51 MB) twice at
 * its commit.
 */
export function encodeIndexObject(entries: readonly Buffer[], sealer: Sealer): Buffer {
  const payloadLength = entries.reduce((n, e) => n + e.length, 7)
  const out = Buffer.allocUnsafe(sealer.overhead + payloadLength)
  let at = sealer.headLength
  out[at] = 0x92 // fixarray of 2
  out[at + 1] = INDEX_VERSION // positive fixint
  out[at + 2] = 0xdd // array32
  out.writeUInt32BE(entries.length, at + 3)
  at += 7
  for (const e of entries) at += e.copy(out, at)
  return out.subarray(0, sealer.sealInPlace(AAD_INDEX, out, payloadLength))
}

/** One blob an index object lists, and the pack it is in. */
export interface IndexedBlob extends PackedBlob {
  packId: string
}

/**
 * The blobs an index object lists, pack by pack, read as they are taken, never decoded whole: the index
 * object of a million-file backup (51 MB) took about 600 MB decoded into rows and objects, the peak of
 * a first mount or restore on a machine without the index cache. Each blob is the same object, id
 * included, refilled: copy what you keep. Damage throws CairnError('integrity');
 * blobs before it have been handed out by then.
 */
export function* indexedBlobs(sealed: Buffer, sealer: Sealer, key: string): Generator<IndexedBlob> {
  const malformed = (): CairnError => new CairnError('integrity', `index object ${key} is malformed`, { hint: 'run cairn check' })
  try {
    const reader = new MsgpackReader(sealer.open(AAD_INDEX, sealed))
    if (reader.arrayLength() !== 2 || reader.unsigned() !== INDEX_VERSION) throw malformed()
    const blob: IndexedBlob = { packId: '', type: 0, id: Buffer.alloc(BLOB_ID_LENGTH), offset: 0, length: 0, rawLength: 0 }
    for (let packs = reader.arrayLength(); packs > 0; packs--) {
      if (reader.arrayLength() !== 2) throw malformed()
      const packId = reader.binary()
      if (packId.length !== 32) throw malformed()
      blob.packId = packId.toString('hex')
      for (let rows = reader.arrayLength(); rows > 0; rows--) {
        if (reader.arrayLength() !== 5) throw malformed()
        blob.type = reader.unsigned() as PackedBlob['type']
        if (!reader.binaryInto(blob.id)) throw malformed()
        blob.offset = reader.unsigned()
        blob.length = reader.unsigned()
        blob.rawLength = reader.unsigned()
        if (blob.length <= 0) throw malformed()
        yield blob
      }
    }
    if (!reader.done) throw malformed()
  } catch (err) {
    // The reader's RangeError (bytes that end early, an unexpected tag); a consumer's own errors never come here.
    throw err instanceof RangeError ? malformed() : err
  }
}
