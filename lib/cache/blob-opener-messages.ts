/** Messages between BlobOpener (main thread) and its workers. */
import type { EncryptionMode } from '../crypto/modes.js'
import type { BlobType } from '../repo/blob.js'

export interface OpenerSetup {
  mode: EncryptionMode
  /** Key material as raw bytes (null in mode 'none'). */
  keys: { encKey: Uint8Array; macKey: Uint8Array; chunkerSeed: Uint8Array } | null
}

export interface OpenerRequest {
  job: number
  type: BlobType
  id: Uint8Array
  sealed: Uint8Array
  rawLength: number
}

export type OpenerReply = { job: number; data: Uint8Array } | { job: number; message: string; code?: string }
