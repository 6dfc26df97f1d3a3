/**
 * The index over a table of dense rows whose first word is the hash of the
 * row's key (keys are MAC, SHA-256 or path-hash outputs, uniformly
 * distributed): open addressing with linear probing over Uint32 slots that
 * hold row + 1 (0: empty), rebuilt at twice the size when one more entry
 * would pass 3/4 full. Removing shifts later slots of the probe run back
 * (Knuth, TAOCP vol. 3, 6.4 Algorithm R), so there are no tombstones.
 *
 * Shared by the chunk index (chunk-index.ts) and the files cache
 * (lib/archive/files-table.ts). Each keeps its own probe loop, which compares
 * its own key width word by word on the hot path, and calls this for the rest.
 */

const MAX_LOAD = 0.75
const MIN_SLOTS = 1024

/** Slots for `entries` entries: a power of two, at most 3/4 full. */
export function slotCountFor(entries: number): number {
  let slots = MIN_SLOTS
  while (entries > slots * MAX_LOAD) slots *= 2
  return slots
}

/** Room for `needed` rows, half as much again as `current` at least (rows need no power of two, and doubling would leave up to half of them unused). */
export function grownLength(current: number, needed: number, minimum: number): number {
  return Math.max(needed, Math.ceil(current * 1.5), minimum)
}

export class RowSlots {
  slots: Uint32Array
  mask: number

  constructor(slotCount: number) {
    this.slots = new Uint32Array(slotCount)
    this.mask = slotCount - 1
  }

  /** Whether a table of `entries` rows must rebuild before it takes one more. */
  fullAt(entries: number): boolean {
    return entries + 1 > this.slots.length * MAX_LOAD
  }

  /** Slots anew, `slotCount` of them, for rows 0 .. count-1 of `rows` (`rowWords` words each). */
  rebuild(slotCount: number, rows: Uint32Array, rowWords: number, count: number): void {
    const slots = new Uint32Array(slotCount)
    const mask = slotCount - 1
    for (let row = 0; row < count; row++) {
      let slot = rows[row * rowWords]! & mask
      while (slots[slot] !== 0) slot = (slot + 1) & mask
      slots[slot] = row + 1
    }
    this.slots = slots
    this.mask = mask
  }

  /** Empties slot `hole`, moving back every later entry of its run that may live there. */
  remove(hole: number, rows: Uint32Array, rowWords: number): void {
    const slots = this.slots
    const mask = this.mask
    // An entry moves back unless its home slot is cyclically within (hole, j].
    for (let j = (hole + 1) & mask; slots[j] !== 0; j = (j + 1) & mask) {
      const home = rows[(slots[j]! - 1) * rowWords]! & mask
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j
      if (!stays) {
        slots[hole] = slots[j]!
        hole = j
      }
    }
    slots[hole] = 0
  }

  /** Row `from` was copied to row `to`: its slot now says so. */
  moved(from: number, to: number, rows: Uint32Array, rowWords: number): void {
    const slots = this.slots
    const mask = this.mask
    let slot = rows[to * rowWords]! & mask
    while (slots[slot] !== from + 1) slot = (slot + 1) & mask
    slots[slot] = to + 1
  }
}
