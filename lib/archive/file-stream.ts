/**
 * Reads one big file front to back for the chunker, leaving the page cache as the backup found it.
 *
 * - A file already cached (by its first page: see isCold) is read through the cache like any file, and
 *   stays there: it is someone's working set.
 * - A cold file on a local disk filesystem (ext4, XFS, Btrfs, F2FS) is read with O_DIRECT: the disk
 *   writes straight into the pipeline's read window, and nothing passes through the page cache. Where
 *   the filesystem is another, refuses O_DIRECT (open or read fails with EINVAL), or a read cannot be
 *   aligned, it is read through the cache, and what was read is dropped behind it (adviseDontNeed), as
 *   borg's chunker does.
 *
 * Why direct: on the project VM a first backup's reads through the page cache cost about 2 s of system
 * time in copying (`_copy_to_iter`, perf), pages the backup then throws away; see bench/RESULTS.md,
 * session 14. A direct read needs the memory, the length and the file position aligned (windows.ts
 * keeps the first two so); a short read happens only at the end of the file.
 */
import { promises as fs, constants as fsc } from 'node:fs'
import { adviseDontNeed, adviseWillNeedIfCold, isCold, misalignment } from '../native/posix.js'
import { DIRECT_ALIGNMENT } from '../pipeline/windows.js'

/**
 * The page cache holds a file in folios of up to 2 MiB (a PMD), each aligned to its size, and DONTNEED
 * drops only folios wholly inside its range: what was read is dropped in aligned steps of this size.
 */
const DROP_STEP = 2 * 1024 * 1024

/**
 * Filesystems on local block devices, by statfs magic number, whose direct reads go straight to the
 * disk: ext2/3/4, XFS, Btrfs, F2FS. Elsewhere O_DIRECT is slower or means something else: NFS and SMB
 * send every read over the network without the client's cache or read-ahead, FUSE filesystems may
 * refuse it or pass it on, ZFS before 2.3 accepts it and reads through its own cache anyway. Files there
 * are read through the page cache and dropped behind.
 */
const DIRECT_READ_FILESYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e, 0xf2f52010])

/** Whether files on a filesystem of this statfs type are read with O_DIRECT when cold. */
export function readsDirectlyOn(statfsType: number): boolean {
  return DIRECT_READ_FILESYSTEMS.has(statfsType)
}

/** Opens `path` for reading, without updating its access time where the kernel lets us (we must own the file). */
function openForReading(path: Buffer, flags = 0): Promise<fs.FileHandle> {
  return fs.open(path, fsc.O_RDONLY | fsc.O_NOATIME | flags).catch(() => fs.open(path, fsc.O_RDONLY | flags))
}

export class FileStream {
  /** Bytes read so far. */
  size = 0
  /** The page cache holds nothing of the file before this offset (a cold file read through the cache). */
  private droppedTo = 0

  private constructor(
    private readonly handle: fs.FileHandle,
    private direct: fs.FileHandle | null,
    private readonly cold: boolean,
  ) {}

  /**
   * Opens the file (throws as fs.open does). A cold file that cannot be read directly is announced to
   * the kernel (WILLNEED, capped at the device's read_ahead_kb: 8 MiB here), which starts reading it
   * while earlier big files still stream: a file is opened when it is queued. First backups of the
   * medium corpus from a cold cache, 10 alternated runs each: median 9.57 s (8.94–10.29) against 9.84 s
   * (9.28–11.15), session 13.
   */
  static async open(path: Buffer): Promise<FileStream> {
    const handle = await openForReading(path)
    const local = fsc.O_DIRECT !== undefined && readsDirectlyOn((await fs.statfs(path).catch(() => ({ type: 0 }))).type)
    const direct = local ? await openForReading(path, fsc.O_DIRECT).catch(() => null) : null
    let cold: boolean
    try {
      cold = direct ? isCold(handle.fd) : adviseWillNeedIfCold(handle.fd)
    } catch (err) {
      await direct?.close()
      await handle.close()
      throw err
    }
    if (direct && !cold) await direct.close()
    return new FileStream(handle, cold ? direct : null, cold)
  }

  /** Whether reads go straight from the disk (O_DIRECT) rather than through the page cache. */
  get readsDirectly(): boolean {
    return this.direct !== null
  }

  /** Reads up to `length` bytes into `buf` at `offset` from where the last read ended; 0 at the end. */
  readonly read = async (buf: Buffer, offset: number, length: number): Promise<number> => {
    const direct = this.direct && this.canReadDirectly(buf, offset, length) ? await this.readDirectly(buf, offset, length) : null
    const bytesRead = direct ?? (await this.readCached(buf, offset, length))
    this.size += bytesRead
    return bytesRead
  }

  /** Closes the file; a cold one leaves nothing of itself in the page cache. */
  async close(): Promise<void> {
    if (this.cold) adviseDontNeed(this.handle.fd, 0, 0)
    await this.direct?.close()
    await this.handle.close()
  }

  private canReadDirectly(buf: Buffer, offset: number, length: number): boolean {
    return this.size % DIRECT_ALIGNMENT === 0 && length % DIRECT_ALIGNMENT === 0 && misalignment(buf.subarray(offset), DIRECT_ALIGNMENT) === 0
  }

  /** A read with O_DIRECT; null when the filesystem refuses it (from then on the file is read through the cache). */
  private async readDirectly(buf: Buffer, offset: number, length: number): Promise<number | null> {
    try {
      return (await this.direct!.read(buf, offset, length, this.size)).bytesRead
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
      await this.direct!.close()
      this.direct = null
      return null
    }
  }

  private async readCached(buf: Buffer, offset: number, length: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buf, offset, length, this.size)
    const dropTo = Math.floor((this.size + bytesRead) / DROP_STEP) * DROP_STEP
    if (this.cold && dropTo > this.droppedTo) {
      adviseDontNeed(this.handle.fd, this.droppedTo, dropTo - this.droppedTo)
      this.droppedTo = dropTo
    }
    return bytesRead
  }
}
