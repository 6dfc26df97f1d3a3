/**
 * Creating an archive from paths on the filesystem (and stdin).
 *
 * The walk is depth-first in name-byte order and reads one file at a time,
 * while earlier files' chunks are still being hashed, compressed, sealed and
 * packed by the pipeline; each directory's tree is stored as soon as its
 * entries are complete. Each directory's metadata (names, lstat, xattrs,
 * link targets) comes from one scan on libuv's pool, started ahead of the
 * walk (directory-scanner.ts). Memory is bounded by the pipeline's windows, the
 * packs in flight, and one tree page per directory level.
 */
import { promises as fs } from 'node:fs'
import { hash } from 'node:crypto'
import * as os from 'node:os'
import * as nodePath from 'node:path'
import { CairnError } from '../errors.js'
import { nowNs } from '../time.js'
import { parseCompressionSpec, type CompressionSpec } from '../compress/codec.js'
import type { Repository } from '../repo/repository.js'
import { RepositoryWriter } from '../repo/writer.js'
import { BlobType } from '../repo/blob.js'
import { ChunkPipeline } from '../pipeline/chunk-pipeline.js'
import { iterableSource } from '../pipeline/iterable-source.js'
import { Limiter } from '../pipeline/limiter.js'
import { DirectoryBuilder } from './directory-builder.js'
import { FilesCache, type FileIdentity } from './files-cache.js'
import { OwnerNames } from './owners.js'
import { compilePatterns, type PathMatcher } from './patterns.js'
import { isDirectory, itemFromStat, kindOf, xattrsOrNone } from './fs-metadata.js'
import { DirectoryScanner, type ExpandedScan, type ScanTarget } from './directory-scanner.js'
import { scanDirectory, ScanEntries, type DirectoryScan, type EntryStat, type ScannedEntry } from '../native/scan.js'
import { FileStream } from './file-stream.js'
import { ShareTally, TreeCache, treeDigest, type CachedTree } from './tree-cache.js'
import { encodeArchive, type ArchiveMeta, type ArchiveStats } from './archive-object.js'
import { ZERO_CHUNK_ID, type ChunkRef, type Item } from './item.js'

export interface CreateWarning {
  code: 'vanished' | 'unreadable' | 'changed' | 'socket-skipped' | 'unsupported'
  path: Buffer
  message: string
}

export interface CreateProgress {
  files: number
  originalSize: number
  deduplicatedSize: number
  path: Buffer
}

export interface CreateOptions {
  name: string
  /** Paths to back up; '-' reads `stdin` into one file. */
  paths: (string | Buffer)[]
  compression?: CompressionSpec | string
  exclude?: string[]
  oneFileSystem?: boolean
  dryRun?: boolean
  stdin?: { stream: AsyncIterable<Uint8Array>; name: string }
  filesCacheTtl?: number
  commandLine?: string[]
  comment?: string
  workers?: number
  signal?: AbortSignal
  onWarning?: (w: CreateWarning) => void
  onProgress?: (p: CreateProgress) => void
}

export interface CreateResult {
  archive: ArchiveMeta
  id: Buffer | null
  warnings: number
}

export const DEFAULT_COMPRESSION = 'auto,zstd,3'
const SLASH = Buffer.from('/')
/** Bumped when what an item holds changes, so that cached trees of an older cairn are not reused. */
const TREE_FORMAT = 1
/** Big files queued for streaming while the walk goes on. */
const STREAMS_AHEAD = 4

export async function createArchive(repo: Repository, options: CreateOptions): Promise<CreateResult> {
  if (!options.dryRun && (await repo.archives()).some((a) => a.name === options.name)) {
    throw new CairnError('archive-exists', `an archive named ${JSON.stringify(options.name)} already exists`, { hint: 'choose another name (placeholders like {now} help)' })
  }
  const compression = typeof options.compression === 'string' ? parseCompressionSpec(options.compression) : options.compression ?? parseCompressionSpec(DEFAULT_COMPRESSION)
  const writer = await RepositoryWriter.start(repo, { signal: options.signal })
  const ttl = options.filesCacheTtl
  const treeCache = options.dryRun ? null : await TreeCache.load(repo.cacheFile('trees'), ttl)
  const run = new CreateRun(repo, writer, compression, options, await OwnerNames.load(), FilesCache.deferred(repo.cacheFile('files'), ttl), treeCache)
  try {
    const result = await run.execute()
    return result
  } catch (err) {
    await writer.abort()
    throw err
  } finally {
    await run.close()
  }
}

