/**
 * `cairn mount -o OPTIONS`: comma-separated, several -o allowed, in the
 * spirit of mount(8) and borg:
 *
 *   versions             the merged versions view instead of one directory per archive
 *   allow_other          let other users in (needs user_allow_other in /etc/fuse.conf unless root)
 *   uid=N, gid=N         show every file as owned by N
 *   umask=NNN            show permission bits 0777 & ~NNN (octal) on every file
 *   ignore_permissions   do not let the kernel check permission bits (no default_permissions)
 *   cache_size=SIZE      decrypted-chunk cache, e.g. 512M or 2G (default 256M, at least 16M)
 *   allow_damaged_files  damaged chunks read as zeros (and are logged) instead of EIO
 *   log=FILE             append the mount's log there (default: stderr with -f, nowhere detached)
 *   ro                   accepted; the mount is always read-only
 */
import { CairnError } from '../lib/errors.js'

export interface MountOptionSet {
  versions: boolean
  allowOther: boolean
  uid?: number
  gid?: number
  umask?: number
  ignorePermissions: boolean
  cacheBytes: number
  allowDamagedFiles: boolean
  log?: string
}

export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
/** Below this a maximal chunk (8 MiB) would not stay cached between the reads that use it. */
export const MIN_CACHE_BYTES = 16 * 1024 * 1024

const FLAGS = { versions: 'versions', allow_other: 'allowOther', ignore_permissions: 'ignorePermissions', allow_damaged_files: 'allowDamagedFiles' } as const
const KNOWN = [...Object.keys(FLAGS), 'uid=', 'gid=', 'umask=', 'cache_size=', 'log=', 'ro']

function bad(message: string): CairnError {
  return new CairnError('bad-argument', message, { hint: `known -o options: ${KNOWN.join(', ')}` })
}

/** Parses the values of every -o given, in order (a later value wins). */
export function parseMountOptions(specs: readonly string[]): MountOptionSet {
  const set: MountOptionSet = { versions: false, allowOther: false, ignorePermissions: false, cacheBytes: DEFAULT_CACHE_BYTES, allowDamagedFiles: false }
  for (const spec of specs) {
    for (const part of spec.split(',')) {
      const opt = part.trim()
      if (opt === '' || opt === 'ro') continue
      const eq = opt.indexOf('=')
      const key = eq < 0 ? opt : opt.slice(0, eq)
      const value = eq < 0 ? undefined : opt.slice(eq + 1)
      if (key in FLAGS) {
        if (value !== undefined) throw bad(`-o ${key} takes no value`)
        set[FLAGS[key as keyof typeof FLAGS]] = true
        continue
      }
      if (value === undefined || value === '') throw bad(`-o ${key} ${KNOWN.includes(`${key}=`) ? 'needs a value' : 'is not a known option'}`)
      switch (key) {
        case 'uid':
        case 'gid':
          set[key] = parseId(value, key)
          break
        case 'umask':
          if (!/^[0-7]{1,4}$/.test(value)) throw bad(`-o umask=${value}: give octal digits, like 022`)
          set.umask = parseInt(value, 8) & 0o777
          break
        case 'cache_size':
          set.cacheBytes = parseSize(value)
          if (set.cacheBytes < MIN_CACHE_BYTES) throw bad(`-o cache_size=${value} is too small: at least 16M`)
          break
        case 'log':
          set.log = value
          break
        default:
          throw bad(`-o ${key} is not a known option`)
      }
    }
  }
  return set
}

function parseId(value: string, what: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 0xfffffffe) throw bad(`-o ${what}=${value}: give a numeric id`)
  return Number(value)
}

/** "256M", "2G", "512k", "1048576", "1.5G": binary units, optional trailing B or iB. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(text.trim())
  if (!m) throw bad(`${JSON.stringify(text)} is not a size (like 256M or 2G)`)
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't']
  const bytes = Math.floor(Number(m[1]) * unit)
  if (!Number.isSafeInteger(bytes)) throw bad(`${text} is too big`)
  return bytes
}
