/**
 * Mounting a repository (or one archive) with FUSE, and unmounting it.
 *
 * What a mount holds: the repository opened without any lock, a VFS view
 * (lib/vfs) whose nodes the kernel knows by inode number, a chunk cache bounded in bytes whose
 * chunks are opened on a worker pool, a registration object in the
 * repository (registration.ts), and a local record for `cairn umount`
 * (mount-record.ts). Mounting reads the manifest (or, for one archive, the
 * archive object) and nothing else; trees load as directories are visited.
 *
 * Never touch the mount synchronously from this process: its requests are
 * served by this event loop.
 */
import * as path from 'node:path'
import { execFile } from 'node:child_process'
import {
  BlobOpener,
  CairnError,
  blockedTreeLoader,
  coalescedBlobLoader,
  LocalBackend,
  RepositoryView,
  openArchiveView,
  type CacheSizes,
  type DirNode,
  type Repository,
  VersionsView,
} from '../lib/index.js'
import { findMount, forceUnmount, mount, type FuseMount, type MountInfo } from './fuse-binding.js'
import { makeHandlers } from './fuse-adapter.js'
import { rememberDamage } from './damaged-chunks.js'
import { MountRegistration, processExists } from './registration.js'
import { readRecord, removeRecord, writeRecord, type MountRecord } from './mount-record.js'
import { DEFAULT_CACHE_BYTES } from './options.js'

export { parseMountOptions, parseSize, DEFAULT_CACHE_BYTES, type MountOptionSet } from './options.js'
export { listMountRegistrations, MOUNTS_PREFIX, type MountRegistrationInfo, type RegisteredMount } from './registration.js'

export interface MountRepositoryOptions {
  repository: Repository
  /** Mount this archive's tree at the root instead of one directory per archive. */
  archive?: string
  mountpoint: string
  /** The merged versions view (repository mounts only). */
  versions?: boolean
  allowOther?: boolean
  uid?: number
  gid?: number
  umask?: number
  /** Do not let the kernel check permission bits (no default_permissions). */
  ignorePermissions?: boolean
  /** Bytes of decrypted chunks kept (default 256 MiB). */
  cacheBytes?: number
  /** Damaged chunks read as zeros (logged) instead of EIO. */
  allowDamagedFiles?: boolean
  /** How often the archive list is re-read, in ms (default 2000). */
  refreshMs?: number
  /** Worker threads that open chunks over 128 KiB (default: one per core, at most 4, started with the first such chunk); 0 opens them all on the main thread. */
  workers?: number
  /** Bytes loaded ahead of a sequential reader (default 16 MiB, at most a quarter of the cache). */
  readAheadBytes?: number
  /** Where to keep the record `cairn umount` reads (null: none). */
  recordDir?: string | null
  /** Announce the mount in the repository (default true). */
  register?: boolean
  /** Problems met while serving (damaged chunks, failed requests); the mount stays up. */
  log?: (message: string) => void
}

export interface MountedRepository {
  readonly mountpoint: string
  /** FUSE connection number (/sys/fs/fuse/connections/<minor>). */
  readonly minor: number
  /** Resolves once the mount is gone and cleaned up, whoever unmounted it. */
  readonly closed: Promise<void>
  /** Unmounts (lazily: a busy mount detaches now) and cleans up. */
  unmount(): Promise<void>
}

/**
 * Decoded directory trees kept, in estimated bytes: about 175 directories of the medium corpus's average
 * size (21 entries). A walk needs few at once, the directories being listed and the subdirectories loaded
 * ahead, and an evicted tree comes back from the pack blocks kept below without a read. Walking the medium
 * corpus's archive, 2 cold runs each: 8 MiB left 128–129 MiB resident, 2 MiB 111 MiB, the walk as fast
 * (0.93–0.95 s against 0.91–0.93 s); the library's default of 32 MiB cost 13 MiB more than 8. Later, with the
 * rest of the daemon smaller, 1 MiB against 2 MiB (5 alternated runs each): peak 64–67 MiB against 68–71,
 * the walk (1.16–1.27 s against 1.12–1.31 s) and cp -a of the 2,000 small files as fast; the million-file
 * archive's walk too.
 */
const TREE_CACHE_BYTES = 1024 * 1024
/**
 * Sealed metadata kept in 128 KiB blocks of its packs, from which trees are loaded (lib/cache/pack-block-reader.ts).
 * A walk reads the trees in about the order a backup wrote them, so few blocks are used again much later: walking
 * the medium corpus's archive cold, 3 alternated runs each, 1 MiB peaked at 69-71 MiB and 4 MiB at 72-73, the walk
 * as fast (1.02-1.36 s against 1.09-1.35 s).
 */
const TREE_BLOCK_BYTES = 1024 * 1024
const FSNAME = 'cairn'
/** The root directory's inode number as the kernel knows it. */
const KERNEL_ROOT_INO = 1n
const DEFAULT_REFRESH_MS = 2000
const SUBTYPE = 'cairn'
const WATCH_MS = 1000

