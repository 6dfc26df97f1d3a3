/** How the CLI shows sizes, times, modes and names. */

export function formatSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(2)} ${units[unit]}`
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']

/** Local time, as borg shows it: "Mon, 2024-01-02 03:04:05". (No Intl: a listing formats one per item.) */
export function formatLocalTime(ns: bigint): string {
  const d = new Date(Number(ns / 1_000_000n))
  const pad = (n: number): string => String(n).padStart(2, '0')
  return `${WEEKDAYS[d.getDay()]}, ${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

const TYPE_CHARS: Record<number, string> = { 0o040000: 'd', 0o120000: 'l', 0o010000: 'p', 0o020000: 'c', 0o060000: 'b', 0o140000: 's', 0o100000: '-' }

/** `ls -l` style mode: -rwxr-xr-x, with setuid/setgid/sticky letters. */
export function modeString(mode: number): string {
  const type = TYPE_CHARS[mode & 0o170000] ?? '?'
  const rwx = (bits: number, special: boolean, specialChar: string): string => {
    const x = bits & 1
    const exec = special ? (x ? specialChar : specialChar.toUpperCase()) : x ? 'x' : '-'
    return (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + exec
  }
  return type + rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') + rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') + rwx(mode & 7, (mode & 0o1000) !== 0, 't')
}

/** JSON fields for a byte name: the text, plus base64 of the exact bytes when they are not valid UTF-8. */
export function jsonName(bytes: Buffer, field: string): Record<string, string> {
  const text = bytes.toString('utf8')
  const exact = Buffer.from(text, 'utf8').equals(bytes)
  return exact ? { [field]: text } : { [field]: text, [`${field}_b64`]: bytes.toString('base64') }
}
