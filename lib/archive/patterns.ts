/**
 * Exclude patterns, with borg's prefixes and meanings:
 *   fm:  fnmatch (the default): `*` and `?` match any characters, `/` too
 *   sh:  shell style: `*` stops at `/`, `**` crosses directories
 *   re:  a regular expression, searched anywhere in the path
 *   pp:  a path prefix
 * Paths are matched without a leading `/`, and a pattern that matches a
 * directory excludes everything below it. Paths are bytes; both sides are
 * compared as latin1 strings (one character per byte), so non-UTF-8 names
 * match literally.
 */
import { CairnError } from '../errors.js'

export type PathMatcher = (path: Buffer) => boolean

export function compilePatterns(patterns: readonly string[]): PathMatcher {
  const regexes = patterns.map(compileOne)
  if (regexes.length === 0) return () => false
  return (path) => {
    const text = stripSlashes(path.toString('latin1'))
    return regexes.some((re) => re.test(text))
  }
}

function compileOne(pattern: string): RegExp {
  const match = /^(fm|sh|re|pp):(.*)$/s.exec(pattern)
  const style = match ? match[1] : 'fm'
  const body = toLatin1(match ? match[2]! : pattern)
  try {
    switch (style) {
      case 're':
        return new RegExp(body, 's')
      case 'pp':
        return new RegExp(`^${escape(stripSlashes(body))}(?:/|$)`, 's')
      case 'sh':
        return new RegExp(`^${globToRegex(stripSlashes(body), true)}(?:/|$)`, 's')
      default:
        return new RegExp(`^${globToRegex(stripSlashes(body), false)}(?:/|$)`, 's')
    }
  } catch (err) {
    throw new CairnError('bad-argument', `invalid exclude pattern ${JSON.stringify(pattern)}: ${(err as Error).message}`)
  }
}

function globToRegex(glob: string, shellStyle: boolean): string {
  let out = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '*') {
      if (shellStyle && glob[i + 1] === '*') {
        // `**/` matches zero or more whole directories; a trailing `**` everything.
        if (glob[i + 2] === '/') {
          out += '(?:.*/)?'
          i += 2
        } else {
          out += '.*'
          i += 1
        }
      } else {
        out += shellStyle ? '[^/]*' : '.*'
      }
    } else if (c === '?') {
      out += shellStyle ? '[^/]' : '.'
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2)
      if (end < 0) {
        out += '\\['
      } else {
        let set = glob.slice(i + 1, end)
        if (set.startsWith('!')) set = '^' + set.slice(1)
        out += `[${set.replace(/\\/g, '\\\\')}]`
        i = end
      }
    } else {
      out += escape(c)
    }
  }
  return out
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function stripSlashes(text: string): string {
  return text.replace(/^\/+/, '').replace(/\/+$/, '')
}

function toLatin1(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1')
}