export async function mountRepository(options: MountRepositoryOptions): Promise<MountedRepository> {
  const repo = options.repository
  const log = options.log ?? (() => undefined)
  const mountpoint = path.resolve(options.mountpoint)
  if (options.versions && options.archive !== undefined) {
    throw new CairnError('bad-argument', 'the versions view merges all archives: mount the repository, not one archive', { hint: 'drop ::ARCHIVE or -o versions' })
  }
  const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES
  const workers = options.workers ?? undefined
  const opener = workers === 0 ? null : BlobOpener.forRepository(repo, { workers })
  const cleanups: (() => Promise<void>)[] = [async () => opener?.close()]
  const cleanUp = async (): Promise<void> => {
    for (const step of cleanups.splice(0).reverse()) await step().catch((err: unknown) => log(`cleanup: ${(err as Error)?.message ?? String(err)}`))
  }
  try {
    // The first listing needs the chunk index: load it while the manifest is read and the kernel mounts.
    repo.index().catch(() => undefined) // a failure shows (and is retried) where the index is used
    // Registering (a write and two fsyncs) overlaps reading the manifest; the mount serves only once it is done.
    const registering = options.register === false ? null : MountRegistration.register(repo.backend, { mountpoint, archive: options.archive ?? null }, {
      onError: (err) => log(`could not refresh the mount's registration: ${(err as Error)?.message ?? String(err)}`),
    })
    registering?.catch(() => undefined) // awaited below
    cleanups.push(async () => (await registering?.catch(() => null))?.release())
    const caches: CacheSizes = {
      chunkBytes: cacheBytes,
      treeBytes: TREE_CACHE_BYTES,
      loadChunk: rememberDamage(coalescedBlobLoader(repo, 'data', opener), log),
      loadTree: blockedTreeLoader(repo, TREE_BLOCK_BYTES),
    }
    let root: DirNode
    let archiveList: RepositoryView | VersionsView | null = null
    if (options.archive !== undefined) {
      root = await openArchiveView(repo, options.archive, caches)
    } else if (options.versions) {
      const view = new VersionsView(repo, { caches, refreshMs: options.refreshMs })
      await view.refresh()
      root = archiveList = view
    } else {
      const view = new RepositoryView(repo, { caches, refreshMs: options.refreshMs })
      await view.refresh(true)
      root = archiveList = view
    }
    const handlers = makeHandlers({
      root,
      allowDamagedFiles: options.allowDamagedFiles ?? false,
      readAheadBytes: options.readAheadBytes ?? Math.min(16 * 1024 * 1024, Math.floor(cacheBytes / 4)),
      log,
    })

    const registration = await registering

    const fuse = await mount(mountpoint, handlers, {
      readOnly: true,
      allowOther: options.allowOther ?? false,
      defaultPermissions: !(options.ignorePermissions ?? false),
      uid: options.uid,
      gid: options.gid,
      umask: options.umask,
      fsname: FSNAME,
      subtype: SUBTYPE,
      // Archives never change, but the root's list of archives does: keep kernel caches of names short.
      attrTimeout: 1,
      entryTimeout: 1,
      kernelCache: true,
      onError: (r) => log(`FUSE ${r.op} of inode ${r.ino}${r.name ? ` ${JSON.stringify(r.name.toString('utf8'))}` : ''}: ${(r.error as Error)?.message ?? String(r.error)}`),
    })
    cleanups.push(() => fuse.unmount())

    if (archiveList !== null) watchArchiveList(archiveList, fuse, options.refreshMs ?? DEFAULT_REFRESH_MS, log, cleanups)

    const recordDir = options.recordDir ?? null
    if (recordDir !== null) {
      const record: MountRecord = {
        v: 1,
        pid: process.pid,
        mountpoint: fuse.mountpoint,
        minor: fuse.minor,
        repository: repo.backend instanceof LocalBackend ? path.resolve(repo.backend.root) : null,
        registration: registration?.key ?? null,
        started: new Date().toISOString(),
      }
      await writeRecord(recordDir, record)
      cleanups.splice(1, 0, () => removeRecord(recordDir, fuse.mountpoint, process.pid)) // after the unmount
    }

    // Notice an unmount from outside (cairn umount, fusermount -u) and clean up after it.
    let closing: Promise<void> | null = null
    let resolveClosed!: () => void
    const closed = new Promise<void>((resolve) => (resolveClosed = resolve))
    const close = (): Promise<void> => {
      closing ??= (async () => {
        clearInterval(watch)
        await cleanUp()
        resolveClosed()
      })()
      return closing
    }
    const watch = setInterval(() => {
      void findMount(fuse.mountpoint).then((m) => {
        if (m?.minor !== fuse.minor) void close()
      }, () => undefined)
    }, WATCH_MS)
    watch.unref()
    void fuse.gone.then(() => close())

    return { mountpoint: fuse.mountpoint, minor: fuse.minor, closed, unmount: close }
  } catch (err) {
    await cleanUp()
    throw err
  }
}