interface FileContent {
  chunks: ChunkRef[]
  size: number
}

interface Visited {
  /** Null when the entry turned out unreadable and is left out. */
  item: Promise<Item | null>
}

/** A file handed to the pipeline or found in the files cache; `stored` resolves once it is stored (null: it could not be read after all). */
interface Reading {
  stored: Promise<FileContent | null>
}

/**
 * A value, or a promise of it when getting it had to wait (for room in the
 * pipeline, for the files cache): the walk awaits only the latter. A file
 * that waits for nothing then costs no async function call, whose promise
 * and suspended frame were most of what a first backup's main thread
 * allocated per file.
 */
type Soon<T> = T | Promise<T>

const NOTHING: Promise<null> = Promise.resolve(null)

/** A stored directory: its tree's id and how many entries it has. */
interface DirTree {
  tree: Buffer
  entries: number
}

/** A directory the walk will enter. */
interface DirVisit extends ScanTarget {
  /** Its entry in the parent's scan (absent for a path given on the command line). */
  entry?: ScannedEntry
  archivePath: Buffer
  /** Its device, for --one-file-system. */
  dev: number
}

/** The path of `name` under the directory at `parent` (both as they appear in the archive). */
function childPath(parent: Buffer, name: Buffer): Buffer {
  return parent.length ? Buffer.concat([parent, SLASH, name]) : name
}

/** A directory given on the command line (or under one, outside a scan): where a walk starts. */
function rootVisit(path: Buffer, archivePath: Buffer, dev: number): DirVisit {
  return { path, archivePath, dev, order: archivePath.length ? archivePath.toString('latin1').split('/').map((n) => Buffer.from(n, 'latin1')) : [] }
}

interface SourceNode {
  children: Map<string, SourceNode>
  source?: Buffer
}

class CreateRun {
  private readonly startNs = nowNs()
  private readonly excluded: PathMatcher
  /** Whether there are exclude patterns at all. */
  private readonly filtering: boolean
  private readonly pipeline: ChunkPipeline | null
  /** The content of each hardlinked inode met so far (by device:inode), read once for all its links. */
  private readonly hardlinks = new Map<string, Promise<FileContent | null>>()
  private warnings = 0
  private readonly streamSlots = new Limiter(STREAMS_AHEAD)
  private readonly scanner = new DirectoryScanner<DirVisit>((dir, scan) => this.subdirsOf(dir, scan))
  /** Directories (latin1 paths) with a warning about one of their entries: their trees are not cached. */
  private readonly dirtyDirs = new Set<string>()
  /** What, besides a directory's own scan, its tree depends on. */
  private readonly treeSettings: string
  private readonly stats: ArchiveStats = { files: 0, dirs: 0, others: 0, originalSize: 0, compressedSize: 0, deduplicatedSize: 0 }

  constructor(
    private readonly repo: Repository,
    private readonly writer: RepositoryWriter,
    private readonly compression: CompressionSpec,
    private readonly options: CreateOptions,
    private readonly owners: OwnerNames,
    private readonly filesCache: FilesCache,
    private readonly treeCache: TreeCache | null,
  ) {
    this.excluded = compilePatterns(options.exclude ?? [])
    this.filtering = (options.exclude?.length ?? 0) > 0
    this.treeSettings = JSON.stringify([TREE_FORMAT, options.exclude ?? [], options.oneFileSystem ?? false, owners.fingerprint()])
    this.pipeline = options.dryRun ? null : new ChunkPipeline(writer, { compression, workers: options.workers })
  }

