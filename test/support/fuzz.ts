/** Seeded mutations of HL7 messages for the hostile-input test. */

/** mulberry32: small, fast, seeded. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function mutate(base: Buffer, rnd: () => number): Buffer {
  let b = Buffer.from(base);
  const pick = (n: number) => Math.floor(rnd() * n);
  const kind = pick(8);
  switch (kind) {
    case 0:
      for (let i = 0, n = 1 + pick(8); i < n; i++) {
        const p = pick(b.length);
        b[p] ^= 1 << pick(8);
      }
      break; // bit flips
    case 1:
      b = b.subarray(0, pick(b.length));
      break; // truncation
    case 2: {
      const p = pick(b.length);
      b = Buffer.concat([b.subarray(0, p), Buffer.from('|^~\\&\r'.repeat(1 + pick(20))), b.subarray(p)]);
      break;
    } // delimiters
    case 3: {
      const p = pick(b.length);
      b = Buffer.concat([b.subarray(0, p), Buffer.alloc(1 + pick(64), 0), b.subarray(p)]);
      break;
    } // NULs
    case 4: {
      const p = pick(b.length);
      const size = rnd() < 0.01 ? 1_000_000 + pick(1_000_000) : 1000 + pick(60_000);
      b = Buffer.concat([b.subarray(0, p), Buffer.alloc(size, 0x41 + pick(26)), b.subarray(p)]);
      break;
    } // huge field
    case 5: {
      const p = b.indexOf('PID|');
      b = Buffer.concat([b.subarray(0, p + 4), Buffer.from('~'.repeat(1 + pick(50_000))), b.subarray(p + 4)]);
      break;
    } // deep repetitions
    case 6: {
      const p = pick(b.length);
      b = Buffer.concat([b.subarray(0, p), Buffer.from('\\X' + 'F'.repeat(pick(100)) + '\\' + '\\'.repeat(pick(50))), b.subarray(p)]);
      break;
    } // escapes
    default:
      for (let i = 0, n = 1 + pick(30); i < n; i++) b[pick(b.length)] = pick(256); // random bytes
  }
  // MLLP control bytes inside a payload would make it another frame: keep one frame per message
  for (let i = 0; i < b.length; i++) if (b[i] === 0x0b || b[i] === 0x1c) b[i] = 0x58;
  return b;
}
