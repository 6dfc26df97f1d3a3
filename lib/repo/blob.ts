/**
 * Blob kinds and the associated data that binds a sealed blob to its kind
 * and id: a blob moved to another id, or a tree presented as file data,
 * fails authentication instead of being served.
 */
export const enum BlobType {
  Data = 0,
  Tree = 1,
  Archive = 2,
}

export const BLOB_ID_LENGTH = 32

export function blobAad(type: BlobType, id: Uint8Array): Buffer {
  const aad = Buffer.allocUnsafe(2 + id.length)
  aad[0] = 0x62 // 'b'
  aad[1] = type
  aad.set(id, 2)
  return aad
}

/** Associated data for the other sealed objects, one label each. */
export const AAD_PACK_HEADER = Buffer.from('cairn pack header')
export const AAD_INDEX = Buffer.from('cairn index')
export const AAD_MANIFEST = Buffer.from('cairn manifest')