  async execute(): Promise<CreateResult> {
    const root = await this.buildSourceTree()
    const rootDir = await this.visitVirtual(root)
    // Every file is stored: the pipeline's threads and memory are not needed for the commit and the caches' saves.
    await this.pipeline?.close()
    const hostname = os.hostname()
    const archive: ArchiveMeta = {
      name: this.options.name,
      hostname,
      username: os.userInfo().username,
      commandLine: this.options.commandLine ?? [],
      startNs: this.startNs,
      endNs: nowNs(),
      root: rootDir.tree,
      stats: this.stats,
      chunker: this.repo.config.chunker,
      comment: this.options.comment ?? '',
    }
    if (this.options.dryRun) return { archive, id: null, warnings: this.warnings }
    this.stats.deduplicatedSize = this.writer.stats.newBytes
    const id = await this.writer.storeBlob(BlobType.Archive, encodeArchive(archive), this.compression)
    await this.writer.commit({ name: archive.name, id, time: this.startNs })
    await this.filesCache.save()
    await this.treeCache?.save()
    return { archive, id, warnings: this.warnings }
  }

  async close(): Promise<void> {
    await this.pipeline?.close()
    this.filesCache.close()
  }

  /** Arranges the given paths as they will appear in the archive (leading '/' removed, like tar and borg). */
  private async buildSourceTree(): Promise<SourceNode> {
    const root: SourceNode = { children: new Map() }
    for (const given of this.options.paths) {
      const text = Buffer.isBuffer(given) ? given.toString('latin1') : Buffer.from(given).toString('latin1')
      if (text === '-') {
        root.children.set(Buffer.from(this.options.stdin?.name ?? 'stdin').toString('latin1'), { children: new Map(), source: Buffer.from('-') })
        continue
      }
      const normalized = nodePath.posix.normalize(text)
      const parts = normalized.split('/').filter((p) => p !== '' && p !== '.')
      if (parts.includes('..')) throw new CairnError('bad-argument', `cannot back up ${text}: paths with '..' would escape the archive`, { hint: 'give the path without ..' })
      try {
        await fs.lstat(Buffer.from(text, 'latin1'))
      } catch {
        throw new CairnError('path-not-found', `${Buffer.from(text, 'latin1').toString()} does not exist`, { hint: 'check the path', path: text })
      }
      let node = root
      for (const part of parts) {
        let child = node.children.get(part)
        if (!child) node.children.set(part, (child = { children: new Map() }))
        node = child
      }
      node.source = Buffer.from(text, 'latin1')
    }
    return root
  }

  /** A directory made of given paths; its own metadata comes from the real directory when there is one. */
  private async visitVirtual(node: SourceNode, absPath?: Buffer, archivePath: Buffer = Buffer.alloc(0)): Promise<DirTree> {
    if (node.source && node.source.toString() !== '-') {
      const { stat } = await scanPath(node.source)
      if (!(stat instanceof Error) && isDirectory(stat)) return (await this.walkDirectory(rootVisit(node.source, archivePath, stat.dev))).tree
    }
    const builder = new DirectoryBuilder(this.writer, this.compression)
    const names = [...node.children.keys()].map((k) => Buffer.from(k, 'latin1')).sort(Buffer.compare)
    for (const name of names) {
      const child = node.children.get(name.toString('latin1'))!
      const childArchivePath = childPath(archivePath, name)
      if (child.source?.toString() === '-') {
        builder.add((await this.visitStdin(name)).item)
        continue
      }
      if (child.source) {
        if (this.excluded(childArchivePath)) continue
        const entry = await scanPath(child.source)
        const visited = await this.visitEntry(child.source, { ...entry, name }, archivePath, null)
        if (visited) builder.add(visited.item)
        continue
      }
      const real = Buffer.concat([absPath ?? Buffer.alloc(0), SLASH, name])
      const { stat } = await scanPath(real)
      const dir = await this.visitVirtual(child, real, childArchivePath)
      builder.add(Promise.resolve(this.dirItem(name, stat instanceof Error ? null : stat, dir)))
    }
    return builder.finish()
  }

