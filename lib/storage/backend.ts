/**
 * The storage backend contract: a dumb object store.
 *
 * Keys are relative slash-separated names (`config`, `data/ab/ab12...`).
 * Objects are immutable once written, except `manifest`, which `put`
 * replaces atomically. Everything above this layer (packs, index, manifest,
 * locks) is expressed in these few calls, so an ssh, rclone or S3 backend only
 * has to implement them.
 */
export interface ObjectInfo {
  key: string
  size: number
}

/**
 * An object written piece by piece (a pack as its blobs arrive), so that the
 * writer need not hold it in memory. Nothing is visible under the key until
 * finish(); a backend may stage the data in a temporary file or a multipart
 * upload.
 */
export interface ObjectUpload {
  /** Appends `parts` in order. Calls must not overlap. */
  append(parts: readonly Uint8Array[]): Promise<void>
  /** Makes the whole object visible under its key, atomically and durably. */
  finish(): Promise<void>
  /** Drops what was appended; nothing appears under the key. Never throws. */
  abort(): Promise<void>
}

export interface Backend {
  /** Human-readable location, for messages. */
  readonly location: string
  /** Whole object. Throws CairnError 'missing-object' when absent. */
  get(key: string): Promise<Buffer>
  /**
   * `length` bytes at `offset`, in a buffer of the caller's own, never memory the backend keeps (readers
   * decrypt in place). Throws 'missing-object' when absent, 'integrity' when the object is shorter.
   */
  getRange(key: string, offset: number, length: number): Promise<Buffer>
  /**
   * Writes the whole object atomically and durably: readers see the old
   * object or the new one, never a mix. `data` may come in parts (a pack's
   * blobs), written in order without being joined first.
   */
  put(key: string, data: Uint8Array | readonly Uint8Array[]): Promise<void>
  /**
   * Starts writing an object in pieces, with the guarantees of `put` once finished. `readSoon: false`
   * says nobody reads the object back soon (a pack a backup writes), so a backend need not keep it in
   * memory caches: the local one drops it from the page cache once it is on disk.
   */
  upload(key: string, hints?: { readSoon?: boolean }): ObjectUpload
  /** Creates the object only if it does not exist; returns false when it already did. Used for locks. */
  create(key: string, data: Uint8Array): Promise<boolean>
  /** Removes the object; absent objects are not an error. */
  delete(key: string): Promise<void>
  /** Size of the object, or null when absent. */
  stat(key: string): Promise<ObjectInfo | null>
  /** Every object whose key starts with `prefix` (a directory-like prefix ending in '/'), in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>
  /**
   * Optional: the path of a file on this machine that holds the object, for
   * readers on other threads that read ranges themselves (extract's
   * writers). Backends without local files leave it out.
   */
  localPath?(key: string): string
  /** Optional: releases what the backend keeps open (file handles, connections). It may be used again after. */
  close?(): Promise<void>
}
