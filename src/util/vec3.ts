/** A point or move in metres: x, y, z. */
export type Vec3 = [number, number, number];

/** Metres between two points. */
export function distance(a: Vec3, b: Vec3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}
