/**
 * Pack layout (details in lib/FORMAT.md):
 *
 *   blob 0 | blob 1 | ... | sealed header | header length (u32 LE)
 *
 * Each blob is sealed on its own, so a reader fetches one blob with one
 * range read. The header lists every blob (type, id, offset, length, raw
 * length) and is sealed too, so blob boundaries, and with them chunk sizes,
 * are not readable from the pack without the key. Index objects repeat what
 * the headers say; the headers exist so that a lost index can be rebuilt
 * from the packs alone.
 */
import { CairnError } from '../errors.js'
import { pack, unpack } from '../encoding/msgpack.js'
import type { Sealer } from '../crypto/sealer.js'
import { AAD_PACK_HEADER, BLOB_ID_LENGTH, type BlobType } from './blob.js'

export interface PackedBlob {
  type: BlobType
  id: Buffer
  offset: number
  length: number
  rawLength: number
}

const HEADER_VERSION = 1

export function encodePackHeader(blobs: readonly PackedBlob[], sealer: Sealer): Buffer {
  const rows = blobs.map((b) => [b.type, b.id, b.offset, b.length, b.rawLength])
  const sealed = sealer.seal(AAD_PACK_HEADER, pack([HEADER_VERSION, rows]))
  const trailer = Buffer.allocUnsafe(4)
  trailer.writeUInt32LE(sealed.length, 0)
  return Buffer.concat([sealed, trailer])
}

/** Reads the header of a whole pack. */
export function decodePackHeader(packBytes: Buffer, sealer: Sealer, name: string): PackedBlob[] {
  if (packBytes.length < 4) throw damaged(name)
  const headerLength = packBytes.readUInt32LE(packBytes.length - 4)
  const headerStart = packBytes.length - 4 - headerLength
  if (headerStart < 0) throw damaged(name)
  const plain = sealer.open(AAD_PACK_HEADER, packBytes.subarray(headerStart, packBytes.length - 4))
  return decodeRows(unpack(plain), headerStart, name)
}

function decodeRows(value: unknown, dataEnd: number, name: string): PackedBlob[] {
  if (!Array.isArray(value) || value[0] !== HEADER_VERSION || !Array.isArray(value[1])) throw damaged(name)
  return (value[1] as unknown[]).map((row) => {
    if (!Array.isArray(row) || row.length !== 5) throw damaged(name)
    const [type, id, offset, length, rawLength] = row as [number, Buffer, number, number, number]
    if (!((id as unknown) instanceof Uint8Array)) throw damaged(name)
    if (id.length !== BLOB_ID_LENGTH || !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0 || offset + length > dataEnd) throw damaged(name)
    return { type: type as BlobType, id: Buffer.from(id), offset, length, rawLength }
  })
}

function damaged(name: string): CairnError {
  return new CairnError('integrity', `pack ${name} is damaged (its header cannot be read)`, { hint: 'run cairn check' })
}