  private dirItem(name: Buffer, st: EntryStat | null, dir: DirTree): Item {
    this.stats.dirs++
    const base: Item = st
      ? itemFromStat(name, 'dir', st, this.owners)
      : { name, kind: 'dir', mode: 0o40755, uid: 0, gid: 0, mtimeNs: this.startNs, atimeNs: this.startNs, ctimeNs: this.startNs, size: 0 }
    return { ...base, tree: dir.tree, entries: dir.entries }
  }

  /**
   * The entries of a real directory, depth-first in name order; `dev` is its
   * device, for --one-file-system. Resolves once the directory is read (its
   * files handed to the pipeline, its subdirectories read); `tree` once its
   * tree is stored. So the walk goes on while earlier directories' files are
   * still being stored, and the pipeline never drains at a directory.
   *
   * When the tree cache knows the directory, the walk waits for its
   * subdirectories' trees (part of the digest); if the digest matches the
   * last backup's, the cached tree is the answer. Small files go to the
   * pipeline's workers in batches, big ones are streamed. The scanner reads
   * the directories the walk will enter ahead of it (subdirsOf tells it which).
   */
  private async walkDirectory(dir: DirVisit): Promise<{ tree: Promise<DirTree> }> {
    const { path: absPath, archivePath, dev } = dir
    let scanned: ExpandedScan<DirVisit>
    try {
      scanned = await this.scanner.scan(dir)
    } catch (err) {
      this.warn('unreadable', absPath, `cannot read directory: ${(err as Error).message}`)
      const raw = Buffer.alloc(0)
      scanned = { scan: { entries: new ScanEntries(raw, absPath), raw }, subdirs: [] }
    }
    const { scan, subdirs } = scanned
    const subtrees = new Map<number, Promise<DirTree>>()
    for (const sub of subdirs) subtrees.set(sub.entry!.index, (await this.walkDirectory(sub)).tree)
    const digestOf = async (): Promise<string> => treeDigest(this.treeSettings, scan.raw, await Promise.all(subtrees.values()))

    const cacheable = this.treeCache !== null && scan.raw.length > 0
    if (cacheable && this.treeCache!.knows(absPath)) {
      const cached = this.treeCache!.lookup(absPath, await digestOf(), (id) => this.writer.has(id))
      if (cached) return { tree: Promise.resolve(this.reuseTree(cached, absPath, scan.entries)) }
    }

    const tally = new ShareTally((id) => this.writer.storedLength(id))
    const builder = new DirectoryBuilder(this.writer, this.compression, (item) => tally.add(item))
    // An entry changed at or after the backup's start may change again without its times showing it.
    let changedSinceStart = false
    for (let i = 0; i < scan.entries.length; i++) {
      const entry = scan.entries.at(i)
      this.options.signal?.throwIfAborted()
      if (!(entry.stat instanceof Error) && (entry.stat.mtimeNs >= this.startNs || entry.stat.ctimeNs >= this.startNs)) changedSinceStart = true
      // The entry's archive path is made only when a pattern needs it (directories make their own).
      if (this.filtering && this.excluded(childPath(archivePath, entry.name))) continue
      const soon = this.visitEntry(Buffer.concat([absPath, SLASH, entry.name]), entry, archivePath, dev, subtrees.get(entry.index))
      const visited = soon instanceof Promise ? await soon : soon
      builder.add(visited ? visited.item : NOTHING)
    }
    const tree = builder.finish().then(async (stored) => {
      if (cacheable && !this.dirtyDirs.has(absPath.toString('latin1')) && !changedSinceStart) {
        this.treeCache!.remember(absPath, await digestOf(), { tree: stored.tree, entries: stored.entries, ...tally.share() })
      }
      return stored
    })
    tree.catch(() => undefined) // awaited by the parent's tree
    return { tree }
  }

