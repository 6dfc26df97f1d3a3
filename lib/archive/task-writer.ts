/**
 * Writes one WriteTask on a writer thread: creates the file, opens each
 * chunk (reads it from its pack, authenticates, decrypts, decompresses) and
 * writes it at its position, then sets the attributes through the open
 * descriptor. Everything is synchronous: the thread has nothing else to do,
 * and each call is one syscall.
 *
 * Syscalls are spared where the kernel already did the work: the file is
 * created with its mode, and fchown/fchmod run only when fstat shows the
 * owner or mode differ (umask, a setgid parent); on this kind of machine
 * each inode change costs tens of microseconds of kernel time.
 *
 * A file that fails is removed, so nothing half-written is left looking
 * restored.
 */
import { closeSync, constants as fsc, fchmodSync, fchownSync, fstatSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { getSystemErrorMap } from 'node:util'
import { CairnError } from '../errors.js'
import { makeSealer } from '../crypto/sealer.js'
import { decodePayload } from '../compress/codec.js'
import { BlobType, blobAad } from '../repo/blob.js'
import { setTimesSync, setXattrSync } from '../native/posix.js'
import { PackFiles } from './pack-files.js'
import type { ChunkSource, FileAttributes, RestoreWorkerSetup, TaskResult, WriteTask } from './restore-messages.js'

/** Opens a sealed data blob: its plaintext (possibly a view of `sealed`, which it may overwrite when `inPlace`). */
export type ChunkOpener = (id: Uint8Array, sealed: Uint8Array, rawLength: number, inPlace: boolean) => Buffer
/** Reads `length` sealed bytes at `offset` of a local pack file (valid until the next read). */
export type PackReader = (file: string, offset: number, length: number) => Buffer

const ZEROS = Buffer.alloc(1024 * 1024)
const CREATE = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL
const OPEN_PIECE = fsc.O_WRONLY | fsc.O_NOFOLLOW

/** Compressed chunks are decompressed into one reused buffer up to this size: a buffer per chunk would stay in memory until V8 next collects garbage. */
const REUSED_PLAINTEXT_LIMIT = 16 * 1024 * 1024

export class TaskWriter {
  constructor(
    private readonly openChunk: ChunkOpener,
    private readonly readPack: PackReader,
    private readonly sparse: boolean,
    /** Releases what the readers hold (open pack files). */
    readonly close: () => void = () => undefined,
  ) {}

  /** A writer that reads local pack files and opens chunks with the repository's keys. */
  static create(setup: RestoreWorkerSetup): TaskWriter {
    const { mode, keys, sparse } = setup
    // Key material may arrive as plain Uint8Arrays (from another thread); the sealer wants Buffers.
    const sealer = makeSealer(mode, keys && { encKey: Buffer.from(keys.encKey), macKey: Buffer.from(keys.macKey), chunkerSeed: Buffer.from(keys.chunkerSeed) })
    const packs = new PackFiles()
    let plaintext = Buffer.alloc(0)
    return new TaskWriter(
      (id, sealed, rawLength, inPlace) => {
        if (plaintext.length < rawLength && rawLength <= REUSED_PLAINTEXT_LIMIT) plaintext = Buffer.allocUnsafeSlow(rawLength)
        const aad = blobAad(BlobType.Data, id)
        const payload = inPlace ? sealer.openInPlace(aad, Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length)) : sealer.open(aad, sealed)
        return decodePayload(payload, rawLength, plaintext)
      },
      (file, offset, length) => packs.read(file, offset, length),
      sparse,
      () => packs.closeAll(),
    )
  }

  run(task: WriteTask, ids: Uint8Array): TaskResult {
    const path = Buffer.from(task.path, 'latin1')
    const whole = task.attributes !== null
    let fd: number
    try {
      fd = whole ? createFile(path, task.attributes!.mode) : openSync(path, OPEN_PIECE)
    } catch (err) {
      return failure(err)
    }
    const warnings: string[] = []
    try {
      let position = task.position
      for (const chunk of task.chunks) {
        this.writeChunk(fd, chunk, ids, position)
        position += chunk.size
      }
      if (whole) {
        // A hole at the end needs the size set explicitly.
        if (this.sparse) ftruncateSync(fd, task.size)
        setAttributes(fd, path, task.attributes!, warnings)
      }
    } catch (err) {
      closeSync(fd)
      if (whole) removeQuietly(path)
      return failure(err)
    }
    closeSync(fd)
    return { ok: true, warnings }
  }

  private writeChunk(fd: number, chunk: ChunkSource, ids: Uint8Array, position: number): void {
    if ('zero' in chunk) {
      if (!this.sparse) writeZeros(fd, chunk.size, position)
      return
    }
    // Bytes read from a pack here are this chunk's own copy, decrypted in place; a blob the main thread sent may serve several chunks.
    const fromPack = !('sealed' in chunk)
    const sealed = fromPack ? this.readPack(chunk.file, chunk.offset, chunk.length) : chunk.sealed
    const data = this.openChunk(ids.subarray(chunk.id * 32, chunk.id * 32 + 32), sealed, chunk.rawLength, fromPack)
    if (data.length !== chunk.size) {
      throw new CairnError('integrity', `a chunk has ${data.length} bytes, the archive says ${chunk.size}`, { hint: 'run cairn check' })
    }
    writeAll(fd, data, position)
  }
}

