/**
 * Restoring an archive (or parts of it) into a directory.
 *
 * Every name from the archive is checked before use: a hostile repository
 * cannot make extract write outside the target with '/', '..' or '.' names,
 * nor with a name given twice in one directory (a symlink, then a
 * directory or file of the same name that would be written through it).
 * Directory attributes are set after their content (so their mtimes stick);
 * owners are restored when running as root (by name, or by number with
 * numericIds); times are restored to the nanosecond.
 *
 * This thread walks the archive and makes directories, symlinks and
 * special files; regular files are written by worker threads
 * (file-restorer.ts). A file that cannot be restored costs a warning; a
 * damaged repository or a full disk stops the extract.
 */
import { availableParallelism } from 'node:os'
import { chmodSync, lchownSync, mkdirSync, rmSync, symlinkSync } from 'node:fs'
import * as nodePath from 'node:path'
import { CairnError } from '../errors.js'
import { mknod, setTimesSync, setXattrSync } from '../native/posix.js'
import type { ArchiveReader, DirRef } from './reader.js'
import { splitPath } from './reader.js'
import { OwnerNames } from './owners.js'
import { compilePatterns } from './patterns.js'
import { FileRestorer } from './file-restorer.js'
import type { FileAttributes } from './restore-messages.js'
import { failure } from './task-writer.js'
import type { Item } from './item.js'

export interface ExtractWarning {
  code: 'attribute' | 'unsupported' | 'not-restored'
  path: Buffer
  message: string
}

export interface ExtractOptions {
  /** Target directory (the CLI passes the current directory). */
  destination: string
  /** Only these archive paths (and what is below them). */
  paths?: Buffer[]
  exclude?: string[]
  stripComponents?: number
  /** Write all-zero chunks as holes. */
  sparse?: boolean
  /** Restore owners by uid/gid only, ignoring the stored names. */
  numericIds?: boolean
  dryRun?: boolean
  /** Threads that write files besides the calling one (default: one per core but one, at most 3). */
  workers?: number
  signal?: AbortSignal
  onWarning?: (w: ExtractWarning) => void
  onItem?: (path: Buffer, item: Item) => void
}

export interface ExtractResult {
  /** Items restored (with dryRun: that would be); a file counts once it is written completely. */
  items: number
  bytes: number
  warnings: number
}

const SLASH = Buffer.from('/')
/** Entries whose subdirectory trees are fetched ahead of the walk. */
const TREE_PREFETCH = 32

export async function extractArchive(reader: ArchiveReader, options: ExtractOptions): Promise<ExtractResult> {
  const run = new ExtractRun(reader, options, await OwnerNames.load())
  await run.execute()
  return run.result
}

class ExtractRun {
  readonly result: ExtractResult = { items: 0, bytes: 0, warnings: 0 }
  private readonly dest: Buffer
  private readonly excluded
  private files: FileRestorer | null = null
  private readonly asRoot = process.getuid?.() === 0
  /**
   * Directories whose attributes are set once their content is written,
   * deepest last. Paths as latin1 strings and attributes as fresh arrays:
   * Buffers from the trees are views of 8 KiB pool slabs, each keeping its
   * whole slab alive.
   */
  private readonly dirsToFinish: { path: string; attributes: FileAttributes }[] = []
  private readonly madeDirs = new Set<string>()

  constructor(private readonly reader: ArchiveReader, private readonly options: ExtractOptions, private readonly owners: OwnerNames) {
    this.dest = Buffer.from(nodePath.resolve(options.destination))
    this.excluded = compilePatterns(options.exclude ?? [])
  }

  async execute(): Promise<void> {
    try {
      await this.extractSelections()
      if (this.files) {
        await this.files.finish()
        if (this.files.fatal) throw this.files.fatal
      }
    } catch (err) {
      await this.files?.abandon()
      throw err
    } finally {
      if (this.files) {
        this.result.items += this.files.restored
        this.result.bytes += this.files.bytes
        await this.files.close()
      }
    }
    // Deepest directories were pushed last; set attributes children-first.
    for (const dir of this.dirsToFinish.reverse()) this.setAttributes(Buffer.from(dir.path, 'latin1'), dir.attributes, false)
  }

