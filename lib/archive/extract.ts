/**
 * Restoring an archive (or parts of it) into a directory.
 *
 * Every name from the archive is checked before use: a hostile repository
 * cannot make extract write outside the target with '/', '..' or '.' names.
 * Directory attributes are set after their content (so their mtimes stick);
 * owners are restored when running as root (by name, or by number with
 * numericIds); times are restored to the nanosecond.
 */
import { chmodSync, closeSync, constants as fsc, ftruncateSync, lchownSync, linkSync, mkdirSync, openSync, rmSync, symlinkSync, writeSync } from 'node:fs'
import * as nodePath from 'node:path'
import { CairnError } from '../errors.js'
import { mknod, setTimesSync, setXattrSync } from '../native/posix.js'
import { Limiter } from '../pipeline/limiter.js'
import type { ArchiveReader, DirRef } from './reader.js'
import { splitPath } from './reader.js'
import { OwnerNames } from './owners.js'
import { compilePatterns } from './patterns.js'
import type { Item } from './item.js'

export interface ExtractWarning {
  code: 'attribute' | 'unsupported'
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
  signal?: AbortSignal
  onWarning?: (w: ExtractWarning) => void
  onItem?: (path: Buffer, item: Item) => void
}

export interface ExtractResult {
  items: number
  bytes: number
  warnings: number
}

const SLASH = Buffer.from('/')
/** Files written at once. */
const FILE_WRITES = 16

export async function extractArchive(reader: ArchiveReader, options: ExtractOptions): Promise<ExtractResult> {
  const run = new ExtractRun(reader, options, await OwnerNames.load())
  await run.execute()
  return run.result
}

class ExtractRun {
  readonly result: ExtractResult = { items: 0, bytes: 0, warnings: 0 }
  private readonly dest: Buffer
  private readonly excluded
  /** Hardlink group → path of its first file, once written. */
  private readonly hardlinks = new Map<number, Promise<Buffer>>()
  private readonly writeSlots = new Limiter(FILE_WRITES)
  private readonly writes = new Set<Promise<void>>()
  private failure: unknown = null
  private readonly asRoot = process.getuid?.() === 0
  /** Directories whose attributes are set once their content is written, deepest first. */
  private readonly dirsToFinish: { path: Buffer; item: Item }[] = []
  private readonly madeDirs = new Set<string>()

  constructor(private readonly reader: ArchiveReader, private readonly options: ExtractOptions, private readonly owners: OwnerNames) {
    this.dest = Buffer.from(nodePath.resolve(options.destination))
    this.excluded = compilePatterns(options.exclude ?? [])
  }

  async execute(): Promise<void> {
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
    await this.drainWrites()
    // Deepest directories were pushed last; set attributes children-first.
    for (const dir of this.dirsToFinish.reverse()) this.setAttributes(dir.path, dir.item)
  }

  private async extractDir(dir: DirRef, archivePath: Buffer): Promise<void> {
    for await (const item of this.reader.entries(dir)) {
      this.options.signal?.throwIfAborted()
      checkName(item.name, archivePath)
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
      this.result.items++
      if (!this.options.dryRun) {
        if (this.failure) throw this.failure
        if (item.kind === 'file') {
          // Files are written FILE_WRITES at a time: a small file's cost is
          // the latency of fetching and opening its chunk, not bandwidth.
          await this.writeSlots.acquire()
          const written = this.createFile(target, item)
            .catch((err: unknown) => {
              this.failure ??= err
            })
            .finally(() => this.writeSlots.release())
          this.writes.add(written)
          void written.finally(() => this.writes.delete(written))
        } else {
          await this.create(target, item)
        }
      }
    }
    if (item.kind === 'dir' && item.tree) await this.extractDir({ tree: item.tree, item }, archivePath)
  }

  /** Waits for the files still being written; rethrows the first failure. */
  private async drainWrites(): Promise<void> {
    await Promise.all(this.writes)
    if (this.failure) throw this.failure
  }

  // Metadata calls below are synchronous on purpose: each is one fast
  // syscall, a trip through libuv's pool costs ten times more main-thread
  // time, and an extract serves no other requests.

