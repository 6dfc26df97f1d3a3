/**
 * Finding and removing FUSE mounts from the outside: /proc/self/mountinfo,
 * fusermount, umount -l, and the connection's abort file. Nothing here
 * touches a mount point with stat (a dead mount would hang the caller).
 */
import { execFile } from 'node:child_process'
import { access, readFile, realpath, writeFile, constants as fsConstants } from 'node:fs/promises'
import path from 'node:path'
import { CairnError } from '../lib/errors.js'

export interface MountInfo {
  mountId: number
  major: number
  minor: number
  /** As in /proc/self/mountinfo, with its octal escapes decoded. */
  mountpoint: string
  fstype: string
  source: string
  options: string
}

/** The mounts of this process's namespace; reads /proc/self/mountinfo, never touches a mount. */
export async function readMountInfo(): Promise<MountInfo[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  const unescape = (s: string) => Buffer.from(s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), 'latin1').toString('utf8')
  const mounts: MountInfo[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    const f = line.split(' ')
    const dash = f.indexOf('-', 6)
    const [major, minor] = (f[2] ?? '').split(':').map(Number)
    mounts.push({
      mountId: Number(f[0]), major: major ?? -1, minor: minor ?? -1, mountpoint: unescape(f[4] ?? ''),
      options: f[5] ?? '', fstype: f[dash + 1] ?? '', source: unescape(f[dash + 2] ?? ''),
    })
  }
  return mounts
}

/** The topmost mount at `mountpoint`, or undefined. The mount point itself is never stat()ed. */
export async function findMount(mountpoint: string): Promise<MountInfo | undefined> {
  const mp = await resolveMountpoint(mountpoint)
  return (await readMountInfo()).filter((m) => m.mountpoint === mp).pop()
}

/** Abort a FUSE connection: every pending and future request fails with ENOTCONN, hung clients wake up. */
export async function abortFuseConnection(minor: number): Promise<void> {
  const dir = '/sys/fs/fuse/connections'
  let mountedCtl = false
  if (!(await readMountInfo()).some((m) => m.fstype === 'fusectl')) {
    const res = await run('mount', ['-t', 'fusectl', 'fusectl', dir], 10_000)
    if (res.error) throw new CairnError('io', `cannot abort FUSE connection ${minor}: fusectl is not mounted at ${dir}`, { hint: `as root: mount -t fusectl fusectl ${dir}` })
    mountedCtl = true
  }
  try {
    await writeFile(path.join(dir, String(minor), 'abort'), '1')
  } finally {
    if (mountedCtl) await run('umount', [dir], 10_000)
  }
}

export type ForceUnmountResult = 'not-mounted' | 'fusermount' | 'umount' | 'abort'

/**
 * Remove the mount at `mountpoint` whatever state its daemon is in: `fusermount -uz`, then `umount -l`,
 * then abort the connection and detach again. With `abort: true` the connection is also aborted after a
 * successful detach, so that clients stuck in a hung daemon return (ENOTCONN).
 */
export async function forceUnmount(mountpoint: string, options: { abort?: boolean; timeoutMs?: number } = {}): Promise<ForceUnmountResult> {
  const mp = await resolveMountpoint(mountpoint)
  const timeoutMs = options.timeoutMs ?? 10_000
  const found = await findMount(mp)
  if (!found) return 'not-mounted'
  const isFuse = found.fstype === 'fuse' || found.fstype.startsWith('fuse.') || found.fstype === 'fuseblk'
  const gone = async () => (await findMount(mp))?.mountId !== found.mountId
  const finish = async (how: ForceUnmountResult) => {
    if (options.abort && isFuse && (await exists(`/sys/fs/fuse/connections/${found.minor}`))) {
      await abortFuseConnection(found.minor).catch(() => undefined)
    }
    return how
  }
  if (isFuse) {
    await run('fusermount', ['-uz', mp], timeoutMs)
    if (await gone()) return finish('fusermount')
  }
  await run('umount', ['-l', mp], timeoutMs)
  if (await gone()) return finish('umount')
  if (isFuse) {
    await abortFuseConnection(found.minor)
    await run('umount', ['-l', mp], timeoutMs)
    if (await gone()) return 'abort'
  }
  throw new CairnError('mount-failed', `could not remove the mount at ${mp}`, {
    hint: `as root: echo 1 > /sys/fs/fuse/connections/${found.minor}/abort; umount -l ${mp}`, path: mp,
  })
}

// ---- small helpers -------------------------------------------------------------------------------------

/** Absolute path with the parent's symlinks resolved, as mountinfo shows it; the last component is not touched. */
export async function resolveMountpoint(p: string): Promise<string> {
  const abs = path.resolve(p)
  if (abs === '/') return abs
  const parent = await realpath(path.dirname(abs)).catch(() => path.dirname(abs))
  return path.join(parent, path.basename(abs))
}

interface RunResult { error: (Error & { code?: unknown }) | undefined; stdout: string; stderr: string }
/** execFile that resolves after `timeoutMs` even if the child cannot be killed (stuck in a dead mount). */
export function run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolve({ error: new Error(`${cmd} timed out after ${timeoutMs} ms`), stdout: '', stderr: '' })
    }, timeoutMs)
    const child = execFile(cmd, args, (error, stdout, stderr) => {
      clearTimeout(timer)
      resolve({ error: error ?? undefined, stdout, stderr })
    })
  })
}

export async function poll<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined || Date.now() >= end) return v
    await new Promise((r) => setTimeout(r, 20))
  }
}

export async function exists(p: string, mode = fsConstants.F_OK): Promise<boolean> {
  try { await access(p, mode); return true } catch { return false }
}