/**
 * The kernel keeps directory listings (mount/native/lowlevel.c), so the root's list of archives is
 * re-read every `everyMs` and, when it changed, the kernel is told to forget the root's listing. Archive
 * directories never change: a deleted or replaced archive goes away with its name, whose kernel entry
 * expires within the entry timeout.
 */
function watchArchiveList(view: RepositoryView | VersionsView, fuse: FuseMount, everyMs: number, log: (message: string) => void, cleanups: (() => Promise<void>)[]): void {
  let seen = view.changes
  let lastProblem = '' // a repository that stays unreadable is logged once, not every few seconds
  const timer = setInterval(() => {
    view.refresh().then(() => {
      lastProblem = ''
      if (view.changes === seen) return
      seen = view.changes
      fuse.invalidate(KERNEL_ROOT_INO)
    }, (err: unknown) => {
      const problem = `could not re-read the list of archives: ${(err as Error)?.message ?? String(err)}`
      if (problem !== lastProblem) log(problem)
      lastProblem = problem
    })
  }, everyMs)
  timer.unref()
  cleanups.push(async () => clearInterval(timer))
}

export interface UnmountOptions {
  /** Where mounts keep their records (the CLI's cache dir); null: no record to consult. */
  recordDir?: string | null
  /** Detach even while in use (fusermount -uz). */
  lazy?: boolean
  /** How long to wait for a live mount process to finish after the unmount (default 10 s). */
  waitMs?: number
}

export interface UnmountResult {
  mountpoint: string
  /** 'dead': the mount's process had died; its mount, record and registration were removed. */
  state: 'live' | 'dead'
  pid: number | null
}

/** Unmounts a cairn mount, live or left by a process that died. */
export async function unmountPath(mountpoint: string, options: UnmountOptions = {}): Promise<UnmountResult> {
  const mp = path.resolve(mountpoint)
  const recordDir = options.recordDir ?? null
  const info = await findMount(mp)
  const record = recordDir === null ? null : await readRecord(recordDir, info?.mountpoint ?? mp)
  if (!info) {
    if (record && recordDir !== null && !processExists(record.pid)) await cleanUpAfter(record, recordDir)
    throw new CairnError('bad-argument', `${mp} is not mounted`, { path: mp })
  }
  if (!isCairnMount(info)) {
    throw new CairnError('bad-argument', `${mp} is not a cairn mount (it is ${info.fstype} from ${info.source})`, { path: mp })
  }
  const ours = record !== null && record.minor === info.minor
  const dead = ours ? !processExists(record.pid) : await looksDead(info.mountpoint)

  const res = await run('fusermount', [options.lazy ? '-uz' : '-u', info.mountpoint])
  if (await stillMounted(info)) {
    if (dead || options.lazy) {
      await forceUnmount(info.mountpoint, { abort: dead })
    } else {
      const why = res.stderr.trim().replace(/^fusermount: /, '')
      throw new CairnError('mount-failed', `could not unmount ${info.mountpoint}: ${why || 'fusermount failed'}`, {
        hint: `close the programs using it, or detach it now with: cairn umount --lazy ${info.mountpoint}`,
        path: info.mountpoint,
        retryable: true,
      })
    }
  }
  if (ours && recordDir !== null) {
    if (dead) await cleanUpAfter(record, recordDir)
    else await waitForExit(record.pid, options.waitMs ?? 10_000)
  }
  return { mountpoint: info.mountpoint, state: dead ? 'dead' : 'live', pid: ours ? record.pid : null }
}

function isCairnMount(info: MountInfo): boolean {
  return info.fstype === `fuse.${SUBTYPE}` || (info.fstype.startsWith('fuse') && info.source === FSNAME)
}

async function stillMounted(info: MountInfo): Promise<boolean> {
  return (await findMount(info.mountpoint))?.mountId === info.mountId
}

/** Removes what a dead mount process left: its record, and its registration in a local repository. */
async function cleanUpAfter(record: MountRecord, recordDir: string): Promise<void> {
  if (record.repository !== null && record.registration !== null) {
    await new LocalBackend(record.repository).delete(record.registration).catch(() => undefined)
  }
  await removeRecord(recordDir, record.mountpoint, record.pid)
}

/**
 * Without a record: a mount whose process died answers ENOTCONN. Asked from
 * a child process under a timeout, so a hung mount cannot hang us.
 */
async function looksDead(mountpoint: string): Promise<boolean> {
  const res = await run('stat', ['-c', '%i', '--', mountpoint], 3000)
  return /not connected/i.test(res.stderr)
}

async function waitForExit(pid: number, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (processExists(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
}

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stderr: String(stderr) })
    })
  })
}
