/**
 * Restores regular files through the writer threads (writer-pool.ts).
 *
 * A file up to PIECE_BYTES is one task: a worker creates, writes and
 * finishes it. A bigger file is created here, written in pieces of about
 * PIECE_BYTES by whichever workers are free, and finished here once every
 * piece is written, so one huge file keeps every core busy. Hardlinks wait
 * for the first file of their group and are linked here.
 *
 * Outcomes: a file that could not be restored is removed and named in a
 * warning; a damaged repository or a full disk is fatal (`fatal`), and the
 * extract stops. `restored` counts only files written completely.
 */
import { closeSync, constants as fsc, ftruncateSync, linkSync, openSync, rmSync, unlinkSync } from 'node:fs'
import { CairnError, type CairnErrorCode } from '../errors.js'
import type { Repository } from '../repo/repository.js'
import { ChunkLocator } from './chunk-locator.js'
import type { FileAttributes, TaskResult } from './restore-messages.js'
import { createFile, failure, setAttributes } from './task-writer.js'
import { WriterPool } from './writer-pool.js'
import type { ChunkRef, Item } from './item.js'

const PIECE_BYTES = 8 * 1024 * 1024
const CANCELLED: TaskResult = { ok: false, message: 'cancelled', code: 'aborted', fatal: true }

export interface FileRestorerOptions {
  sparse: boolean
  /** Writer threads besides the calling one. */
  workers: number
  signal?: AbortSignal
  warn: (code: 'attribute' | 'not-restored', path: Buffer, message: string) => void
}

export class FileRestorer {
  /** The first failure that stops the extract (damaged repository, full disk). */
  fatal: CairnError | null = null
  restored = 0
  bytes = 0
  /** Hardlink group → path of its first file once written, or null when that failed. */
  private readonly hardlinks = new Map<number, Promise<Buffer | null>>()
  private readonly links = new Set<Promise<void>>()

  private constructor(
    private readonly pool: WriterPool,
    private readonly locator: ChunkLocator,
    private readonly options: FileRestorerOptions,
  ) {}

  static async open(repo: Repository, options: FileRestorerOptions): Promise<FileRestorer> {
    const locator = await ChunkLocator.open(repo)
    const km = repo.keyMaterial
    const keys = km && { encKey: km.encKey, macKey: km.macKey, chunkerSeed: km.chunkerSeed }
    const pool = new WriterPool({ mode: repo.encryption, keys, sparse: options.sparse }, options.workers)
    return new FileRestorer(pool, locator, options)
  }

  /** Queues `item` to be written at `target`; when every worker is busy, writes queued files first. */
  async restore(target: Buffer, item: Item, attributes: FileAttributes): Promise<void> {
    const group = item.hardlink?.group
    if (group === undefined) return this.write(target, item, attributes, null)
    const first = this.hardlinks.get(group)
    if (first) {
      const linked = first.then((firstPath) => this.link(firstPath, target))
      this.links.add(linked)
      void linked.finally(() => this.links.delete(linked))
      return
    }
    let written!: (path: Buffer | null) => void
    this.hardlinks.set(group, new Promise((resolve) => (written = resolve)))
    return this.write(target, item, attributes, written)
  }

  /** Waits for every queued file and link. */
  async finish(): Promise<void> {
    await this.pool.drain()
    while (this.links.size > 0) await Promise.all(this.links)
  }

  /** Drops what is not yet sent to a writer and waits for the rest (the extract failed or was aborted). */
  async abandon(): Promise<void> {
    await this.pool.discard()
    while (this.links.size > 0) await Promise.all(this.links)
  }

  close(): Promise<void> {
    return this.pool.close()
  }

