/**
 * Index objects (`index/<hex id>`): one per commit, listing the packs that
 * commit wrote and the blobs in each. Sealed msgpack, layout in
 * lib/FORMAT.md. Together, the index objects describe every blob a reader
 * can reach; the pack headers hold the same facts for recovery.
 */
import { randomBytes } from 'node:crypto'
import { CairnError } from '../errors.js'
import { pack, unpack } from '../encoding/msgpack.js'
import type { Sealer } from '../crypto/sealer.js'
import { AAD_INDEX } from './blob.js'
import { decodeRows, type PackedBlob } from './pack-format.js'

export const INDEX_PREFIX = 'index/'
const INDEX_VERSION = 1

export interface PackEntry {
  packId: string
  blobs: PackedBlob[]
}

export function newIndexKey(): string {
  return INDEX_PREFIX + randomBytes(32).toString('hex')
}

export function encodeIndexObject(packs: readonly PackEntry[], sealer: Sealer): Buffer {
  const body = packs.map((p) => [Buffer.from(p.packId, 'hex'), p.blobs.map((b) => [b.type, b.id, b.offset, b.length, b.rawLength])])
  return sealer.seal(AAD_INDEX, pack([INDEX_VERSION, body]))
}

export function decodeIndexObject(sealed: Buffer, sealer: Sealer, key: string): PackEntry[] {
  const value = unpack(sealer.open(AAD_INDEX, sealed))
  if (!Array.isArray(value) || value[0] !== INDEX_VERSION || !Array.isArray(value[1])) {
    throw new CairnError('integrity', `index object ${key} is malformed`, { hint: 'run cairn check' })
  }
  return (value[1] as unknown[]).map((entry) => {
    const [packId, rows] = entry as [Buffer, unknown[]]
    return {
      packId: Buffer.from(packId).toString('hex'),
      blobs: decodeRows([1, rows], Number.MAX_SAFE_INTEGER, key),
    }
  })
}