  private async create(target: Buffer, item: Item): Promise<void> {
    this.ensureParent(target)
    switch (item.kind) {
      case 'dir':
        mkdirSync(target, { recursive: true, mode: 0o700 })
        this.madeDirs.add(target.toString('latin1'))
        this.dirsToFinish.push({ path: target, item })
        return
      case 'symlink':
        rmSync(target, { force: true })
        symlinkSync(item.target ?? Buffer.alloc(0), target)
        break
      default: {
        rmSync(target, { force: true })
        try {
          await mknod(target, item.mode, item.rdev ?? 0)
        } catch (err) {
          this.warn('unsupported', target, `cannot create ${item.kind}: ${(err as Error).message}`)
          return
        }
      }
    }
    this.setAttributes(target, item)
  }

  private async createFile(target: Buffer, item: Item): Promise<void> {
    this.ensureParent(target)
    if (item.hardlink) {
      const first = this.hardlinks.get(item.hardlink.group)
      if (first) {
        const firstPath = await first
        rmSync(target, { force: true })
        linkSync(firstPath, target)
        return
      }
      const written = this.writeFile(target, item).then(() => target)
      written.catch(() => undefined)
      this.hardlinks.set(item.hardlink.group, written)
      await written
    } else {
      await this.writeFile(target, item)
    }
    this.setAttributes(target, item)
  }

  private async writeFile(target: Buffer, item: Item): Promise<void> {
    const fd = openSync(target, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o600)
    try {
      const content = this.reader.content(item)
      let position = 0
      const readAhead = 4
      const pending: Promise<Buffer | null>[] = []
      let next = 0
      const fetch = (i: number): Promise<Buffer | null> => {
        const p = this.options.sparse && content.isZeroChunk(i) ? Promise.resolve(null) : content.chunk(i)
        p.catch(() => undefined)
        return p
      }
      for (let i = 0; i < content.chunkCount; i++) {
        while (next < content.chunkCount && next < i + readAhead) pending.push(fetch(next++))
        const data = await pending.shift()!
        if (data) writeAllSync(fd, data, position)
        position += content.chunkSize(i)
      }
      // Holes at the end need the size set explicitly.
      if (this.options.sparse) ftruncateSync(fd, position)
      this.result.bytes += position
    } finally {
      closeSync(fd)
    }
  }

  /** Parents exist already when the whole tree is extracted; not with path selections or --strip-components. */
  private ensureParent(target: Buffer): void {
    const parent = target.subarray(0, target.lastIndexOf(0x2f))
    const key = parent.toString('latin1')
    if (this.madeDirs.has(key)) return
    mkdirSync(parent, { recursive: true })
    this.madeDirs.add(key)
  }

  private setAttributes(target: Buffer, item: Item): void {
    const isLink = item.kind === 'symlink'
    try {
      if (this.asRoot) {
        const uid = this.options.numericIds || item.user === undefined ? item.uid : this.owners.uidOf(item.user) ?? item.uid
        const gid = this.options.numericIds || item.group === undefined ? item.gid : this.owners.gidOf(item.group) ?? item.gid
        lchownSync(target, uid, gid)
      }
      if (!isLink) chmodSync(target, item.mode & 0o7777)
      for (const [name, value] of item.xattrs ?? []) {
        try {
          setXattrSync(target, name, value)
        } catch (err) {
          this.warn('attribute', target, `cannot restore extended attribute ${name.toString()}: ${(err as Error).message}`)
        }
      }
      // Last: nothing may touch the entry after its times are set.
      setTimesSync(target, item.atimeNs, item.mtimeNs)
    } catch (err) {
      this.warn('attribute', target, `cannot restore attributes: ${(err as Error).message}`)
    }
  }

  private warn(code: ExtractWarning['code'], path: Buffer, message: string): void {
    this.result.warnings++
    this.options.onWarning?.({ code, path, message })
  }
}

function writeAllSync(fd: number, data: Buffer, position: number): void {
  let done = 0
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done)
}

/** A name from the archive must be one plain path component. */
function checkName(name: Buffer, parent: Buffer): void {
  if (name.length === 0 || name.includes(0x2f) || name.includes(0) || name.equals(Buffer.from('.')) || name.equals(Buffer.from('..'))) {
    throw new CairnError('unsafe-path', `the archive holds an unsafe name ${JSON.stringify(name.toString('latin1'))} in ${JSON.stringify(parent.toString() || '/')}; refusing to extract it`, {
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