  private async write(target: Buffer, item: Item, attributes: FileAttributes, written: ((path: Buffer | null) => void) | null): Promise<void> {
    const chunks = item.chunks ?? []
    const settle = (ok: boolean): void => {
      if (ok) {
        this.restored++
        this.bytes += item.size
      }
      written?.(ok ? target : null)
    }
    if (item.size <= PIECE_BYTES || chunks.length <= 1) {
      const plans = this.locator.plan(chunks)
      const wait = this.pool.add({
        path: target,
        position: 0,
        chunks: plans instanceof Promise ? await plans : plans,
        size: item.size,
        attributes,
        done: (result) => settle(this.outcome(target, result)),
      })
      if (wait) await wait
      return
    }
    await this.writeInPieces(target, item.size, chunks, attributes, settle)
  }

  private async writeInPieces(target: Buffer, size: number, chunks: ChunkRef[], attributes: FileAttributes, settle: (ok: boolean) => void): Promise<void> {
    try {
      closeSync(createFile(target, attributes.mode))
    } catch (err) {
      settle(this.outcome(target, failure(err)))
      return
    }
    const pieces = cut(chunks)
    let pending = pieces.length
    let failed: TaskResult | null = null
    const pieceDone = (result: TaskResult): void => {
      if (!result.ok) failed ??= result
      if (--pending > 0) return
      settle(this.outcome(target, failed ?? this.finishPieces(target, size, attributes)))
      if (failed) removeQuietly(target)
    }
    for (const [i, piece] of pieces.entries()) {
      if (this.fatal || this.options.signal?.aborted) {
        for (let rest = i; rest < pieces.length; rest++) pieceDone(CANCELLED)
        return
      }
      const plans = this.locator.plan(piece.chunks)
      const wait = this.pool.add({
        path: target,
        position: piece.position,
        chunks: plans instanceof Promise ? await plans : plans,
        size: 0,
        attributes: null,
        done: pieceDone,
      })
      if (wait) await wait
    }
  }

  /** Size (a sparse file may end in a hole) and attributes of a file written in pieces. */
  private finishPieces(target: Buffer, size: number, attributes: FileAttributes): TaskResult {
    const warnings: string[] = []
    let fd: number
    try {
      fd = openSync(target, fsc.O_WRONLY | fsc.O_NOFOLLOW)
    } catch (err) {
      return failure(err)
    }
    try {
      if (this.options.sparse) ftruncateSync(fd, size)
      setAttributes(fd, target, attributes, warnings)
    } catch (err) {
      return failure(err)
    } finally {
      closeSync(fd)
    }
    return { ok: true, warnings }
  }

  private link(firstPath: Buffer | null, target: Buffer): void {
    if (this.fatal) return
    if (firstPath === null) {
      this.options.warn('not-restored', target, 'not restored: the file it is a hardlink of could not be restored')
      return
    }
    try {
      rmSync(target, { force: true })
      linkSync(firstPath, target)
      this.restored++
    } catch (err) {
      this.outcome(target, failure(err))
    }
  }

  /** Reports a task's result; true when the file was written. */
  private outcome(target: Buffer, result: TaskResult): boolean {
    if (result.ok) {
      for (const message of result.warnings) this.options.warn('attribute', target, message)
      return true
    }
    if (result.fatal) {
      this.fatal ??= new CairnError((result.code as CairnErrorCode | undefined) ?? 'io', result.message, { hint: result.hint })
    } else {
      this.options.warn('not-restored', target, `not restored: ${result.message}`)
    }
    return false
  }
}

/** Consecutive chunks of about PIECE_BYTES each, with the file position of each group. */
function cut(chunks: ChunkRef[]): { position: number; chunks: ChunkRef[] }[] {
  const pieces: { position: number; chunks: ChunkRef[] }[] = []
  let position = 0
  let current: { position: number; chunks: ChunkRef[] } | null = null
  let bytes = 0
  for (const chunk of chunks) {
    if (!current || bytes >= PIECE_BYTES) {
      current = { position, chunks: [] }
      pieces.push(current)
      bytes = 0
    }
    current.chunks.push(chunk)
    bytes += chunk.size
    position += chunk.size
  }
  return pieces
}

function removeQuietly(path: Buffer): void {
  try {
    unlinkSync(path)
  } catch {
    // already gone: nothing to clean up
  }
}
