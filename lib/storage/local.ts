/**
 * Backend over a local directory. The repository is plain files that
 * `cp -a` or `rsync` can copy.
 *
 * Writes are atomic and durable: data goes to a temporary file in the same
 * directory, is fsynced, renamed over the final name, and the directory is
 * fsynced, so a crash leaves the old object or the new one.
 */
import { promises as fs, constants as fsc } from 'node:fs'
import { randomBytes } from 'node:crypto'
import * as path from 'node:path'
import { CairnError } from '../errors.js'
import { adviseDontNeed, hugePageBuffer } from '../native/posix.js'
import type { Backend, ObjectInfo, ObjectUpload } from './backend.js'
import { OpenFiles } from './open-files.js'
import { writeParts } from './write-parts.js'

/** Ranges read into huge pages from this size on (see hugePageBuffer). */
const HUGE_PAGE_READ = 1024 * 1024

const TEMP_SUFFIX = '.tmp'

export class LocalBackend implements Backend {
  readonly location: string
  private readonly knownDirs = new Set<string>()
  private readonly openFiles = new OpenFiles()

  constructor(readonly root: string) {
    this.location = root
  }

  private pathOf(key: string): string {
    if (key.startsWith('/') || key.split('/').includes('..')) {
      throw new CairnError('bad-argument', `invalid object key: ${key}`)
    }
    return path.join(this.root, key)
  }

  localPath(key: string): string {
    return this.pathOf(key)
  }

  /** Closes the pack files kept open for range reads (they reopen on the next read). */
  close(): Promise<void> {
    return this.openFiles.closeAll()
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.pathOf(key))
    } catch (err) {
      throw translate(err, key, this.location)
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    try {
      return await this.openFiles.use(this.pathOf(key), async (handle) => {
        // Big ranges (a chunk, sealed) go into huge pages: see hugePageBuffer.
        const buf = length >= HUGE_PAGE_READ ? hugePageBuffer(length) : Buffer.allocUnsafe(length)
        let done = 0
        while (done < length) {
          const { bytesRead } = await handle.read(buf, done, length - done, offset + done)
          if (bytesRead === 0) {
            throw new CairnError('integrity', `object ${key} in ${this.location} is shorter than expected (truncated?)`, {
              hint: 'the repository is damaged; run cairn check',
            })
          }
          done += bytesRead
        }
        return buf
      })
    } catch (err) {
      throw translate(err, key, this.location)
    }
  }

  async put(key: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const upload = this.upload(key)
    try {
      await upload.append(data instanceof Uint8Array ? [data] : data)
      await upload.finish()
    } catch (err) {
      await upload.abort()
      throw err
    }
  }

  upload(key: string, hints: { readSoon?: boolean } = {}): ObjectUpload {
    return new LocalUpload(this.pathOf(key), key, this.location, (dir) => this.ensureDir(dir), hints.readSoon ?? true)
  }

  async create(key: string, data: Uint8Array): Promise<boolean> {
    const target = this.pathOf(key)
    await this.ensureDir(path.dirname(target))
    // Write the content under a temporary name, then link(2) it into place:
    // link fails with EEXIST when the name is taken, and readers never see a
    // half-written file.
    const temp = `${target}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`
    try {
      await fs.writeFile(temp, data, { mode: 0o600, flag: 'wx' })
      try {
        await fs.link(temp, target)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
        throw err
      }
      await syncDir(path.dirname(target))
      return true
    } catch (err) {
      throw translate(err, key, this.location)
    } finally {
      await fs.rm(temp, { force: true }).catch(() => undefined)
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await fs.rm(this.pathOf(key), { force: true })
    } catch (err) {
      throw translate(err, key, this.location)
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const st = await fs.stat(this.pathOf(key))
      return { key, size: st.size }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw translate(err, key, this.location)
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const base = this.pathOf(prefix)
    yield* walk(base, prefix)
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return
    try {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 })
    } catch (err) {
      throw translate(err, path.relative(this.root, dir), this.location)
    }
    this.knownDirs.add(dir)
  }
}

async function* walk(dir: string, keyPrefix: string): AsyncIterable<ObjectInfo> {
  let entries: import('node:fs').Dirent[]
  try {
    entries = await fs.readdir(dir, { withFileTypes: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  for (const entry of entries) {
    const key = keyPrefix + entry.name
    if (entry.isDirectory()) {
      yield* walk(path.join(dir, entry.name), key + '/')
    } else if (entry.isFile() && !entry.name.endsWith(TEMP_SUFFIX)) {
      const st = await fs.stat(path.join(dir, entry.name)).catch(() => null)
      if (st) yield { key, size: st.size }
    }
  }
}

/** A temporary file beside the target, renamed over it once complete and synced. */
class LocalUpload implements ObjectUpload {
  private readonly temp: string
  private handle: fs.FileHandle | null = null

  constructor(
    private readonly target: string,
    private readonly key: string,
    private readonly location: string,
    private readonly ensureDir: (dir: string) => Promise<void>,
    private readonly readSoon: boolean,
  ) {
    this.temp = `${target}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`
  }

  async append(parts: readonly Uint8Array[]): Promise<void> {
    try {
      if (!this.handle) {
        await this.ensureDir(path.dirname(this.target))
        this.handle = await fs.open(this.temp, 'wx', 0o600)
      }
      await writeParts(this.handle, parts)
    } catch (err) {
      throw translate(err, this.key, this.location)
    }
  }

  async finish(): Promise<void> {
    try {
      if (!this.handle) await this.append([])
      const handle = this.handle!
      await handle.sync()
      // Synced pages are clean, so the kernel can drop them at once: a backup's gigabytes of packs do not
      // push other programs' files out of the page cache.
      if (!this.readSoon) adviseDontNeed(handle.fd, 0, 0)
      this.handle = null
      await handle.close()
      await fs.rename(this.temp, this.target)
      await syncDir(path.dirname(this.target))
    } catch (err) {
      throw translate(err, this.key, this.location)
    }
  }

  async abort(): Promise<void> {
    await this.handle?.close().catch(() => undefined)
    this.handle = null
    await fs.rm(this.temp, { force: true }).catch(() => undefined)
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY)
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

function translate(err: unknown, key: string, location: string): unknown {
  if (err instanceof CairnError) return err
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') {
    return new CairnError('missing-object', `object ${key} is missing from ${location}`, {
      hint: 'the repository is damaged or was changed underneath; run cairn check',
      cause: err,
    })
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new CairnError('no-space', `no space left on the device holding ${location}`, {
      hint: 'free some space and run the command again; the repository is still at its last commit',
      cause: err,
    })
  }
  const message = (err as Error).message ?? String(err)
  return new CairnError('io', `cannot access ${key} in ${location}: ${message}`, {
    retryable: code === 'EAGAIN' || code === 'EBUSY' || code === 'EINTR',
    cause: err,
  })
}