  private async extractSelections(): Promise<void> {
    const selections = this.options.paths?.length ? this.options.paths : [Buffer.alloc(0)]
    for (const selection of selections) {
      const parts = splitPath(selection)
      if (parts.length === 0) {
        await this.extractDir(this.reader.root, Buffer.alloc(0))
        continue
      }
      const item = await this.reader.resolve(selection)
      if (!item) throw new CairnError('path-not-found', `${selection.toString()} is not in archive ${this.reader.ref.name}`, { hint: 'list the archive with: cairn list REPO::ARCHIVE' })
      const archivePath = Buffer.concat(parts.flatMap((p, i) => (i ? [SLASH, p] : [p])))
      await this.extractItem(item, archivePath)
    }
  }

  /** A directory's entries, in groups whose subdirectory trees are fetched while the group is restored. */
  private async extractDir(dir: DirRef, archivePath: Buffer): Promise<void> {
    let previous: Buffer | null = null
    let group: Item[] = []
    for await (const item of this.reader.entries(dir)) {
      checkName(item.name, previous, archivePath)
      previous = item.name
      group.push(item)
      if (group.length === TREE_PREFETCH) {
        await this.extractGroup(group, archivePath)
        group = []
      }
    }
    await this.extractGroup(group, archivePath)
  }

  private async extractGroup(items: Item[], archivePath: Buffer): Promise<void> {
    for (const item of items) if (item.tree) this.reader.tree(item.tree).catch(() => undefined)
    for (const item of items) {
      this.options.signal?.throwIfAborted()
      const childPath = archivePath.length ? Buffer.concat([archivePath, SLASH, item.name]) : item.name
      await this.extractItem(item, childPath)
    }
  }

  private async extractItem(item: Item, archivePath: Buffer): Promise<void> {
    if (this.excluded(archivePath)) return
    const relative = stripComponents(archivePath, this.options.stripComponents ?? 0)
    if (relative !== null) {
      const target = Buffer.concat([this.dest, SLASH, relative])
      this.options.onItem?.(archivePath, item)
      if (this.options.dryRun) {
        this.result.items++
      } else {
        if (this.files?.fatal) throw this.files.fatal
        if (item.kind === 'file') await this.restoreFile(target, item)
        else if (await this.create(target, item)) this.result.items++
      }
    }
    if (item.kind === 'dir' && item.tree) await this.extractDir({ tree: item.tree, item }, archivePath)
  }

  private async restoreFile(target: Buffer, item: Item): Promise<void> {
    this.ensureParent(target)
    this.files ??= await FileRestorer.open(this.reader.repo, {
      sparse: Boolean(this.options.sparse),
      workers: this.options.workers ?? Math.min(3, availableParallelism() - 1),
      signal: this.options.signal,
      warn: (code, path, message) => this.warn(code, path, message),
    })
    await this.files.restore(target, item, this.attributesOf(item))
  }

  private attributesOf(item: Item): FileAttributes {
    return {
      mode: item.mode,
      owner: this.asRoot ? this.ownerOf(item) : null,
      atimeNs: item.atimeNs,
      mtimeNs: item.mtimeNs,
      // Fresh arrays: a Buffer view would be cloned (for a writer thread) or kept alive with its whole pool slab.
      xattrs: (item.xattrs ?? []).map(([name, value]) => [new Uint8Array(name), new Uint8Array(value)]),
    }
  }

  private ownerOf(item: Item): { uid: number; gid: number } {
    const uid = this.options.numericIds || item.user === undefined ? item.uid : this.owners.uidOf(item.user) ?? item.uid
    const gid = this.options.numericIds || item.group === undefined ? item.gid : this.owners.gidOf(item.group) ?? item.gid
    return { uid, gid }
  }

  // Metadata calls below are synchronous on purpose: each is one fast
  // syscall, a trip through libuv's pool costs ten times more main-thread
  // time, and an extract serves no other requests.

