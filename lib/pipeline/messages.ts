/** Messages between the chunk pipeline (main thread) and its workers. */
import type { EncryptionMode } from '../crypto/modes.js'
import type { CompressionSpec } from '../compress/codec.js'
import type { RingBlob, RingShared } from './sealed-ring.js'
import type { WindowView } from './windows.js'

export interface WorkerSetup {
  mode: EncryptionMode
  /** Key material as raw bytes (null in mode 'none'). */
  keys: { encKey: Uint8Array; macKey: Uint8Array; chunkerSeed: Uint8Array } | null
  compression: CompressionSpec
  windows: WindowView[]
  /** This worker's ring, which it seals blobs into (sealed-ring.ts). */
  ring: RingShared
  /** The most room one blob may take in the ring; a larger one is sealed into a buffer of its own. */
  ringBlobMax: number
  /** Largest file a 'files' request reads. */
  smallFileLimit: number
}

/** Hash a chunk: reply with its id, or `zero` when it is all zero bytes. */
export interface HashRequest {
  op: 'hash'
  job: number
  window: number
  offset: number
  length: number
}

/** Compress and seal a chunk whose id the repository does not have yet. */
export interface SealRequest {
  op: 'seal'
  job: number
  window: number
  offset: number
  length: number
  id: WireId
}

/** Small chunks make one trip: hash and seal at once (the sealed copy is dropped if the id is known). */
export interface StoreRequest {
  op: 'store'
  job: number
  window: number
  offset: number
  length: number
}

/**
 * Read small files (each one chunk) and hash and seal them, many per
 * message: per-file messages and main-thread syscalls would cost more than
 * the work. `sizes` are the sizes lstat saw.
 */
export interface FilesRequest {
  op: 'files'
  job: number
  /** Path bytes as latin1 strings: a Buffer view would be cloned with its whole (pooled) ArrayBuffer. */
  paths: string[]
  sizes: number[]
}

/** What reading one small file gave: its chunk (id null for all zeros), or that it grew, or an error. */
export type SmallFileResult =
  | { kind: 'read'; bytesRead: number; id: WireId | null; sealed: SealedChunk | null }
  | { kind: 'grew' }
  | { kind: 'error'; message: string }


/**
 * Ids cross between threads as latin1 strings of their 32 bytes: a string is
 * cloned as plain bytes, a Uint8Array as a new ArrayBuffer with its own
 * backing store, which made worker replies the largest source of objects
 * the main thread's old generation had to collect.
 */
export type WireId = string

export type WorkerRequest = HashRequest | SealRequest | StoreRequest | FilesRequest

/**
 * A sealed chunk: in the worker's ring, or, when it would take more room than the ring keeps for one blob
 * (a chunk of over 4 MiB, which the chunker rarely cuts), in a buffer of its own that the reply transfers.
 */
export type SealedChunk = RingBlob | Uint8Array

export type WorkerReply =
  | { job: number; op: 'hash'; id: WireId | null }
  | { job: number; op: 'seal'; sealed: SealedChunk }
  | { job: number; op: 'store'; id: WireId | null; sealed: SealedChunk | null }
  | { job: number; op: 'files'; results: SmallFileResult[] }
  | { job: number; op: 'error'; message: string; code?: string }
