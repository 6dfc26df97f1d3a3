/**
 * REPO and REPO::ARCHIVE arguments, borg style. `::ARCHIVE` (or no
 * argument at all) takes the repository from CAIRN_REPO. Archive names may
 * use the placeholders {now}, {utcnow}, {hostname}, {fqdn} and {user}.
 */
import * as os from 'node:os'
import { usageError } from './exit.js'

export interface Location {
  repo: string
  archive: string | undefined
}

export function parseLocation(text: string | undefined, envRepo: string | undefined): Location {
  const value = text ?? ''
  const sep = value.indexOf('::')
  const repo = sep >= 0 ? value.slice(0, sep) : value
  const archive = sep >= 0 ? value.slice(sep + 2) : undefined
  const resolved = repo || envRepo
  if (!resolved) throw usageError('no repository given (pass REPO or set CAIRN_REPO)')
  if (archive === '') throw usageError(`no archive name after '::' in ${JSON.stringify(value)}`)
  return { repo: resolved, archive }
}

export function requireArchive(loc: Location, what: string): string {
  if (loc.archive === undefined) throw usageError(`${what} needs REPO::ARCHIVE`)
  return loc.archive
}

export function expandPlaceholders(name: string, now = new Date()): string {
  if (!name.includes('{')) return name // spares the time zone lookup below (≈50 ms)
  const pad = (n: number): string => String(n).padStart(2, '0')
  const local = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}T${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`
  const values: Record<string, string> = {
    now: local,
    utcnow: now.toISOString().slice(0, 19),
    hostname: os.hostname().split('.')[0]!,
    fqdn: os.hostname(),
    user: os.userInfo().username,
  }
  return name.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const v = values[key]
    if (v === undefined) throw usageError(`unknown placeholder ${whole} in archive name (known: {now}, {utcnow}, {hostname}, {fqdn}, {user})`)
    return v
  })
}