  /** The entries of `dir` the walk will enter: directories, not excluded, on the same filesystem under --one-file-system. */
  private subdirsOf(dir: DirVisit, scan: DirectoryScan): DirVisit[] {
    const subdirs: DirVisit[] = []
    for (let i = 0; i < scan.entries.length; i++) {
      const mode = scan.entries.modeAt(i)
      if (mode === null || kindOf(mode) !== 'dir') continue
      const entry = scan.entries.at(i)
      if (!this.willEnter(entry.stat, dir.dev)) continue
      const archivePath = childPath(dir.archivePath, entry.name)
      if (this.excluded(archivePath)) continue
      const dev = (entry.stat as EntryStat).dev
      subdirs.push({ entry, path: Buffer.concat([dir.path, SLASH, entry.name]), archivePath, dev, order: [...dir.order, entry.name] })
    }
    return subdirs
  }

  /** A directory unchanged since the last backup: its cached tree, its statistics, and its files kept in the files cache. */
  private reuseTree(cached: CachedTree, absPath: Buffer, entries: ScanEntries): DirTree {
    for (const key of ['files', 'dirs', 'others', 'originalSize', 'compressedSize'] as const) this.stats[key] += cached[key]
    for (const entry of entries) {
      if (!(entry.stat instanceof Error) && kindOf(entry.stat.mode) === 'file') this.filesCache.touch(Buffer.concat([absPath, SLASH, entry.name]))
    }
    this.options.onProgress?.({ files: this.stats.files, originalSize: this.stats.originalSize, deduplicatedSize: this.writer.stats.newBytes, path: absPath })
    return { tree: cached.tree, entries: cached.entries }
  }

  /** Whether the walk will descend into an entry with this stat, under a directory on device `parentDev`. */
  private willEnter(stat: EntryStat | Error, parentDev: number | null): boolean {
    if (stat instanceof Error || !isDirectory(stat)) return false
    return !(this.options.oneFileSystem && parentDev !== null && stat.dev !== parentDev)
  }

  /**
   * One filesystem entry, as its directory's scan saw it (and, for a
   * directory already walked, its tree). Resolves once it is read, to the
   * item's promise, which resolves once it is stored. (Wrapped in an object
   * because promises of promises flatten.)
   */
  private visitEntry(absPath: Buffer, entry: ScannedEntry, parentArchivePath: Buffer, parentDev: number | null, subtree?: Promise<DirTree>): Soon<Visited | null> {
    const st = entry.stat
    if (st instanceof Error) {
      this.warn('vanished', absPath, `vanished before it could be read: ${st.message}`)
      return null
    }
    const kind = kindOf(st.mode)
    if (kind === 'socket') {
      this.warn('socket-skipped', absPath, 'is a socket; sockets are not backed up')
      return null
    }
    if (kind === null) {
      this.warn('unsupported', absPath, 'has an unknown file type; skipped')
      return null
    }
    const item = itemFromStat(entry.name, kind, st, this.owners)
    const xattrs = xattrsOrNone(entry.xattrs)
    if (xattrs instanceof Error) this.warn('unreadable', absPath, `cannot read extended attributes: ${xattrs.message}`)
    else if (xattrs.length > 0) item.xattrs = xattrs
    switch (kind) {
      case 'dir':
        this.stats.dirs++
        return this.visitDir(absPath, parentArchivePath, st, item, parentDev, subtree)
      case 'symlink': {
        this.stats.others++
        const target = entry.target
        if (target === undefined || target instanceof Error) {
          this.warn('vanished', absPath, `vanished before it could be read: ${target?.message ?? 'not a symlink any more'}`)
          return null
        }
        item.target = target
        return { item: Promise.resolve(item) }
      }
      case 'file':
        return this.visitFile(absPath, st, item)
      default:
        this.stats.others++
        return { item: Promise.resolve(item) }
    }
  }

  /** A directory: its tree (walked now unless given or not to be entered), then its item. */
  private async visitDir(absPath: Buffer, parentArchivePath: Buffer, st: EntryStat, item: Item, parentDev: number | null, subtree?: Promise<DirTree>): Promise<Visited> {
    const walked = this.willEnter(st, parentDev) && !subtree ? await this.walkDirectory(rootVisit(absPath, childPath(parentArchivePath, item.name), st.dev)) : null
    const tree = subtree ?? walked?.tree ?? new DirectoryBuilder(this.writer, this.compression).finish()
    return { item: tree.then((dir) => ({ ...item, tree: dir.tree, entries: dir.entries })) }
  }

