/**
 * Timestamps are nanoseconds since the epoch as bigint (negative before
 * 1970). On disk they are stored as [seconds, nanoseconds] pairs of plain
 * integers, which every msgpack reader decodes without bigint support.
 */
export type TimePair = [number, number]

const NS_PER_SECOND = 1_000_000_000n

export function toPair(ns: bigint): TimePair {
  let seconds = ns / NS_PER_SECOND
  let nanos = ns % NS_PER_SECOND
  if (nanos < 0n) {
    nanos += NS_PER_SECOND
    seconds -= 1n
  }
  return [Number(seconds), Number(nanos)]
}

export function fromPair(pair: unknown): bigint {
  if (!Array.isArray(pair) || pair.length !== 2) return 0n
  return BigInt(pair[0] as number) * NS_PER_SECOND + BigInt(pair[1] as number)
}

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n)
}

/** ISO 8601 with nanoseconds, UTC: 2024-01-02T03:04:05.123456789Z. */
export function formatNs(ns: bigint): string {
  const [seconds, nanos] = toPair(ns)
  const iso = new Date(seconds * 1000).toISOString().slice(0, 19)
  return `${iso}.${String(nanos).padStart(9, '0')}Z`
}
