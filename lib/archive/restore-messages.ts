/** Messages between extract's file writer pool (main thread) and its workers. */
import type { EncryptionMode } from '../crypto/modes.js'

export interface RestoreWorkerSetup {
  mode: EncryptionMode
  /** Key material as raw bytes (null in mode 'none'). */
  keys: { encKey: Uint8Array; macKey: Uint8Array; chunkerSeed: Uint8Array } | null
  /** Leave all-zero chunks as holes instead of writing zeros. */
  sparse: boolean
}

/** Where a chunk's bytes come from; `Id` identifies its blob. */
export type ChunkOrigin<Id> =
  /** All zeros: no stored blob. */
  | { size: number; zero: true }
  /** A sealed blob the worker reads itself from a local pack file. */
  | { size: number; id: Id; file: string; offset: number; length: number; rawLength: number }
  /** A sealed blob the main thread fetched (backends without local files). */
  | { size: number; id: Id; sealed: Uint8Array; rawLength: number }

/**
 * A chunk as sent to a writer: `id` is its index in the batch's `ids` (32
 * bytes each): Buffer views must not be cloned one by one, each would carry
 * its whole pooled ArrayBuffer.
 */
export type ChunkSource = ChunkOrigin<number>

/** What a restored file gets once its content is written. */
export interface FileAttributes {
  mode: number
  /** Owner to set, or null to keep the writer's own. */
  owner: { uid: number; gid: number } | null
  atimeNs: bigint
  mtimeNs: bigint
  xattrs: [Uint8Array, Uint8Array][]
}

/**
 * One unit of work. A whole file (`attributes` set) is created, written and
 * finished by one worker. A big file is cut into pieces: the main thread
 * creates it, workers write the pieces at their positions, the main thread
 * finishes it.
 */
export interface WriteTask {
  /** Target path bytes as a latin1 string. */
  path: string
  position: number
  chunks: ChunkSource[]
  /** Whole files only: the file's size (sparse files end in a hole) and its attributes. */
  size: number
  attributes: FileAttributes | null
}

export interface WriteBatch {
  batch: number
  tasks: WriteTask[]
  ids: Uint8Array
}

/**
 * How a task ended. `fatal` failures stop the extract (damaged repository,
 * full disk); others cost that one file, with a warning. `warnings` are
 * attributes that could not be set on a file that was written.
 */
export type TaskResult =
  | { ok: true; warnings: string[] }
  | { ok: false; message: string; hint?: string | undefined; code: string | undefined; fatal: boolean }

export interface BatchReply {
  batch: number
  results: TaskResult[]
}