  private visitFile(absPath: Buffer, st: EntryStat, item: Item): Soon<Visited> {
    this.stats.files++
    if (st.nlink > 1) return this.visitHardlink(absPath, st, item)
    const read = this.fileContent(absPath, st)
    return read instanceof Promise ? read.then((r) => visitedFile(item, r)) : visitedFile(item, read)
  }

  /** A file of several links: its content is read once, at the first link the walk meets. */
  private async visitHardlink(absPath: Buffer, st: EntryStat, item: Item): Promise<Visited> {
    item.hardlink = { group: hardlinkGroup(st), nlink: st.nlink }
    const key = `${st.dev}:${st.ino}`
    const known = this.hardlinks.get(key)
    if (known) {
      // The content is read once; the statistics count every link, as the tree cache's do.
      return { item: known.then((c) => (c && this.count(c.chunks, absPath), withContent(item, c))) }
    }
    const content = Promise.resolve(this.fileContent(absPath, st))
    this.hardlinks.set(key, content.then((c) => c.stored))
    return visitedFile(item, await content)
  }

  /**
   * Reads a file into the pipeline (or takes its chunks from the files
   * cache). Returns (or resolves, when it had to wait) once it is read or
   * queued; `stored` resolves once it is stored.
   */
  private fileContent(absPath: Buffer, st: EntryStat): Soon<Reading> {
    const identity = { ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }
    if (!this.pipeline) {
      this.stats.originalSize += identity.size
      return { stored: Promise.resolve({ chunks: [], size: identity.size }) }
    }
    if (!this.filesCache.loaded) return this.filesCache.ready().then(() => this.fileContent(absPath, st))
    const cached = this.filesCache.lookup(absPath, identity, (id) => id.equals(ZERO_CHUNK_ID) || this.writer.has(id))
    if (cached) {
      this.count(cached, absPath)
      return { stored: Promise.resolve({ chunks: cached, size: identity.size }) }
    }
    if (identity.size <= this.pipeline.smallFileLimit) {
      const room = this.pipeline.smallFileRoom()
      return room ? room.then(() => this.storeSmallFile(absPath, identity)) : this.storeSmallFile(absPath, identity)
    }
    return this.streamBigFile(absPath, identity)
  }

  /** A small file, once the pipeline had room for it. */
  private storeSmallFile(absPath: Buffer, identity: FileIdentity): Reading {
    const stored = this.pipeline!
      .storeSmallFile(absPath, identity.size)
      .then((r) => (r.kind === 'stored' ? this.finishFile(absPath, identity, r.chunks, r.bytesRead) : this.smallFileMissed(absPath, identity, r)))
    return { stored }
  }

  /**
   * Big files stream in the background (the pipeline reads one at a time),
   * so the walk goes on handing small files to the workers meanwhile; at
   * most STREAMS_AHEAD wait their turn.
   */
  private async streamBigFile(absPath: Buffer, identity: FileIdentity): Promise<Reading> {
    await this.streamSlots.acquire()
    const streamed = this.streamFile(absPath, identity).finally(() => this.streamSlots.release())
    return { stored: streamed.then((s) => s && s.stored) }
  }

  /** A small file the worker could not read, or that grew past the small-file size while we looked (then read as a stream). */
  private async smallFileMissed(absPath: Buffer, identity: FileIdentity, r: { kind: 'grew' } | { kind: 'error'; message: string }): Promise<FileContent | null> {
    if (r.kind === 'error') {
      this.warn('unreadable', absPath, `cannot be read: ${r.message}`)
      return null
    }
    const streamed = await this.streamFile(absPath, identity)
    return streamed && streamed.stored
  }

