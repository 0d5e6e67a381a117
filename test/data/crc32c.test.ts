import { describe, expect, it } from 'vitest';
import { crc32c, maskedCrc32c } from '../../src/data/crc32c.js';
import { Rng } from '../../src/util/rng.js';

/** Bit-at-a-time CRC-32C, the definition the table-driven version must agree with. */
function slowCrc(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe('CRC-32C', () => {
  it('matches the standard check value and the bitwise definition at every length 0..40 and a large buffer', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
    const rng = new Rng(3);
    for (let n = 0; n <= 40; n++) {
      const b = Uint8Array.from({ length: n }, () => rng.int(256));
      expect(crc32c(b), `length ${n}`).toBe(slowCrc(b));
    }
    const big = Uint8Array.from({ length: 100_003 }, () => rng.int(256));
    expect(crc32c(big.subarray(1))).toBe(slowCrc(big.subarray(1)));
  });

  it('masks as TFRecord does', () => {
    const c = crc32c(new Uint8Array(8));
    expect(maskedCrc32c(new Uint8Array(8))).toBe(((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0);
  });
});