/**
 * Creates `path` as a new file with `mode` (the umask applies; fixed
 * later). Whatever was there is replaced, never written through: an
 * existing file may be another name of some inode, an existing symlink
 * may point anywhere (O_EXCL does not follow symlinks).
 */
export function createFile(path: Buffer, mode: number): number {
  try {
    return openSync(path, CREATE, mode & 0o7777)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  unlinkSync(path)
  return openSync(path, CREATE, mode & 0o7777)
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done)
}

function writeZeros(fd: number, size: number, position: number): void {
  for (let done = 0; done < size; ) {
    const n = Math.min(ZEROS.length, size - done)
    writeAll(fd, ZEROS.subarray(0, n), position + done)
    done += n
  }
}

/** Owner, xattrs, mode, times, in that order: chown clears setuid bits and file capabilities, times go last. */
export function setAttributes(fd: number, path: Buffer, attrs: FileAttributes, warnings: string[]): void {
  try {
    const st = fstatSync(fd)
    let chowned = false
    if (attrs.owner && (st.uid !== attrs.owner.uid || st.gid !== attrs.owner.gid)) {
      fchownSync(fd, attrs.owner.uid, attrs.owner.gid)
      chowned = true
    }
    for (const [name, value] of attrs.xattrs) {
      try {
        setXattrSync(path, Buffer.from(name), Buffer.from(value))
      } catch (err) {
        warnings.push(`cannot restore extended attribute ${Buffer.from(name).toString()}: ${(err as Error).message}`)
      }
    }
    if (chowned || (st.mode & 0o7777) !== (attrs.mode & 0o7777)) fchmodSync(fd, attrs.mode & 0o7777)
    setTimesSync(path, attrs.atimeNs, attrs.mtimeNs)
  } catch (err) {
    warnings.push(`cannot restore attributes: ${(err as Error).message}`)
  }
}

function removeQuietly(path: Buffer): void {
  try {
    unlinkSync(path)
  } catch {
    // already gone, or never made: nothing to clean up
  }
}

/**
 * A repository that cannot be read, or a full disk, stops the extract;
 * any other error costs only this file.
 */
export function failure(err: unknown): TaskResult & { ok: false } {
  if (err instanceof CairnError) return { ok: false, message: err.message, hint: err.hint, code: err.code, fatal: true }
  const e = err as NodeJS.ErrnoException
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') {
    return { ok: false, message: 'no space left on the device being extracted to', hint: 'free some space and run extract again', code: 'no-space', fatal: true }
  }
  return { ok: false, message: describeSystemError(e), code: e.code, fatal: false }
}

/** "open: permission denied (EACCES)": the path is the warning's subject already. */
function describeSystemError(e: NodeJS.ErrnoException): string {
  if (typeof e.errno !== 'number' || !e.code) return e.message ?? String(e)
  const description = getSystemErrorMap().get(e.errno)?.[1] ?? e.code
  return `${e.syscall ? `${e.syscall}: ` : ''}${description} (${e.code})`
}