  /** Reads a file through the chunker (big files, or ones that grew). Resolves once read. */
  private async streamFile(absPath: Buffer, identity: FileIdentity): Promise<{ stored: Promise<FileContent> } | null> {
    let file: FileStream
    try {
      file = await FileStream.open(absPath)
    } catch (err) {
      this.warn('unreadable', absPath, `cannot be read: ${(err as Error).message}`)
      return null
    }
    let stored: Promise<ChunkRef[]>
    try {
      ;({ stored } = await this.pipeline!.storeStream(file.read, this.options.signal))
    } catch (err) {
      if (err instanceof CairnError || (err as Error).name === 'AbortError') throw err
      this.warn('unreadable', absPath, `could not be read completely: ${(err as Error).message}`)
      return null
    } finally {
      await file.close()
    }
    return { stored: stored.then((chunks) => this.finishFile(absPath, identity, chunks, file.size)) }
  }

  private finishFile(absPath: Buffer, identity: FileIdentity, chunks: ChunkRef[], size: number): FileContent {
    if (size !== identity.size) this.warn('changed', absPath, 'changed while it was backed up')
    this.count(chunks, absPath)
    if (size === identity.size) this.filesCache.remember(absPath, identity, chunks, this.startNs)
    return { chunks, size }
  }

  /** Standard input as one file. Resolves once it is read; the returned promise once it is stored. */
  private async visitStdin(name: Buffer): Promise<Visited> {
    const stdin = this.options.stdin
    if (!stdin) throw new CairnError('bad-argument', "'-' was given as a path but there is no standard input to read")
    const { read, bytesRead } = iterableSource(stdin.stream)
    const now = nowNs()
    const item: Item = {
      name,
      kind: 'file',
      mode: 0o100660,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      mtimeNs: now,
      atimeNs: now,
      ctimeNs: now,
      size: 0,
    }
    this.stats.files++
    if (!this.pipeline) return { item: Promise.resolve(item) }
    const { stored } = await this.pipeline.storeStream(read, this.options.signal)
    return {
      item: stored.then((chunks) => {
        this.count(chunks, name)
        return { ...item, chunks, size: bytesRead() }
      }),
    }
  }

  private count(chunks: readonly ChunkRef[], path: Buffer): void {
    let size = 0
    for (const c of chunks) {
      size += c.size
      this.stats.compressedSize += this.writer.storedLength(c.id)
    }
    this.stats.originalSize += size
    this.options.onProgress?.({ files: this.stats.files, originalSize: this.stats.originalSize, deduplicatedSize: this.writer.stats.newBytes, path })
  }

  private warn(code: CreateWarning['code'], path: Buffer, message: string): void {
    this.warnings++
    this.dirtyDirs.add(nodePath.posix.dirname(path.toString('latin1')))
    this.options.onWarning?.({ code, path, message })
  }
}

/** What a directory scan says about one path (its parent is scanned for that one name). */
async function scanPath(path: Buffer): Promise<ScannedEntry> {
  const text = path.toString('latin1')
  const name = nodePath.posix.basename(text) || '.' // '/' is '.' in itself
  const { entries } = await scanDirectory(Buffer.from(nodePath.posix.dirname(text), 'latin1'), [Buffer.from(name, 'latin1')])
  return entries.at(0)
}

/** What the walk keeps of a file it handed over. */
function visitedFile(item: Item, read: Reading): Visited {
  return { item: read.stored.then((c) => withContent(item, c)) }
}

/** The file's item, completed with its content (null when it could not be read). Mutates: the item is this walk's own. */
function withContent(item: Item, content: FileContent | null): Item | null {
  if (!content) return null
  item.chunks = content.chunks
  item.size = content.size
  return item
}

/**
 * A hardlink group: 53 bits of SHA-256 of the device and inode numbers. It
 * depends on nothing else (not on the walk's order), so a directory's tree is
 * the same in every backup and the tree cache can keep it; two inodes
 * sharing a group by chance is a 2^-53-per-pair event.
 */
function hardlinkGroup(st: EntryStat): number {
  return Number(hash('sha256', `${st.dev}:${st.ino}`, 'buffer').readBigUInt64BE(0) >> 11n)
}