  /** Makes a directory, symlink or special file; false when it could not be (and a warning said so). */
  private async create(target: Buffer, item: Item): Promise<boolean> {
    this.ensureParent(target)
    switch (item.kind) {
      case 'dir':
        mkdirSync(target, { recursive: true, mode: 0o700 })
        this.madeDirs.add(target.toString('latin1'))
        this.dirsToFinish.push({ path: target.toString('latin1'), attributes: this.attributesOf(item) })
        return true
      case 'symlink':
        try {
          rmSync(target, { force: true })
          symlinkSync(item.target ?? Buffer.alloc(0), target)
        } catch (err) {
          this.notRestored(target, err)
          return false
        }
        break
      default: {
        rmSync(target, { force: true })
        try {
          await mknod(target, item.mode, item.rdev ?? 0)
        } catch (err) {
          this.warn('unsupported', target, `cannot create ${item.kind}: ${(err as Error).message}`)
          return false
        }
      }
    }
    this.setAttributes(target, this.attributesOf(item), item.kind === 'symlink')
    return true
  }

  /** Parents exist already when the whole tree is extracted; not with path selections or --strip-components. */
  private ensureParent(target: Buffer): void {
    const parent = target.subarray(0, target.lastIndexOf(0x2f))
    const key = parent.toString('latin1')
    if (this.madeDirs.has(key)) return
    mkdirSync(parent, { recursive: true })
    this.madeDirs.add(key)
  }

  /** Owner, xattrs, mode, times, in that order: chown clears setuid bits and file capabilities, times go last. */
  private setAttributes(target: Buffer, attributes: FileAttributes, isLink: boolean): void {
    try {
      if (attributes.owner) lchownSync(target, attributes.owner.uid, attributes.owner.gid)
      for (const [name, value] of attributes.xattrs) {
        try {
          setXattrSync(target, Buffer.from(name), Buffer.from(value))
        } catch (err) {
          this.warn('attribute', target, `cannot restore extended attribute ${Buffer.from(name).toString()}: ${(err as Error).message}`)
        }
      }
      if (!isLink) chmodSync(target, attributes.mode & 0o7777)
      // Last: nothing may touch the entry after its times are set.
      setTimesSync(target, attributes.atimeNs, attributes.mtimeNs)
    } catch (err) {
      this.warn('attribute', target, `cannot restore attributes: ${(err as Error).message}`)
    }
  }

  /** An item that could not be made: a warning, or the end of the extract when the disk is full. */
  private notRestored(target: Buffer, err: unknown): void {
    const result = failure(err)
    if (result.fatal) throw new CairnError((result.code ?? 'io') as CairnError['code'], result.message, { hint: result.hint, cause: err })
    this.warn('not-restored', target, `not restored: ${result.message}`)
  }

  private warn(code: ExtractWarning['code'], path: Buffer, message: string): void {
    this.result.warnings++
    this.options.onWarning?.({ code, path, message })
  }
}

/**
 * A name from the archive must be one plain path component, and come after
 * the previous name of its directory in byte order (trees are written
 * sorted, so a repeated name means a forged tree).
 */
function checkName(name: Buffer, previous: Buffer | null, parent: Buffer): void {
  const dots = name.length <= 2 && name[0] === 0x2e && (name.length === 1 || name[1] === 0x2e)
  if (name.length === 0 || dots || name.includes(0x2f) || name.includes(0)) {
    throw new CairnError('unsafe-path', `the archive holds an unsafe name ${JSON.stringify(name.toString('latin1'))} in ${JSON.stringify(parent.toString() || '/')}; refusing to extract it`, {
      hint: 'the repository may have been tampered with; nothing outside the target was written',
    })
  }
  if (previous !== null && Buffer.compare(previous, name) >= 0) {
    throw new CairnError('unsafe-path', `the archive holds the name ${JSON.stringify(name.toString('latin1'))} twice or out of order in ${JSON.stringify(parent.toString() || '/')}; refusing to extract it`, {
      hint: 'the repository may have been tampered with; nothing outside the target was written',
    })
  }
}

function stripComponents(path: Buffer, count: number): Buffer | null {
  if (count === 0) return path
  const parts = splitPath(path)
  if (parts.length <= count) return null
  return Buffer.concat(parts.slice(count).flatMap((p, i) => (i ? [SLASH, p] : [p])))
}
